"""The day-before appointment reminder over WhatsApp, with "Confirmar presença" / "Remarcar" / "Cancelar consulta".

Outside the 24-hour window WhatsApp delivers only approved templates, so the reminder is the template named by
WHATSAPP_REMINDER_TEMPLATE (blank: no reminders). Its three quick-reply buttons carry our payloads
("reminder:confirm:<id>", "reminder:reschedule:<id>", "reminder:cancel:<id>"), which come back as a "button"
message and are answered by the conversation like the patient's own words.

Each appointment is reminded once: `Agendamento.lembrete_enviado_em` is claimed by a conditional UPDATE in the same
transaction that stores the reminder as a pending bot message, so two workers (or beat firing twice) cannot both
send it. The message row is the outbox, as for replies: `reply_send` sends it and records the outcome; a send that
failed transiently is retried by the next run.

The same run tells the patients whose appointment an agenda block took (the doctor's holidays, the clinic's recess;
rag_agent.models.BloqueioAgenda) that it needs another time, through WHATSAPP_RESCHEDULE_TEMPLATE with "Remarcar" /
"Cancelar consulta" buttons (the reminder's own payloads), once per time booked (`Agendamento.aviso_bloqueio_em`).
The admin also starts a run as soon as a block is saved, so the patient hears of it within minutes.
"""

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from api_gateway.models import ConversationMessage, ConversationSession
from api_gateway.services import texts as T
from api_gateway.services.conversation import clinic_message_noted, reminder_offer
from api_gateway.services.outbox import clinic_message_store, template_entity
from api_gateway.services.sender import reply_send
from api_gateway.services.session_cache import LOCK_WAIT_SECONDS, session_manager
from core.phones import phone_forms, whatsapp_number
from rag_agent import selectors
from rag_agent import services as clinic_services
from rag_agent.closures import block_over
from rag_agent.models import Agendamento
from rag_agent.selectors import OPEN_STATUSES
from rag_agent.services import block_message

logger = logging.getLogger(__name__)

MIN_LEAD = dt.timedelta(hours=2)  # closer than this to the appointment, a reminder is more noise than help
MIN_AGE = dt.timedelta(hours=12)  # booked this recently, the patient remembers: no reminder
SEND_FROM, SEND_UNTIL = dt.time(8, 0), dt.time(20, 0)  # clinic-local hours when a reminder may go out
RESEND_AFTER = dt.timedelta(minutes=5)  # a pending reminder older than this is retried

Delivery = ConversationMessage.Delivery


@dataclass
class ReminderRun:
    skipped: str = ""  # why no reminder was looked at: "disabled", "quiet hours"
    quiet: bool = False  # outside the sending hours: nothing was sent
    due: list[int] = field(default_factory=list)  # appointment ids due (what a dry run reports)
    stored: list[int] = field(default_factory=list)  # appointment ids whose reminder was stored and handed to send
    no_number: list[int] = field(default_factory=list)  # appointment ids without a usable WhatsApp number
    resent: list[int] = field(default_factory=list)  # bot message ids of earlier reminders retried
    blocked_due: list[int] = field(default_factory=list)  # dry run / quiet hours: block notices still to send
    blocked: list[int] = field(default_factory=list)  # appointment ids whose block notice was stored and handed to send
    blocked_no_number: list[int] = field(default_factory=list)  # block notices without a usable WhatsApp number


@dataclass
class BlockNoticePlan:
    """What WhatsApp will do about the appointments a block just saved took (the admin tells the staff)."""

    to_tell: list[Agendamento]  # the patient gets the block notice
    told: list[Agendamento]  # an earlier block's notice for this time was sent already
    unreachable: list[Agendamento]  # no usable WhatsApp number: the staff must call
    at_eight: bool  # saved outside the sending hours: the notices go out at 08:00


def reminders_enabled() -> bool:
    return bool(settings.WHATSAPP_REMINDER_TEMPLATE)


def reminders_send(*, now: dt.datetime | None = None, dry_run: bool = False) -> ReminderRun:
    """Stores and sends the reminders due now. Safe to run often and from several workers at once: each
    appointment is claimed once, and each send happens under the patient's lock after re-reading the message."""
    now = now or timezone.now()
    run = ReminderRun()
    quiet = run.quiet = quiet_hours(now)
    if block_notices_enabled() and (dry_run or quiet):  # what the command lists when nothing is sent now
        run.blocked_due = [a.pk for a in selectors.appointments_blocked_untold(now=now)]
    if not dry_run and not quiet:
        run.resent = _resend_pending(now)  # reminders, cancellation and block notices that failed transiently
        run.blocked, run.blocked_no_number = _block_notices(now)
    if not reminders_enabled():
        run.skipped = "disabled"
        return run
    if quiet:
        run.skipped = "quiet hours"
        if not dry_run:  # a dry run still lists what is due, for the operator checking at night
            return run
    due = selectors.appointments_to_remind(
        earliest=now + MIN_LEAD,
        latest=now + dt.timedelta(hours=settings.REMINDER_HOURS_BEFORE),
        changed_before=now - MIN_AGE,
    )
    run.due = [a.pk for a in due]
    if dry_run:
        return run
    run.stored, run.no_number = _store_and_send_each(
        due, mark="lembrete_enviado_em", store=_reminder_store, what="reminder", now=now
    )
    return run


