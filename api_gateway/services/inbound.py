"""Inbound messages: record (the dedupe), enqueue after commit, process in order, sweep, statuses, REST turns.

Exactly-once effect: the unique `whatsapp_message_id` column decides duplicates (never the cache); the turn
marks the inbound processed and stores the reply in one transaction; `reply_send` sends a pending reply once and
sets the inbound's `replied_at`. A replayed task therefore neither re-runs a turn nor re-sends a reply.
"""

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import caches
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone
from redis.exceptions import RedisError

from api_gateway.models import ConversationMessage, ConversationSession
from api_gateway.services.idempotency import IdempotentResult, idempotency_key_derive, idempotent_run
from api_gateway.services.sender import inbound_mark_read, reply_send
from api_gateway.services.session_cache import SessionConflict, SessionLockTimeout, session_manager
from api_gateway.whatsapp import InboundMessage, ParsedWebhook, StatusUpdate
from core import metrics
from core.exceptions import ServiceUnavailable
from core.logging import mask_name, mask_phone

logger = logging.getLogger(__name__)

Processing = ConversationMessage.Processing
Delivery = ConversationMessage.Delivery
MessageType = ConversationMessage.MessageType

# Errors worth a retry of the whole task (the turn did not commit): lock busy, database or Redis hiccups.
TRANSIENT_ERRORS = (SessionLockTimeout, SessionConflict, OperationalError, InterfaceError, RedisError)

ERROR_TRY_AGAIN = "Serviço temporariamente indisponível. Tente novamente em instantes."
REASON_TOO_OLD = "too old"
REASON_RATE_LIMITED = "rate limited"
REASON_SILENT = "not answered: reaction or system notice"
RATE_KEY_PREFIX = "rate:patient:"

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
    """Stores every message of a POST (one transaction, a savepoint per item so one bad item drops nothing
    else), applies statuses, and enqueues processing after commit. A transient database error propagates: the
    view answers 503 and Meta retries the whole POST, which the unique WhatsApp id makes safe."""
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
    # Sessions are resolved outside the batch transaction (a cache entry must never name an uncommitted row).
    sessions = {}
    for record in records:
        if record.sender not in sessions:
            try:
                sessions[record.sender] = _session_for(record.sender)
            except (OperationalError, InterfaceError):
                raise  # the database is unwell: the whole POST gets a 503 and Meta retries (dedupe makes it safe)
            except Exception:  # noqa: BLE001 - one bad item never drops the others
                logger.exception("could not open a session for %s", mask_phone(record.sender))
    with transaction.atomic():
        for record in records:
            session = sessions.get(record.sender)
            if session is None:
                summary.errors += 1
                metrics.WEBHOOK_MESSAGES.labels(record.kind, "error").inc()
                continue
            try:
                message_record_inbound(record=record, session_id=session.pk, now=now, summary=summary)
            except (OperationalError, InterfaceError):
                raise  # transient: refuse the whole batch rather than acknowledge an item we did not store
            except Exception:  # noqa: BLE001 - same: log it, count it, keep the rest of the batch
                logger.exception("could not store inbound %s from %s", record.wamid, mask_phone(record.sender))
                metrics.WEBHOOK_MESSAGES.labels(record.kind, "error").inc()
                summary.errors += 1
        for update in parsed.statuses:
            try:
                with transaction.atomic():
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


def _session_for(phone: str) -> ConversationSession:
    """From the database, the source of truth: only the id is needed here, and a cached copy of a row that no
    longer exists (restored database, erased patient) would fail the whole batch on its foreign key."""
    session = session_manager.get_from_database(phone=phone)
    if session is None:
        session_manager.invalidate(phone=phone)
        session = session_manager.get_or_start(phone=phone)
    return session


def _from_own_number(record: InboundMessage, summary: IngestSummary) -> bool:
    own = {n for n in (settings.WHATSAPP_BUSINESS_NUMBER, record.business_number) if n}
    if record.sender in {"".join(ch for ch in n if ch.isdigit()) for n in own}:
        logger.info("inbound %s comes from our own business number: ignored (no echo loops)", record.wamid)
        metrics.WEBHOOK_MESSAGES.labels(record.kind, "own_number").inc()
        summary.ignored += 1
        return True
    return False


