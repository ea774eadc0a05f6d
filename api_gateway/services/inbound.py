"""Inbound messages: record (the dedupe), enqueue after commit, process in order, sweep, statuses, REST turns.

Exactly-once effect: the unique `whatsapp_message_id` column decides duplicates (never the cache); the turn
marks the inbound processed and stores the reply in one transaction; `reply_send` sends a pending reply once and
sets the inbound's `replied_at`. A replayed task therefore neither re-runs a turn nor re-sends a reply.
"""

import contextlib
import datetime as dt
import functools
import hashlib
import json
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import caches
from django.db import InterfaceError, OperationalError, models, transaction
from django.db.models import F, Q
from django.utils import timezone
from redis.exceptions import NoScriptError, RedisError

from api_gateway.models import ConversationMessage, ConversationSession
from api_gateway.services import texts
from api_gateway.services.idempotency import IdempotentResult, idempotency_key_derive, idempotent_run
from api_gateway.services.replies import Reply
from api_gateway.services.sender import inbound_mark_read, reply_send
from api_gateway.services.session_cache import SessionConflict, SessionLockTimeout, session_manager
from api_gateway.services.voice import voice_note_text
from api_gateway.whatsapp import InboundMessage, ParsedWebhook, StatusUpdate
from core import broker, metrics
from core.exceptions import RateLimited, ServiceUnavailable
from core.logging import mask_name, mask_phone
from core.redis_breaker import CircuitOpen
from rag_agent.services import waitlist_notice_failed

logger = logging.getLogger(__name__)

Processing = ConversationMessage.Processing
Delivery = ConversationMessage.Delivery
MessageType = ConversationMessage.MessageType

# Errors worth a retry of the whole task (the turn did not commit): lock busy, database or Redis hiccups.
TRANSIENT_ERRORS = (SessionLockTimeout, SessionConflict, OperationalError, InterfaceError, RedisError)

ERROR_TRY_AGAIN = "Serviço temporariamente indisponível. Tente novamente em instantes."
ERROR_RATE_LIMITED = "Muitas mensagens deste paciente neste minuto. Tente novamente em instantes."
REASON_TOO_OLD = "too old"
REASON_RATE_LIMITED = "rate limited"
REASON_SILENT = "not answered: reaction or system notice"
RATE_KEY_PREFIX = "rate:patient:"
RATE_WINDOW_SECONDS = 120

# Forward-only delivery order; "failed" is final and may follow anything but "read".
_DELIVERY_RANK = {
    Delivery.PENDING: 0,
    "": 0,
    Delivery.NOT_SENT: 0,
    Delivery.SENT: 1,
    Delivery.DELIVERED: 2,
    Delivery.READ: 3,
}


@dataclass
class IngestSummary:
    accepted: int = 0
    duplicates: int = 0
    ignored: int = 0
    statuses_applied: int = 0
    statuses_stale: int = 0
    errors: int = 0
    message_ids: list[int] = field(default_factory=list)


# --- Webhook ingest ---------------------------------------------------------------------------------------
def webhook_ingest(*, parsed: ParsedWebhook, now: dt.datetime | None = None) -> IngestSummary:
    """Stores every message of a POST, applies statuses, and enqueues processing after commit.

    The messages go in with one `INSERT ... ON CONFLICT (whatsapp_message_id) DO NOTHING RETURNING` that also
    finds each sender's session (a join on the phone). In autocommit that one statement is the whole
    transaction: an acknowledged message is durable, and only the unique column decides duplicates. Items are
    validated in Python first; should the statement still fail for a non-transient reason, the items are
    inserted one by one so one bad item never drops the others. A transient database error propagates: the view
    answers 503 and Meta retries the whole POST, which the unique WhatsApp id makes safe (messages stored
    before the error were already enqueued)."""
    now = now or timezone.now()
    summary = IngestSummary()
    for problem in parsed.problems:
        logger.warning("webhook item skipped at %s: %s", problem.where, problem.reason)
        metrics.WEBHOOK_MESSAGES.labels("malformed", "error").inc()
        summary.errors += 1
    for error in parsed.errors:
        logger.warning("webhook reported an error: code=%s title=%s", error.get("code"), error.get("title"))
        metrics.WEBHOOK_MESSAGES.labels("error", "logged").inc()
    for fieldname in parsed.ignored_fields:
        logger.info("webhook change with field %r ignored", fieldname)
        metrics.WEBHOOK_MESSAGES.labels("field_" + fieldname[:20], "ignored").inc()

    records = [r for r in parsed.messages if not _from_own_number(r, summary)]
    if records:
        inbound_batch_record(records=records, now=now, summary=summary)
    for update in parsed.statuses:
        try:
            with _statement_savepoint():  # one UPDATE is atomic on its own
                applied = message_status_apply(update=update)
        except (OperationalError, InterfaceError):
            raise
        except Exception:  # noqa: BLE001
            logger.exception("could not apply status %s for %s", update.status, update.wamid)
            summary.errors += 1
            continue
        if applied:
            summary.statuses_applied += 1
        else:
            summary.statuses_stale += 1
    return summary