def _store_and_send_each(appointments, *, mark: str, store, what: str, now: dt.datetime) -> tuple[list, list]:
    """Stores and sends one clinic-started message per appointment (`store` claims the appointment's `mark` field
    and returns the message id, or None when another run claimed it first or it no longer applies). Returns the ids
    of the appointments whose message was stored, and of those without a usable WhatsApp number."""
    stored, no_number = [], []
    for appointment in appointments:
        phone = recipient(appointment.paciente_telefone)
        if phone is None:
            # Claimed all the same, so it is not looked at again every run; the staff see it in the log.
            Agendamento.objects.filter(pk=appointment.pk, **{f"{mark}__isnull": True}).update(**{mark: now})
            logger.warning("appointment %s has no WhatsApp number; no %s", appointment.pk, what)
            no_number.append(appointment.pk)
            continue
        try:
            bot_id = store(appointment, phone=phone, now=now)
        except Exception:  # one appointment's trouble (a lock wait, a conflict) must not hold back the others
            logger.exception("%s for appointment %s not stored; the next run tries again", what, appointment.pk)
            continue
        if bot_id is not None:
            stored.append(appointment.pk)
            template_deliver(bot_id, now=now)
    return stored, no_number


def _claim(appointment: Agendamento, *, mark: str, statuses, now: dt.datetime):
    """The claim of `clinic_message_store`: sets the appointment's `mark` field if it is still empty and the
    appointment still in `statuses`, in the transaction that stores the message; False when another run won."""

    def claim() -> bool:
        still = Agendamento.objects.filter(pk=appointment.pk, status__in=statuses, **{f"{mark}__isnull": True})
        return bool(still.update(**{mark: now}))

    return claim


def quiet_hours(now: dt.datetime) -> bool:
    return not SEND_FROM <= timezone.localtime(now).time() < SEND_UNTIL


def block_notices_enabled() -> bool:
    return bool(settings.WHATSAPP_RESCHEDULE_TEMPLATE)


def block_notices_send(*, now: dt.datetime | None = None) -> list[int]:
    """Tells each patient whose open appointment an agenda block now covers that it needs another time, once per
    time booked, through the approved template WHATSAPP_RESCHEDULE_TEMPLATE (blank: no message; the staff got the
    list when they saved the block). Within the reminders' sending hours only: a block saved at night is told at
    08:00. Safe to run often and from several workers at once (each appointment is claimed once). Returns the ids of
    the appointments whose notice was stored and handed to send."""
    return _block_notices(now or timezone.now())[0]


def _block_notices(now: dt.datetime) -> tuple[list[int], list[int]]:
    if not block_notices_enabled() or quiet_hours(now):
        return [], []
    untold = selectors.appointments_blocked_untold(now=now)
    return _store_and_send_each(
        untold, mark="aviso_bloqueio_em", store=_block_notice_store, what="block notice", now=now
    )


def block_notices_plan(caught: list[Agendamento], *, now: dt.datetime | None = None) -> BlockNoticePlan | None:
    """What the notices will do for `caught` (the appointments a block just saved took), or None when they are off."""
    if not block_notices_enabled():
        return None
    unreachable = [a for a in caught if whatsapp_number(a.paciente_telefone) is None]
    told = [a for a in caught if a not in unreachable and a.aviso_bloqueio_em is not None]
    to_tell = [a for a in caught if a not in unreachable and a not in told]
    return BlockNoticePlan(
        to_tell=to_tell, told=told, unreachable=unreachable, at_eight=quiet_hours(now or timezone.now())
    )


def _block_over(appointment: Agendamento) -> dict | None:
    """The agenda block (as the database has it now) that covers the appointment's time, if any."""
    blocks = selectors.blocks_for_doctor(appointment.medico_id, since=appointment.data)
    return block_over(blocks, appointment.data, appointment.hora, appointment.minutes)


