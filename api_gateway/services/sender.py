"""Sending stored bot replies through the Graph API, with bounded retries, and recording the outcome.

The bot message row is the outbox: the turn stores it with delivery_status "pending"; `reply_send` sends it and
records sent / failed / not_sent, the outbound WhatsApp id, and the inbound's `replied_at` mark. A message that is
no longer pending is never sent again, so replaying a task cannot answer twice. Once Meta has accepted a message,
recording it is retried through database errors for a few seconds (`RECORD_MAX_ATTEMPTS`): a row left "pending"
would be sent again by the task's retry or the sweeper. (A crash in that window can still repeat one send: the
Graph API has no idempotency key.)
"""

import logging

import httpx
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from api_gateway.clients import graph
from api_gateway.models import ConversationMessage, patient_wrote
from api_gateway.services.replies import Reply
from core import metrics
from core.logging import mask_phone

logger = logging.getLogger(__name__)

Delivery = ConversationMessage.Delivery

SEND_MAX_ATTEMPTS = 4
SEND_MAX_SECONDS = 30.0
RECORD_MAX_ATTEMPTS = 6  # 0.05 + 0.1 + 0.2 + 0.4 + 0.8 s of waits: rides out a lock or a reconnect
# Multiplied on rate limits (130429 throughput, 131056 same recipient): Meta asks to slow down, not to hammer.
RATE_LIMIT_BACKOFF_FACTOR = 4


def _retry_base_seconds() -> float:
    return settings.WHATSAPP_RETRY_BASE_SECONDS


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, graph.GraphError):
        return exc.retryable
    return isinstance(exc, httpx.TransportError)  # timeouts, refused connections, broken pipes


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    delay = _retry_base_seconds() * 2 ** (state.attempt_number - 1)
    if isinstance(exc, graph.GraphError) and exc.rate_limited:
        delay *= RATE_LIMIT_BACKOFF_FACTOR
    return min(delay, SEND_MAX_SECONDS / 2)


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    code = getattr(exc, "code", None)
    logger.warning(
        "Graph API attempt %d failed (%s, code %s); retrying", state.attempt_number, type(exc).__name__, code
    )
    metrics.OUTBOUND.labels("retry").inc()


_with_retries = retry(
    retry=retry_if_exception(_retryable),
    wait=_wait,
    stop=stop_after_attempt(SEND_MAX_ATTEMPTS) | stop_after_delay(SEND_MAX_SECONDS),
    before_sleep=_log_retry,
    reraise=True,
)


@_with_retries
def _send(payload: dict) -> str:
    return graph.graph_send_payload(payload=payload)


def sending_enabled() -> bool:
    return bool(settings.WHATSAPP_ACCESS_TOKEN)


def reply_send(*, bot_message_id: int) -> None:
    """Sends one stored bot reply unless it already left (or failed for good). Raises nothing for Graph errors:
    the outcome is recorded on the row; transient failures that outlive the retries stay "pending" for the
    sweeper, up to SWEEP_MAX_ATTEMPTS."""
    bot = ConversationMessage.objects.select_related("session").get(pk=bot_message_id)
    if bot.delivery_status not in (Delivery.PENDING, ""):
        logger.info("bot message %s already %s; not sending again", bot.pk, bot.delivery_status)
        return
    phone = bot.session.phone_number
    if not sending_enabled():
        logger.info("WHATSAPP_ACCESS_TOKEN is blank: reply to %s stored, not sent", mask_phone(phone))
        _record(bot, status=Delivery.NOT_SENT)
        metrics.OUTBOUND.labels("not_sent").inc()
        return
    entities = bot.entities or {}
    if entities.get("followup") and _patient_wrote_since(bot):
        # The staff's "please write back" template, still pending when the patient wrote anyway: their message
        # reopened the window, and the template (billed) would only ask for what they just did.
        ConversationMessage.objects.filter(pk=bot.pk, delivery_status__in=[Delivery.PENDING, ""]).update(
            delivery_status=Delivery.NOT_SENT, last_error="the patient wrote before it was sent"
        )
        logger.info("follow-up %s to %s not sent: the patient wrote first", bot.pk, mask_phone(phone))
        return
    if entities.get("template"):  # a message the clinic starts (a reminder): only a template may open it
        payload = graph.template_payload(to=phone, template=entities["template"])
    else:
        payload = graph.reply_payload(to=phone, reply=Reply.from_dict(bot.content, entities.get("reply")))
    ConversationMessage.objects.filter(pk=bot.pk).update(attempts=F("attempts") + 1)
    try:
        wamid = _send(payload)
    except graph.GraphError as exc:
        _record_failure(bot, phone=phone, code=exc.code, reason=str(exc), retryable=exc.retryable)
        return
    except httpx.TransportError as exc:
        _record_failure(bot, phone=phone, code=None, reason=f"{type(exc).__name__}: {exc}", retryable=True)
        return
    _record_sent(bot, wamid=wamid)
    metrics.OUTBOUND.labels("sent").inc()
    logger.info("reply %s sent to %s as %s (%s)", bot.pk, mask_phone(phone), wamid, payload.get("type"))