@dataclass(eq=False)
class _Row:
    record: InboundMessage
    message: ConversationMessage  # unsaved: its field values are what the INSERT writes
    outcome: str = ""  # "inserted", "duplicate" or "error"


def _statement_savepoint():
    """Nothing in autocommit (the statement is its own transaction, without BEGIN/COMMIT round trips); a
    savepoint inside a caller's transaction, so a failed statement does not abort the rest of it."""
    return transaction.atomic() if transaction.get_connection().in_atomic_block else contextlib.nullcontext()


def inbound_batch_record(*, records: list[InboundMessage], now: dt.datetime, summary: IngestSummary) -> None:
    """Inserts inbound messages under their unique WhatsApp ids (no read first), counting each in `summary`
    and enqueueing the answerable ones after commit. Hot path (known senders): one SQL statement in all."""
    rows: list[_Row] = []
    for record, (status, reason) in zip(records, _inbound_triage(records=records, now=now), strict=True):
        row = _Row(record=record, message=_inbound_message(record=record, status=status, reason=reason, now=now))
        problem = _row_problem(row.message)
        if problem:
            logger.warning("inbound from %s cannot be stored: %s", mask_phone(record.sender), problem)
            _item_error(row, summary)
        rows.append(row)
    pending = [row for row in rows if not row.outcome]
    _rows_insert(pending, by_phone=True, summary=summary)
    unresolved = [row for row in pending if not row.outcome]
    if unresolved:
        # Not inserted: either a duplicate, or the sender has no session yet. The unique column tells which.
        stored = set(
            ConversationMessage.objects.filter(
                whatsapp_message_id__in={row.record.wamid for row in unresolved}
            ).values_list("whatsapp_message_id", flat=True)
        )
        for row in unresolved:
            if row.record.wamid in stored:
                row.outcome = "duplicate"
        new_senders = [row for row in unresolved if not row.outcome]
        if new_senders:
            _sessions_start(new_senders, summary)
            with_session = [row for row in new_senders if not row.outcome]
            _rows_insert(with_session, by_phone=False, summary=summary)
            for row in with_session:
                if not row.outcome:  # the session exists now: only a concurrent delivery can have won
                    row.outcome = "duplicate"
    for row in rows:
        if row.outcome == "duplicate":
            _duplicate(row.record, summary)


def message_too_old(timestamp: dt.datetime, *, now: dt.datetime) -> bool:
    """Older than WHATSAPP_MAX_MESSAGE_AGE_HOURS (24 h: WhatsApp's customer-service window, outside which only
    templates may be sent). Such a message is not answered, whether it arrives late or waited in our queue."""
    return now - timestamp > dt.timedelta(hours=settings.WHATSAPP_MAX_MESSAGE_AGE_HOURS)


def _inbound_expire(message_id: int) -> bool:
    """An accepted message that was not processed in time: recorded as ignored ("too old"), never turned."""
    expired = ConversationMessage.objects.filter(
        pk=message_id, processing_status__in=[Processing.RECEIVED, Processing.PROCESSING]
    ).update(processing_status=Processing.IGNORED, last_error=REASON_TOO_OLD)
    if expired:
        metrics.SWEEPER.labels("expired").inc()
        logger.warning("inbound %s waited more than %d h: not answered (too old)", message_id,
                       settings.WHATSAPP_MAX_MESSAGE_AGE_HOURS)  # fmt: skip
    return bool(expired)