def _block_notice_store(appointment: Agendamento, *, phone: str, now: dt.datetime) -> int | None:
    block = _block_over(appointment)
    if block is None:
        return None
    body = [block_message(block, appointment.medico.nome), *_appointment_fields(appointment)]
    away, patient, doctor, when, time = body
    text = T.BLOCK_NOTICE.format(away=away, patient=patient, doctor=doctor, when=when, time=time)
    return _appointment_template_store(
        appointment,
        kind="blocked",
        template=settings.WHATSAPP_RESCHEDULE_TEMPLATE,
        body=body,
        text=text,
        actions=("reschedule", "cancel"),
        claim=_claim(appointment, mark="aviso_bloqueio_em", statuses=OPEN_STATUSES, now=now),
        phone=phone,
        now=now,
    )


def _appointment_template_store(
    appointment: Agendamento, *, kind: str, template: str, body: list[str], text: str, actions, claim, phone, now
) -> int | None:
    """Stores a reminder ("reminder") or a block notice ("blocked") of an appointment: the template with the
    reminder's button payloads for `actions`, noted in the conversation so a typed answer means that appointment."""
    buttons = [f"reminder:{action}:{appointment.pk}" for action in actions]
    entities = {
        "template": template_entity(template, body, buttons=buttons),
        kind: appointment.pk,
        "at": _start(appointment).isoformat(),
    }
    return template_store(
        phone=phone,
        text=text,
        entities=entities,
        claim=claim,
        noted=lambda s: reminder_offer(s, appointment=appointment, text=text, blocked=kind == "blocked"),
        now=now,
    )


def recipient(stored: str) -> str | None:
    """Where a message the clinic starts goes: the conversation the patient already has, when they have written
    (the staff may have typed the mobile with its ninth digit while WhatsApp's id for it has none, or the other way
    round; a foreign wa_id has no "+"), the one they have on WhatsApp first (a REST client may have used the other
    form), else the stored phone as WhatsApp writes it. None: it cannot be a phone."""
    number = whatsapp_number(stored)
    forms = {*phone_forms(stored), *(phone_forms(number) if number else ())}
    on_whatsapp = ConversationMessage.objects.filter(session=OuterRef("pk"), whatsapp_message_id__isnull=False)
    known = (
        ConversationSession.objects.filter(phone_number__in=forms)
        .annotate(on_whatsapp=Exists(on_whatsapp))
        .order_by("-on_whatsapp", "-last_activity")
        .values_list("phone_number", flat=True)
        .first()
    )
    return known or number


def _appointment_fields(appointment: Agendamento) -> list[str]:
    """The patient, the doctor, the date ("segunda-feira, 07/12/2026") and the time: the body of every template
    about an appointment (the reminder adds the address, the block notice puts the block first)."""
    return [
        appointment.paciente_nome,
        appointment.medico.nome,
        T.date_long(appointment.data),
        f"{appointment.hora:%H:%M}",
    ]


def _reminder_text(appointment: Agendamento) -> tuple[str, list[str]]:
    clinic = selectors.clinic_catalog().get("clinica") or {}
    fields = [*_appointment_fields(appointment), clinic.get("endereco") or clinic.get("nome") or ""]
    patient, doctor, when, time, address = fields
    return T.REMINDER.format(patient=patient, doctor=doctor, when=when, time=time, address=address), fields


def _reminder_store(appointment: Agendamento, *, phone: str, now: dt.datetime) -> int | None:
    text, body = _reminder_text(appointment)
    return _appointment_template_store(
        appointment,
        kind="reminder",
        template=settings.WHATSAPP_REMINDER_TEMPLATE,
        body=body,
        text=text,
        actions=("confirm", "reschedule", "cancel"),
        claim=_claim(appointment, mark="lembrete_enviado_em", statuses=[Agendamento.Status.AGENDADO], now=now),
        phone=phone,
        now=now,
    )


def template_store(
    *, phone: str, text: str, entities: dict, claim, noted, now: dt.datetime, lock_wait: float = LOCK_WAIT_SECONDS
) -> int | None:
    with session_manager.lock(phone, wait_seconds=lock_wait):
        return clinic_message_store(
            phone=phone, text=text, entities=entities, channel_type="template", claim=claim, noted=noted, now=now
        )