def _patient_wrote_since(bot: ConversationMessage) -> bool:
    return ConversationMessage.objects.filter(
        patient_wrote(), session_id=bot.session_id, created_at__gt=bot.created_at
    ).exists()


def _record(bot: ConversationMessage, *, status: str, wamid: str | None = None) -> None:
    now = timezone.now()
    with transaction.atomic():
        fields = {"delivery_status": status, "last_error": "", "error_code": None}
        if wamid:
            fields["whatsapp_message_id"] = wamid
        # Guarded on "still pending": a status callback that raced ahead is never overwritten.
        ConversationMessage.objects.filter(pk=bot.pk, delivery_status__in=[Delivery.PENDING, ""]).update(**fields)
        if bot.reply_to_id:
            ConversationMessage.objects.filter(pk=bot.reply_to_id, replied_at__isnull=True).update(replied_at=now)


def _record_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    logger.warning("reply sent, but recording it failed (%s); retrying so it is not sent twice", type(exc).__name__)
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()  # a dropped connection is replaced on the next query


@retry(
    retry=retry_if_exception_type((OperationalError, InterfaceError)),
    wait=wait_exponential(multiplier=0.05, max=1.0),
    stop=stop_after_attempt(RECORD_MAX_ATTEMPTS),
    before_sleep=_record_retry,
    reraise=True,
)
def _record_sent(bot: ConversationMessage, *, wamid: str) -> None:
    _record(bot, status=Delivery.SENT, wamid=wamid)


def _record_failure(bot: ConversationMessage, *, phone: str, code: int | None, reason: str, retryable: bool) -> None:
    attempts = ConversationMessage.objects.values_list("attempts", flat=True).get(pk=bot.pk)
    final = not retryable or attempts >= settings.SWEEP_MAX_ATTEMPTS
    fields = {"last_error": reason[:1000], "error_code": code}
    if final:
        fields["delivery_status"] = Delivery.FAILED
    ConversationMessage.objects.filter(pk=bot.pk, delivery_status__in=[Delivery.PENDING, ""]).update(**fields)
    if retryable and not final:
        logger.warning("reply %s to %s not sent yet (%s); the sweeper retries it", bot.pk, mask_phone(phone), reason)
        metrics.OUTBOUND.labels("deferred").inc()
    else:
        # Loud on purpose: 190 (expired token), 131047 (24-hour window), 368 (blocked) need a person.
        logger.error("reply %s to %s FAILED permanently, Graph code %s: %s", bot.pk, mask_phone(phone), code, reason)
        metrics.OUTBOUND.labels("failed").inc()


def inbound_mark_read(*, message: ConversationMessage) -> None:
    """Blue ticks and the typing indicator while the turn runs. Best effort: never blocks the reply."""
    if not sending_enabled() or not message.whatsapp_message_id:
        return
    try:
        graph.graph_mark_read(message_id=message.whatsapp_message_id, typing=True)
    except (graph.GraphError, httpx.HTTPError) as exc:
        # The class says which step failed: ConnectTimeout and ReadTimeout both read "timed out".
        logger.warning("mark-read for inbound %s failed (%s: %s); continuing", message.pk, type(exc).__name__, exc)