def _inbound_triage(*, records: list[InboundMessage], now: dt.datetime) -> list[tuple[str, str]]:
    triage = []
    for record in records:
        if message_too_old(record.timestamp, now=now):
            triage.append((Processing.IGNORED, REASON_TOO_OLD))
        elif record.silent:
            triage.append((Processing.IGNORED, REASON_SILENT))
        else:
            triage.append((Processing.RECEIVED, ""))
    answerable = [i for i, (status, _) in enumerate(triage) if status == Processing.RECEIVED]
    limited = patients_rate_limited(phones=[records[i].sender for i in answerable], now=now)
    for i, is_limited in zip(answerable, limited, strict=True):
        if is_limited:
            triage[i] = (Processing.IGNORED, REASON_RATE_LIMITED)
    return triage


def _inbound_message(*, record: InboundMessage, status: str, reason: str, now: dt.datetime) -> ConversationMessage:
    return ConversationMessage(
        message_type=MessageType.USER,
        channel_type=record.kind,
        content=record.text,
        timestamp=record.timestamp,
        whatsapp_message_id=record.wamid,
        media_id=record.media_id[:128],
        processing_status=status,
        last_error=reason,
        entities={"inbound": _inbound_extras(record)},
        created_at=timezone.now(),  # the row's own insertion time, whatever `now` the caller decides by
    )


_MESSAGE_FIELDS = [f for f in ConversationMessage._meta.concrete_fields if not f.primary_key]
_INSERT_FIELDS = [f for f in _MESSAGE_FIELDS if f.attname != "session_id"]
_SESSION_FIELD = ConversationMessage._meta.get_field("session")
_WAMID_FIELD = ConversationMessage._meta.get_field("whatsapp_message_id")
_CHUNK = 200  # rows per statement: well under SQLite's bound-parameter limit


def _row_problem(message: ConversationMessage) -> str:
    """Why the database would refuse this row, checked here so that it cannot fail the whole statement."""
    for f in _INSERT_FIELDS:
        value = getattr(message, f.attname)
        if isinstance(f, models.CharField | models.TextField):
            if not isinstance(value, str):
                return f"{f.name} is not text"
            if "\x00" in value:
                return f"{f.name} contains NUL"
            if f.max_length and len(value) > f.max_length:
                return f"{f.name} longer than {f.max_length}"
        elif isinstance(f, models.JSONField):
            try:
                encoded = json.dumps(value, cls=f.encoder)
            except (TypeError, ValueError) as exc:
                return f"{f.name} not JSON: {exc}"
            if "\\u0000" in encoded:
                return f"{f.name} contains NUL"
    return ""


def _rows_insert(rows: list[_Row], *, by_phone: bool, summary: IngestSummary) -> None:
    """Inserts, marks and records (enqueues) the rows. A row left unmarked is a duplicate or, by_phone, a sender
    without a session."""
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        try:
            with _statement_savepoint():
                inserted = _insert_statement(chunk, by_phone=by_phone)
        except (OperationalError, InterfaceError):
            raise  # transient: refuse the whole POST rather than acknowledge an item we did not store
        except Exception:  # noqa: BLE001 - something slipped past _row_problem: find the item, keep the rest
            logger.warning("batch insert of %d inbound messages failed; inserting them one by one", len(chunk))
            inserted = {}
            for row in chunk:
                try:
                    with _statement_savepoint():
                        inserted.update(_insert_statement([row], by_phone=by_phone))
                except (OperationalError, InterfaceError):
                    raise
                except Exception:  # noqa: BLE001 - log it, count it, keep the rest of the batch
                    logger.exception("could not store inbound from %s", mask_phone(row.record.sender))
                    _item_error(row, summary)
        for row in chunk:
            message_id = inserted.pop(row.record.wamid, None)  # pop: a repeated id in one POST is a duplicate
            if message_id is not None:
                row.message.pk = message_id
                row.outcome = "inserted"
                # Enqueued now, not at the end of the POST: should a later statement fail (503), the rows already
                # committed must not wait for the sweeper, as Meta's retry will only find them as duplicates.
                _inbound_recorded(row, summary)


