"""Celery tasks: thin wrappers that load by id and call a service (inline on the embedded default)."""

import logging
import smtplib
import socket

from celery import shared_task

from api_gateway.services.inbound import TRANSIENT_ERRORS, inbound_process, inbound_sweep
from api_gateway.services.reminders import block_notices_send, cancellation_notify, reminders_send
from api_gateway.services.staff import handoff_notify
from api_gateway.services.waitlist import waitlist_notify

logger = logging.getLogger(__name__)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=5,
)
def process_inbound(message_id: int) -> None:
    """Bounded retries; after the last one the row stays "received"/"processing" and the sweeper takes over."""
    inbound_process(message_id=message_id)


@shared_task(acks_late=True)
def sweep_stuck() -> dict:
    result = inbound_sweep()
    return {
        "requeued": len(result.requeued),
        "failed": len(result.failed),
        "resent": len(result.resent),
        "expired": len(result.expired),
    }


@shared_task(acks_late=True)
def send_reminders() -> dict:
    """Beat, every 10 minutes: the day-before reminders due now, the notices of appointments an agenda block
    took (each appointment once), and the waitlists' notices of times that opened (each entry once)."""
    run = reminders_send()
    waitlist = waitlist_notify()
    return {
        "skipped": run.skipped,
        "stored": len(run.stored),
        "resent": len(run.resent),
        "blocked": len(run.blocked),
        "waitlist_told": len(waitlist.told),
        "waitlist_expired": waitlist.expired,
    }


@shared_task(acks_late=True, autoretry_for=TRANSIENT_ERRORS, retry_backoff=2, max_retries=5)
def notify_blocked() -> int:
    """The staff saved an agenda block: the patients whose appointments it took are told now rather than at the next
    beat run (each once; see block_notices_send)."""
    return len(block_notices_send())


@shared_task(acks_late=True, autoretry_for=TRANSIENT_ERRORS, retry_backoff=2, max_retries=5)
def notify_cancellation(agendamento_id: int) -> None:
    """The staff cancelled an appointment in the admin: the patient is told (once; see cancellation_notify)."""
    cancellation_notify(agendamento_id=agendamento_id)


@shared_task(acks_late=True, autoretry_for=TRANSIENT_ERRORS, retry_backoff=2, max_retries=5)
def notify_waitlist(*given_up: list) -> int:
    """A time opened (a patient or the staff cancelled or moved an appointment, the staff lifted a block or opened
    hours): the first in line on the waitlists are told now rather than at beat's next run. `given_up`: [phone,
    doctor id] of the times given up, whose patients are not told of them (see waitlist_notify: each entry is told
    once however many runs there are)."""
    return len(waitlist_notify(given_up=[(phone, medico_id) for phone, medico_id in given_up]).told)


# A mail server that cannot be reached now may be reached later; one that refuses the sender, a recipient or the
# login will refuse again (smtplib's errors are all OSErrors, so the list is explicit).
SMTP_TRANSIENT = (
    smtplib.SMTPConnectError,
    smtplib.SMTPServerDisconnected,
    ConnectionError,
    TimeoutError,
    socket.gaierror,
)


@shared_task(bind=True, acks_late=True, max_retries=5)
def notify_handoff(self, session_id: int, answered: bool = False) -> bool:
    """A patient was handed to a person, or (`answered`) answered the staff's follow-up template: the reception is
    told by e-mail (HANDOFF_NOTIFY_EMAILS; see handoff_notify).
    Inline (the embedded default: tasks run inside the turn) there is one attempt, never a retry loop in a turn."""
    try:
        return handoff_notify(session_id=session_id, answered=answered)
    except SMTP_TRANSIENT as exc:
        if self.request.is_eager:
            logger.warning("handoff e-mail for session %s not sent (%s)", session_id, type(exc).__name__)
            return False
        raise self.retry(exc=exc, countdown=5 * 2**self.request.retries) from exc
    except smtplib.SMTPException as exc:
        logger.error("handoff e-mail for session %s refused by the mail server: %s", session_id, exc)
        return False