def message_record_inbound(
    *, record: InboundMessage, session_id: int, now: dt.datetime, summary: IngestSummary | None = None
) -> ConversationMessage | None:
    """Inserts the inbound message under its unique WhatsApp id (in a savepoint: the unique constraint decides
    duplicates, no read first). Returns None for a duplicate."""
    summary = summary if summary is not None else IngestSummary()
    status, reason = Processing.RECEIVED, ""
    if now - record.timestamp > dt.timedelta(hours=settings.WHATSAPP_MAX_MESSAGE_AGE_HOURS):
        status, reason = Processing.IGNORED, REASON_TOO_OLD
    elif record.silent:
        status, reason = Processing.IGNORED, REASON_SILENT
    elif patient_rate_limited(phone=record.sender):
        status, reason = Processing.IGNORED, REASON_RATE_LIMITED
    try:
        with transaction.atomic():
            message = ConversationMessage.objects.create(
                session_id=session_id,
                message_type=MessageType.USER,
                channel_type=record.kind,
                content=record.text,
                timestamp=record.timestamp,
                whatsapp_message_id=record.wamid,
                media_id=record.media_id[:128],
                processing_status=status,
                last_error=reason,
                entities={"inbound": _inbound_extras(record)},
            )
    except IntegrityError:
        return _duplicate(record, summary)  # a concurrent delivery of the same message won
    summary.message_ids.append(message.pk)
    if status == Processing.RECEIVED:
        summary.accepted += 1
        metrics.WEBHOOK_MESSAGES.labels(record.kind, "accepted").inc()
        transaction.on_commit(lambda: inbound_enqueue(message_id=message.pk))
        logger.info(
            "inbound %s (%s) from %s [%s] accepted",
            message.pk,
            record.kind,
            mask_phone(record.sender),
            mask_name(record.profile_name),
        )
    else:
        summary.ignored += 1
        metrics.WEBHOOK_MESSAGES.labels(record.kind, "ignored").inc()
        logger.info("inbound %s (%s) from %s recorded, not answered: %s", message.pk, record.kind,
                    mask_phone(record.sender), reason)  # fmt: skip
    return message


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
        process_inbound.delay(message_id)
    except Exception:  # noqa: BLE001 - broker down: the row is durable and the sweeper re-enqueues it
        logger.exception("could not enqueue inbound %s; the sweeper will pick it up", message_id)


def patient_rate_limited(*, phone: str, now: dt.datetime | None = None) -> bool:
    """More than PATIENT_MAX_MESSAGES_PER_MINUTE in this clock minute. A cache outage allows (never drops)."""
    now = now or timezone.now()
    key = f"{RATE_KEY_PREFIX}{phone}:{now:%Y%m%d%H%M}"
    cache = caches["strict"]
    try:
        try:
            count = cache.incr(key)  # one round trip for every message but the first of the minute
        except ValueError:  # no counter yet for this minute
            count = 1 if cache.add(key, 1, timeout=120) else cache.incr(key)
    except Exception as exc:  # noqa: BLE001 - the limit is a courtesy; losing messages is not
        logger.warning("rate-limit counter unavailable (%s); allowing %s", type(exc).__name__, mask_phone(phone))
        return False
    return count > settings.PATIENT_MAX_MESSAGES_PER_MINUTE


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
            _process_one(inbound, phone=phone)


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
    try:
        result = conversation.turn_handle_unlocked(
            phone=phone,
            text=inbound.content,
            inbound=inbound,
            option_id=extras.get("option_id"),
            channel_type=inbound.channel_type or "text",
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


# --- Sweeper ----------------------------------------------------------------------------------------------
@dataclass
class SweepResult:
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)


def inbound_sweep(*, now: dt.datetime | None = None) -> SweepResult:
    """Re-enqueues inbound messages accepted but not processed after SWEEP_AFTER_MINUTES, fails them after
    SWEEP_MAX_ATTEMPTS, and re-sends replies stuck in "pending" (never a second turn)."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(minutes=settings.SWEEP_AFTER_MINUTES)
    result = SweepResult()
    stuck = ConversationMessage.objects.filter(
        message_type=MessageType.USER,
        whatsapp_message_id__isnull=False,
        processing_status__in=[Processing.RECEIVED, Processing.PROCESSING],
        created_at__lt=cutoff,
    ).order_by("timestamp", "pk")
    for message_id, attempts, last_error in stuck.values_list("pk", "attempts", "last_error"):
        if attempts >= settings.SWEEP_MAX_ATTEMPTS:
            reason = f"gave up after {attempts} attempts" + (f": {last_error}" if last_error else "")
            ConversationMessage.objects.filter(
                pk=message_id, processing_status__in=[Processing.RECEIVED, Processing.PROCESSING]
            ).update(processing_status=Processing.FAILED, last_error=reason[:1000])
            metrics.SWEEPER.labels("failed").inc()
            logger.error("sweeper: inbound %s failed (%s)", message_id, reason)
            result.failed.append(message_id)
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
    payload = {"phone": phone, "text": text, "message_id": message_id}

    def run() -> dict:
        from api_gateway.services import conversation

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