def _insert_statement(rows: list[_Row], *, by_phone: bool) -> dict[str, int]:
    """Runs `_insert_sql`; returns {wamid: id} for the rows inserted (RETURNING names only those)."""
    connection = transaction.get_connection()
    fields = _INSERT_FIELDS if by_phone else [_SESSION_FIELD, *_INSERT_FIELDS]
    params: list = []
    for row in rows:
        if by_phone:
            params.append(row.record.sender)
        params.extend(f.get_db_prep_save(getattr(row.message, f.attname), connection) for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(connection.vendor, by_phone, len(rows)), params)
        return {wamid: pk for pk, wamid in cursor.fetchall()}


@functools.lru_cache(maxsize=64)
def _insert_sql(vendor: str, by_phone: bool, row_count: int) -> str:
    """`INSERT ... SELECT ... FROM (VALUES ...) ON CONFLICT DO NOTHING RETURNING id, wamid`: the same text on
    PostgreSQL and SQLite (>= 3.35). by_phone joins the session on its phone, so no session read comes first.
    Cached: it depends only on its arguments, and building it costs about as much as sending it."""
    connection = transaction.get_connection()
    qn = connection.ops.quote_name
    fields = _INSERT_FIELDS if by_phone else [_SESSION_FIELD, *_INSERT_FIELDS]
    width = len(fields) + (1 if by_phone else 0)
    values = ", ".join(["(" + ", ".join(["%s"] * width) + ")"] * row_count)
    offset = 2 if by_phone else 1  # VALUES columns are named column1, column2, ... on both databases
    columns = [_value_expr(f, f"v.column{i + offset}", vendor, connection) for i, f in enumerate(fields)]
    source = f"FROM (VALUES {values}) AS v"
    if by_phone:
        session_table = qn(ConversationSession._meta.db_table)
        source += f" JOIN {session_table} AS s ON s.{qn('phone_number')} = v.column1"
        columns.insert(0, f"s.{qn('id')}")
        fields = [_SESSION_FIELD, *fields]
    table = qn(ConversationMessage._meta.db_table)
    wamid = qn(_WAMID_FIELD.column)
    # "WHERE true": SQLite's parser needs it between INSERT ... SELECT and ON CONFLICT.
    return (
        f"INSERT INTO {table} ({', '.join(qn(f.column) for f in fields)}) SELECT {', '.join(columns)} {source} "
        f"WHERE true ON CONFLICT ({wamid}) DO NOTHING RETURNING {qn('id')}, {wamid}"
    )


def _value_expr(field: models.Field, ref: str, vendor: str, connection) -> str:
    # PostgreSQL types VALUES columns from their literals (a column of NULLs is text): name the non-text types.
    # Never on SQLite, where CAST(... AS datetime) would turn the text into a number.
    if vendor != "postgresql" or isinstance(field, models.CharField | models.TextField):
        return ref
    return f"CAST({ref} AS {field.cast_db_type(connection)})"


def _sessions_start(rows: list[_Row], summary: IngestSummary) -> None:
    """First message of a patient: create the session (committed before the cache may name it)."""
    sessions: dict[str, int | None] = {}
    for row in rows:
        sender = row.record.sender
        if sender not in sessions:
            try:
                session_manager.invalidate(phone=sender)  # a cached copy of a row the database no longer has
                sessions[sender] = session_manager.get_or_start(phone=sender).pk
            except (OperationalError, InterfaceError):
                raise  # the database is unwell: the whole POST gets a 503 and Meta retries (dedupe makes it safe)
            except Exception:  # noqa: BLE001 - one bad item never drops the others
                logger.exception("could not open a session for %s", mask_phone(sender))
                sessions[sender] = None
        if sessions[sender] is None:
            _item_error(row, summary)
        else:
            row.message.session_id = sessions[sender]


def _item_error(row: _Row, summary: IngestSummary) -> None:
    row.outcome = "error"
    summary.errors += 1
    metrics.WEBHOOK_MESSAGES.labels(row.record.kind if isinstance(row.record.kind, str) else "?", "error").inc()