def cancellation_notify(*, agendamento_id: int, now: dt.datetime | None = None) -> int | None:
    """Tells the patient that the clinic cancelled their appointment (the staff did, in the admin), once, through
    the approved template WHATSAPP_CANCELLATION_TEMPLATE (blank: no message). Only for an appointment still
    cancelled and still ahead. Returns the stored message's id, or None when nothing was sent."""
    now = now or timezone.now()
    if not settings.WHATSAPP_CANCELLATION_TEMPLATE:
        return None
    appointment = Agendamento.objects.select_related("medico").filter(pk=agendamento_id).first()
    if appointment is None or not _still_relevant(appointment, kind="cancelled", now=now):
        return None
    phone = recipient(appointment.paciente_telefone)
    if phone is None:
        logger.warning(
            "appointment %s has no WhatsApp number; the patient was not told of its cancellation", agendamento_id
        )
        return None
    body = _appointment_fields(appointment)
    patient, doctor, when, time = body
    text = T.CANCELLED_BY_CLINIC.format(patient=patient, doctor=doctor, when=when, time=time)
    template = template_entity(settings.WHATSAPP_CANCELLATION_TEMPLATE, body)
    entities = {"template": template, "cancelled": appointment.pk, "at": _start(appointment).isoformat()}

    def claim() -> bool:  # under the patient's lock: a second notice for the same cancellation finds the first
        return not ConversationMessage.objects.filter(
            message_type=ConversationMessage.MessageType.BOT,
            channel_type="template",
            entities__cancelled=appointment.pk,
        ).exists()

    bot_id = template_store(
        phone=phone,
        text=text,
        entities=entities,
        claim=claim,
        noted=lambda s: clinic_message_noted(s, text=text),
        now=now,
    )
    if bot_id is not None:
        template_deliver(bot_id, now=now)
    return bot_id


def _still_relevant(appointment: Agendamento, *, kind: str, now: dt.datetime) -> bool:
    """A reminder is for an appointment still "agendado" at the time it named and in no block; a cancellation notice
    for one still cancelled; a block notice for one still open and still inside a block; all only before it
    starts."""
    if _start(appointment) <= now:
        return False
    if kind == "cancelled":
        return appointment.status == Agendamento.Status.CANCELADO
    if kind == "blocked":
        return appointment.status in OPEN_STATUSES and _block_over(appointment) is not None
    # A block saved since the reminder was stored: "confirm your presence" would contradict the block's notice.
    reminded = appointment.status == Agendamento.Status.AGENDADO and appointment.lembrete_enviado_em is not None
    return reminded and _block_over(appointment) is None


def _start(appointment: Agendamento) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(appointment.data, appointment.hora))


def template_deliver(bot_id: int, *, now: dt.datetime) -> None:
    """Sends a stored reminder, cancellation, block notice or waitlist notice, under the patient's lock (as
    replies are): a second run, or a retry, finds it no longer pending and sends nothing. One whose appointment has
    changed since (a reminded one confirmed, cancelled or moved; a cancelled one reopened; a blocked one moved,
    cancelled or freed by the block's removal) or has started, or whose patient left the waitlist (booked, was
    erased), is not sent at all ("not_sent")."""
    phone = ConversationMessage.objects.filter(pk=bot_id).values_list("session__phone_number", flat=True).first()
    if phone is None:
        return
    with session_manager.lock(phone):
        entities = (
            ConversationMessage.objects.filter(pk=bot_id, delivery_status=Delivery.PENDING)
            .values_list("entities", flat=True)
            .first()
        )
        if entities is None:
            return  # sent, or given up on, meanwhile
        if entities.get("waitlist"):  # a free time for a waiting patient: unless they booked or left meanwhile
            current, why = selectors.waitlist_entry_told(entities["waitlist"]), "the patient left the waitlist"
        else:
            kind = next((k for k in ("cancelled", "blocked") if entities.get(k)), "reminder")
            appointment = Agendamento.objects.select_related("medico").filter(pk=entities.get(kind)).first()
            current = (
                appointment is not None
                and entities.get("at") == _start(appointment).isoformat()
                and _still_relevant(appointment, kind=kind, now=now)
            )
            why = "the appointment changed"
        if not current:
            ConversationMessage.objects.filter(pk=bot_id, delivery_status=Delivery.PENDING).update(
                delivery_status=Delivery.NOT_SENT, last_error=f"{why} before the message was sent"
            )
            logger.info("template message %s not sent: %s", bot_id, why)
            return
        reply_send(bot_message_id=bot_id)
        if entities.get("waitlist"):
            outcome = ConversationMessage.objects.filter(pk=bot_id).values_list("delivery_status", flat=True).first()
            if outcome in {Delivery.FAILED, Delivery.NOT_SENT}:  # never reached the patient: not told after all
                clinic_services.waitlist_notice_failed(entry_id=entities["waitlist"])


def _resend_pending(now: dt.datetime) -> list[int]:
    """Template messages whose send failed transiently earlier (still "pending"): tried again, within bounds
    (`reply_send` fails them for good after SWEEP_MAX_ATTEMPTS)."""
    pending = list(
        ConversationMessage.objects.filter(
            message_type=ConversationMessage.MessageType.BOT,
            channel_type="template",
            delivery_status=Delivery.PENDING,
            created_at__lt=now - RESEND_AFTER,
        ).values_list("pk", flat=True)
    )
    for bot_id in pending:
        template_deliver(bot_id, now=now)
    return pending