def _inbound_recorded(row: _Row, summary: IngestSummary) -> None:
    record, message = row.record, row.message
    summary.message_ids.append(message.pk)
    if message.processing_status == Processing.RECEIVED:
        summary.accepted += 1
        metrics.WEBHOOK_MESSAGES.labels(record.kind, "accepted").inc()
        message_id = message.pk
        transaction.on_commit(lambda: inbound_enqueue(message_id=message_id))  # at once in autocommit
        logger.info("inbound %s (%s) from %s [%s] accepted", message.pk, record.kind, mask_phone(record.sender),
                    mask_name(record.profile_name))  # fmt: skip
    else:
        summary.ignored += 1
        metrics.WEBHOOK_MESSAGES.labels(record.kind, "ignored").inc()
        logger.info("inbound %s (%s) from %s recorded, not answered: %s", message.pk, record.kind,
                    mask_phone(record.sender), message.last_error)  # fmt: skip


def _from_own_number(record: InboundMessage, summary: IngestSummary) -> bool:
    own = {n for n in (settings.WHATSAPP_BUSINESS_NUMBER, record.business_number) if n}
    if record.sender in {"".join(ch for ch in n if ch.isdigit()) for n in own}:
        logger.info("inbound %s comes from our own business number: ignored (no echo loops)", record.wamid)
        metrics.WEBHOOK_MESSAGES.labels(record.kind, "own_number").inc()
        summary.ignored += 1
        return True
    return False


def _inbound_extras(record: InboundMessage) -> dict:
    extras = {"option_id": record.option_id, "profile_name": record.profile_name}
    if record.user_id:
        extras["user_id"] = record.user_id
    if record.context_id:
        extras["context_id"] = record.context_id
    if record.error_code is not None:
        extras["error_code"] = record.error_code
    return extras


def _duplicate(record: InboundMessage, summary: IngestSummary) -> None:
    summary.duplicates += 1
    metrics.WEBHOOK_DUPLICATES.inc()
    metrics.WEBHOOK_MESSAGES.labels(record.kind, "duplicate").inc()
    logger.info("inbound %s is a duplicate delivery: skipped", record.wamid)
    return None


def inbound_enqueue(*, message_id: int) -> None:
    from api_gateway.tasks import process_inbound

    try:
        broker.task_publish(process_inbound, message_id)
    except CircuitOpen:  # Redis hung moments ago (core.redis_breaker): expected for a while, no traceback each time
        logger.warning("could not enqueue inbound %s (Redis breaker open); the sweeper will pick it up", message_id)
    except Exception:  # noqa: BLE001 - broker down: the row is durable and the sweeper re-enqueues it
        logger.exception("could not enqueue inbound %s; the sweeper will pick it up", message_id)


def patient_rate_limited(*, phone: str, now: dt.datetime | None = None) -> bool:
    """More than PATIENT_MAX_MESSAGES_PER_MINUTE in this clock minute. A cache outage allows (never drops)."""
    return patients_rate_limited(phones=[phone], now=now)[0]


def patients_rate_limited(*, phones: list[str], now: dt.datetime | None = None) -> list[bool]:
    """One verdict per message (a phone may repeat: each message counts). On Redis one pipelined round trip
    for the whole POST (INCR + EXPIRE per message); a cache outage allows every message (never drops)."""
    if not phones:
        return []
    now = now or timezone.now()
    keys = [f"{RATE_KEY_PREFIX}{phone}:{now:%Y%m%d%H%M}" for phone in phones]
    cache = caches["strict"]
    try:
        counts = _rate_counts_redis(cache, keys) if hasattr(cache, "client") else _rate_counts_generic(cache, keys)
    except Exception as exc:  # noqa: BLE001 - the limit is a courtesy; losing messages is not
        logger.warning("rate-limit counter unavailable (%s); allowing %s", type(exc).__name__,
                       ", ".join(sorted({mask_phone(p) for p in phones})))  # fmt: skip
        return [False] * len(phones)
    return [count > settings.PATIENT_MAX_MESSAGES_PER_MINUTE for count in counts]


# One round trip for the whole POST, without the client-side cost of a pipeline object: INCR every key and give a
# new key its window (the minute's key outlives its minute by at most that). django-redis stores integers raw, so
# these counters stay readable by cache.get/incr.
_RATE_LUA = """
local counts = {}
for i, key in ipairs(KEYS) do
  counts[i] = redis.call('INCR', key)
  if counts[i] == 1 then redis.call('EXPIRE', key, ARGV[1]) end
end
return counts
"""
_RATE_SHA = hashlib.sha1(_RATE_LUA.encode()).hexdigest()  # noqa: S324 - Redis names scripts by their SHA-1


def _rate_counts_redis(cache, keys: list[str]) -> list[int]:
    full_keys = [cache.make_key(key) for key in keys]
    client = cache.client.get_client(write=True)
    try:
        return client.evalsha(_RATE_SHA, len(full_keys), *full_keys, RATE_WINDOW_SECONDS)
    except NoScriptError:  # first call on this server (or after a restart/flush): EVAL also caches the script
        return client.eval(_RATE_LUA, len(full_keys), *full_keys, RATE_WINDOW_SECONDS)


def _rate_counts_generic(cache, keys: list[str]) -> list[int]:
    counts = []
    for key in keys:
        try:
            count = cache.incr(key)
        except ValueError:  # no counter yet for this minute
            count = 1 if cache.add(key, 1, timeout=RATE_WINDOW_SECONDS) else cache.incr(key)
        counts.append(count)
    return counts


def message_status_apply(*, update: StatusUpdate) -> bool:
    """Moves an outbound message's delivery status forward only; "failed" is final. Never starts a turn.
    Returns False for a stale, repeated or unknown status."""
    outbound = ConversationMessage.objects.filter(whatsapp_message_id=update.wamid, message_type=MessageType.BOT)
    if update.status == Delivery.FAILED:
        rows = outbound.exclude(delivery_status__in=[Delivery.FAILED, Delivery.READ]).update(
            delivery_status=Delivery.FAILED,
            error_code=update.error_code,
            last_error=f"{update.error_code}: {update.error_title}"[:1000],
        )
    else:
        lower = [s for s, rank in _DELIVERY_RANK.items() if rank < _DELIVERY_RANK[update.status]]
        # One conditional UPDATE: racing callbacks cannot move a message backwards.
        rows = outbound.filter(delivery_status__in=lower).update(delivery_status=update.status)
    outcome = "applied" if rows else "stale"
    metrics.WEBHOOK_MESSAGES.labels(f"status_{update.status}", outcome).inc()
    if update.status == Delivery.FAILED and rows:
        logger.error("outbound %s to %s failed at Meta: code %s %s", update.wamid, mask_phone(update.recipient),
                     update.error_code, update.error_title)  # fmt: skip
        for entry_id in outbound.filter(entities__has_key="waitlist").values_list("entities__waitlist", flat=True):
            waitlist_notice_failed(entry_id=entry_id)  # a waitlist notice that never arrived holds no time
    return bool(rows)


# --- Processing (the Celery task's body) ------------------------------------------------------------------
def inbound_process(*, message_id: int) -> None:
    """Under the patient's lock: send replies left pending, then run the turn of every unprocessed inbound
    message of the session up to this one, in (WhatsApp timestamp, id) order."""
    message = ConversationMessage.objects.select_related("session").filter(pk=message_id).first()
    if message is None:
        logger.warning("inbound %s vanished before processing", message_id)
        return
    phone = message.session.phone_number
    if message.channel_type == "audio" and _awaits_turn(message):
        # Before the lock: fetching and transcribing take seconds, which must not eat into the lock's time limit
        # (a turn still to run under it may call Gemini and send). The turn reads the stored transcript.
        voice_note_text(message)
    with session_manager.lock(phone):
        _send_pending_replies(session_id=message.session_id)
        due = (
            ConversationMessage.objects.filter(
                session_id=message.session_id,
                message_type=MessageType.USER,
                whatsapp_message_id__isnull=False,
                processing_status__in=[Processing.RECEIVED, Processing.PROCESSING],
            )
            .filter(Q(timestamp__lt=message.timestamp) | Q(timestamp=message.timestamp, pk__lte=message.pk))
            .order_by("timestamp", "pk")
        )
        for inbound in due:
            # Waited past WhatsApp's window (a long broker or worker outage): a turn now would act on a stale
            # request (a booking the patient confirmed days ago) and its reply could not be delivered.
            if message_too_old(inbound.timestamp, now=timezone.now()):
                _inbound_expire(inbound.pk)
                continue
            _process_one(inbound, phone=phone)


def _awaits_turn(message: ConversationMessage) -> bool:
    return message.processing_status in {Processing.RECEIVED, Processing.PROCESSING} and not message_too_old(
        message.timestamp, now=timezone.now()
    )


def _send_pending_replies(*, session_id: int) -> None:
    # Only replies to WhatsApp messages: a REST turn's reply went back in its HTTP response.
    pending = ConversationMessage.objects.filter(
        session_id=session_id,
        message_type=MessageType.BOT,
        delivery_status=Delivery.PENDING,
        reply_to__whatsapp_message_id__isnull=False,
    ).order_by("timestamp", "pk")
    for bot_id in pending.values_list("pk", flat=True):
        reply_send(bot_message_id=bot_id)


def _process_one(inbound: ConversationMessage, *, phone: str) -> None:
    from api_gateway.services import conversation

    ConversationMessage.objects.filter(pk=inbound.pk).update(
        processing_status=Processing.PROCESSING, attempts=F("attempts") + 1
    )
    inbound.attempts += 1
    inbound.processing_status = Processing.PROCESSING
    extras = (inbound.entities or {}).get("inbound", {})
    inbound_mark_read(message=inbound)
    text, channel_type = inbound.content, inbound.channel_type or "text"
    try:
        if channel_type == "audio" and (heard := voice_note_text(inbound)) is not None:
            text, channel_type = heard, "text"  # the words said are read like words typed
        result = conversation.turn_handle_unlocked(
            phone=phone,
            text=text,
            inbound=inbound,
            option_id=extras.get("option_id"),
            channel_type=channel_type,
            profile_name=extras.get("profile_name", ""),
        )
    except TRANSIENT_ERRORS:
        raise  # the task retries with backoff; the row stays "processing" for the sweeper meanwhile
    except Exception as exc:  # noqa: BLE001 - a broken turn must not block this patient's later messages
        logger.exception("turn for inbound %s from %s failed", inbound.pk, mask_phone(phone))
        _record_turn_failure(inbound, reason=f"{type(exc).__name__}: {exc}")
        return
    if result.bot_message_id:
        reply_send(bot_message_id=result.bot_message_id)


def _record_turn_failure(inbound: ConversationMessage, *, reason: str) -> None:
    final = inbound.attempts >= settings.SWEEP_MAX_ATTEMPTS
    ConversationMessage.objects.filter(pk=inbound.pk, processing_status=Processing.PROCESSING).update(
        processing_status=Processing.FAILED if final else Processing.RECEIVED, last_error=reason[:1000]
    )
    if final:
        metrics.SWEEPER.labels("failed").inc()
        logger.error("inbound %s failed for good after %d attempts: %s", inbound.pk, inbound.attempts, reason)
        _apologise(inbound.pk)


def _apologise(message_id: int) -> None:
    """A message given up on still gets an answer, once: an apology and the way to a person, never silence."""
    inbound = ConversationMessage.objects.filter(pk=message_id, message_type=MessageType.USER).first()
    if inbound is None or ConversationMessage.objects.filter(reply_to_id=message_id).exists():
        return
    reply = Reply(text=texts.TURN_FAILED)
    bot = ConversationMessage.objects.create(
        session_id=inbound.session_id,
        message_type=MessageType.BOT,
        channel_type=reply.kind,
        content=reply.text,
        entities={"reply": reply.to_dict()},
        timestamp=timezone.now(),
        reply_to=inbound,
        delivery_status=Delivery.PENDING,
    )
    reply_send(bot_message_id=bot.pk)


# --- Sweeper ----------------------------------------------------------------------------------------------
@dataclass
class SweepResult:
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)


def inbound_sweep(*, now: dt.datetime | None = None) -> SweepResult:
    """Re-enqueues inbound messages accepted but not processed after SWEEP_AFTER_MINUTES, fails them after
    SWEEP_MAX_ATTEMPTS, expires those older than WHATSAPP_MAX_MESSAGE_AGE_HOURS (so a broker that stays down does
    not mean re-enqueueing forever, nor answering days-old messages when it returns), and re-sends replies stuck
    in "pending" (never a second turn)."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(minutes=settings.SWEEP_AFTER_MINUTES)
    result = SweepResult()
    stuck = ConversationMessage.objects.filter(
        message_type=MessageType.USER,
        whatsapp_message_id__isnull=False,
        processing_status__in=[Processing.RECEIVED, Processing.PROCESSING],
        created_at__lt=cutoff,
    ).order_by("timestamp", "pk")
    for message_id, attempts, last_error, timestamp in stuck.values_list("pk", "attempts", "last_error", "timestamp"):
        if message_too_old(timestamp, now=now):
            if _inbound_expire(message_id):
                result.expired.append(message_id)
        elif attempts >= settings.SWEEP_MAX_ATTEMPTS:
            reason = f"gave up after {attempts} attempts" + (f": {last_error}" if last_error else "")
            ConversationMessage.objects.filter(
                pk=message_id, processing_status__in=[Processing.RECEIVED, Processing.PROCESSING]
            ).update(processing_status=Processing.FAILED, last_error=reason[:1000])
            metrics.SWEEPER.labels("failed").inc()
            logger.error("sweeper: inbound %s failed (%s)", message_id, reason)
            result.failed.append(message_id)
            _apologise(message_id)
        else:
            metrics.SWEEPER.labels("requeued").inc()
            logger.warning("sweeper: inbound %s stuck since before %s; re-enqueued", message_id, cutoff.isoformat())
            result.requeued.append(message_id)
            inbound_enqueue(message_id=message_id)
    pending = ConversationMessage.objects.filter(
        message_type=MessageType.BOT,
        delivery_status=Delivery.PENDING,
        reply_to__whatsapp_message_id__isnull=False,
        created_at__lt=cutoff,
    ).values_list("pk", "reply_to_id")
    for bot_id, inbound_id in pending:
        metrics.SWEEPER.labels("resent").inc()
        logger.warning("sweeper: reply %s still pending; sending it again", bot_id)
        result.resent.append(bot_id)
        inbound_enqueue(message_id=inbound_id)  # the task sends pending replies first and finds the turn done
    return result


# --- REST turns -------------------------------------------------------------------------------------------
def message_handle_api(
    *, phone: str, text: str, message_id: str = "", timestamp: str = "", idempotency_key: str = ""
) -> tuple[str, IdempotentResult]:
    """A synchronous turn for other channels. Returns (the idempotency key used, the result)."""
    if not idempotency_key:
        if not message_id and not timestamp:
            # Nothing identifies a retry: every call is new (the key is still returned for the client to reuse).
            timestamp = f"{timezone.now().timestamp():.6f}"
        idempotency_key = idempotency_key_derive(message_id=message_id, phone=phone, timestamp=timestamp)
    payload = {"phone": phone, "text": text, "message_id": message_id, "timestamp": timestamp}

    def run() -> dict:
        from api_gateway.services import conversation

        if patient_rate_limited(phone=phone):  # the webhook's per-patient limit; a replay is not counted
            raise RateLimited(ERROR_RATE_LIMITED)

        try:
            result = conversation.turn_handle(phone=phone, text=text, channel_type="api")
        except SessionLockTimeout:
            raise  # already a 503 with its own message
        except TRANSIENT_ERRORS as exc:
            logger.warning("REST turn for %s hit a transient error: %s", mask_phone(phone), type(exc).__name__)
            raise ServiceUnavailable(ERROR_TRY_AGAIN) from exc
        return {
            "reply": result.reply.as_text(),
            "state": result.state,
            "idempotency_key": idempotency_key,
            "options": [{"id": o.id, "title": o.title, "description": o.description} for o in result.reply.options],
            "nlu_source": result.nlu_source,
        }

    return idempotency_key, idempotent_run(key=idempotency_key, payload=payload, phone=phone, run=run)
