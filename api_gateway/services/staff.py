"""A person of the clinic answering a patient from the admin ("Responder ao paciente").

The bot hands a conversation to a person when the patient asks for one or it failed to understand them
HANDOFF_AFTER_FAILURES times, and then keeps quiet: this is how that person answers. The reply is stored as a
pending bot message (channel "staff", its author in `entities["staff"]`) in reply to the patient's latest WhatsApp
message, under the patient's lock (`outbox.clinic_message_store`), and sent like any reply: by the patient's task,
which sends a session's pending replies first, and again by the sweeper if the Graph API failed transiently.

Free text reaches a patient only within 24 hours of their last message (WhatsApp's customer-service window):
outside it the reply is refused here, before anything is stored, rather than failing at Meta with 131047.

Writing to the patient takes the conversation over: the bot stays quiet until the staff release it, the patient
types "menu", or HANDOFF_IDLE_HOURS pass after the last message (this reply counts). "Devolver ao bot" with the
reply releases it at once.
"""

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import F, Max, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from api_gateway.models import (
    ConversationMessage,
    ConversationSession,
    ConversationState,
    followup_counts,
    patient_wrote,
)
from api_gateway.services import texts as T
from api_gateway.services.conversation import staff_reply_noted
from api_gateway.services.inbound import inbound_enqueue
from api_gateway.services.outbox import clinic_message_store, template_entity
from api_gateway.services.replies import Reply
from api_gateway.services.session_cache import session_manager
from core.exceptions import ConflictError, ValidationFailed
from core.logging import mask_phone
from rag_agent.selectors import clinic_catalog

logger = logging.getLogger(__name__)

CUSTOMER_SERVICE_WINDOW = dt.timedelta(hours=24)
TEXT_MAX_CHARS = 4096  # WhatsApp's limit for a text message's body
LOCK_WAIT_SECONDS = 5  # a turn of this patient under way (a Gemini call) usually ends well within this

MessageType, Processing, Delivery = (
    ConversationMessage.MessageType,
    ConversationMessage.Processing,
    ConversationMessage.Delivery,
)
UNREAD = (Processing.RECEIVED, Processing.PROCESSING)  # accepted, no turn has read them yet


@dataclass(frozen=True)
class ReplyWindow:
    """When free text can still reach the patient: until 24 h after their latest WhatsApp message."""

    last_inbound_id: int | None
    closes_at: dt.datetime | None

    def is_open(self, now: dt.datetime) -> bool:
        return self.closes_at is not None and now < self.closes_at


def reply_window(*, session_id: int) -> ReplyWindow:
    latest = (
        ConversationMessage.objects.filter(patient_wrote(), session_id=session_id)
        .order_by("-timestamp", "-pk")
        .values_list("pk", "timestamp")
        .first()
    )
    if latest is None:
        return ReplyWindow(last_inbound_id=None, closes_at=None)
    return ReplyWindow(last_inbound_id=latest[0], closes_at=latest[1] + CUSTOMER_SERVICE_WINDOW)


def handoff_waiting_sessions(*, now: dt.datetime | None = None) -> QuerySet[ConversationSession]:
    """The staff's inbox: conversations handed to a person whose patient wrote last (nothing from the staff since),
    while a reply can still reach them (within the 24-hour window). A handoff the staff answered and forgot to
    release, or one whose patient wrote days ago, is not waiting for anyone."""
    now = now or timezone.now()
    patient = patient_wrote("messages__")
    # A reply Meta refused, or one never sent (no credentials), answered nothing.
    answered = Q(messages__channel_type="staff") & ~Q(
        messages__delivery_status__in=[Delivery.FAILED, Delivery.NOT_SENT]
    )
    return (
        ConversationSession.objects.filter(current_state=ConversationState.HUMAN_HANDOFF)
        .annotate(
            patient_wrote=Max("messages__timestamp", filter=patient),  # WhatsApp's time: the window runs from it
            patient_arrived=Max("messages__created_at", filter=patient),  # ours, as the staff reply's: which came last
            staff_answered=Max("messages__created_at", filter=answered),
        )
        .filter(patient_wrote__gt=now - CUSTOMER_SERVICE_WINDOW)
        .filter(Q(staff_answered__isnull=True) | Q(patient_arrived__gt=F("staff_answered")))
    )


def newest_message_id(*, session_id: int) -> int | None:
    """The newest message of the conversation, whoever wrote it: what the reply page showed last, and what a reply
    checks it still is (`seen_message_id`)."""
    return (
        ConversationMessage.objects.filter(session_id=session_id).order_by("-pk").values_list("pk", flat=True).first()
    )


def staff_reply_send(
    *,
    session_id: int,
    text: str,
    staff_user,
    release: bool,
    seen_message_id: int | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Stores the staff's reply and hands it to the patient's task to send. Returns the stored message's id.

    `seen_message_id`: the newest message of the conversation the person had on screen; when the conversation has
    moved on since (the patient wrote again, or this reply was already sent by a double click), nothing is stored
    (ConflictError) so they read it first. With `release`, the patient's messages no turn has read yet count as
    answered by this reply: the bot answers only what comes after it.

    Raises ValidationFailed (nothing stored) for an empty or too long text, a patient who never wrote on WhatsApp or
    whose window has closed, and SessionLockTimeout when a turn of theirs holds the lock too long."""
    now = now or timezone.now()
    text = (text or "").replace("\x00", "").strip()
    if not text:
        raise ValidationFailed("Escreva a mensagem para o paciente.")
    if len(text) > TEXT_MAX_CHARS:
        raise ValidationFailed(f"A mensagem tem {len(text)} caracteres; o WhatsApp aceita até {TEXT_MAX_CHARS}.")

    def reply(window: ReplyWindow) -> tuple[str, dict]:
        if not window.is_open(now):
            closed = timezone.localtime(window.closes_at)
            raise ValidationFailed(
                f"A janela de 24 horas do WhatsApp fechou em {closed:%d/%m às %H:%M}: fora dela só são entregues "
                "modelos aprovados. Ligue para o paciente, ou responda quando ele escrever de novo."
            )
        return text, {"reply": Reply(text=text).to_dict()}

    return _staff_message_send(
        session_id=session_id,
        seen_message_id=seen_message_id,
        staff_user=staff_user,
        release=release,
        now=now,
        compose=reply,
        what="replied to",
    )


def staff_followup_send(
    *, session_id: int, staff_user, seen_message_id: int | None = None, now: dt.datetime | None = None
) -> int:
    """After the 24-hour window only an approved template reaches the patient: WHATSAPP_FOLLOWUP_TEMPLATE asks them
    to write back (with the clinic's name), which opens the window again for the staff's answer. Like a
    reply it takes the conversation over, so what the patient writes back reaches the staff, not the bot. Once per
    silence of the patient: a second one before they answer is refused (each template is billed, and it would be
    insistent). Returns the stored message's id; raises as `staff_reply_send`."""
    now = now or timezone.now()
    if not settings.WHATSAPP_FOLLOWUP_TEMPLATE:
        raise ValidationFailed(
            "Não há modelo aprovado para retomar a conversa (WHATSAPP_FOLLOWUP_TEMPLATE): ligue para o paciente."
        )

    def followup(window: ReplyWindow) -> tuple[str, dict]:
        if window.is_open(now):
            raise ValidationFailed("A janela de 24 horas está aberta: responda com uma mensagem normal.")
        earlier = (
            ConversationMessage.objects.filter(followup_counts(), session_id=session_id)
            .filter(pk__gt=window.last_inbound_id)
            .values_list("created_at", flat=True)
            .first()
        )
        if earlier is not None:
            raise ConflictError(
                f"O modelo já foi enviado em {timezone.localtime(earlier):%d/%m às %H:%M} e o paciente ainda não "
                "respondeu: quando ele escrever, a conversa aparece como aguardando resposta."
            )
        body = _followup_body()
        template = template_entity(settings.WHATSAPP_FOLLOWUP_TEMPLATE, body)
        return T.STAFF_FOLLOWUP.format(clinic=body[0]), {"template": template, "followup": True}

    return _staff_message_send(
        session_id=session_id,
        seen_message_id=seen_message_id,
        staff_user=staff_user,
        release=False,
        now=now,
        compose=followup,
        what="sent the follow-up template to",
    )


def _staff_message_send(
    *,
    session_id: int,
    seen_message_id: int | None,
    staff_user,
    release: bool,
    now: dt.datetime,
    compose: Callable[[ReplyWindow], tuple[str, dict]],
    what: str,
) -> int:
    """The path a staff reply and the follow-up template share: under the patient's lock, the conversation as the
    person saw it, `compose(window)` (which raises when this message cannot go now, else gives its text and
    entities), stored with its author in reply to the patient's latest WhatsApp message, taking the conversation
    over (or releasing it), then sent by the patient's task."""
    phone = ConversationSession.objects.filter(pk=session_id).values_list("phone_number", flat=True).first()
    if phone is None:
        raise ValidationFailed("Esta conversa não existe mais (o paciente pode ter pedido a exclusão dos dados).")
    with session_manager.lock(phone, wait_seconds=LOCK_WAIT_SECONDS):
        window = _window_checked(session_id=session_id, seen_message_id=seen_message_id)
        text, entities = compose(window)
        bot_id = clinic_message_store(
            phone=phone,
            text=text,
            entities={**entities, "staff": {"user_id": staff_user.pk, "username": staff_user.get_username()}},
            channel_type="staff",
            noted=lambda s: _noted(s, text=text, release=release, now=now),
            now=now,
            reply_to_id=window.last_inbound_id,
        )
    logger.info("staff user %s %s %s (message %s)", staff_user.pk, what, mask_phone(phone), bot_id)
    _send_soon(window)
    return bot_id


def _followup_body() -> list[str]:
    """The template's {{1}}: the clinic's name."""
    return [(clinic_catalog().get("clinica") or {}).get("nome") or "clínica"]


def followup_text() -> str:
    """What the follow-up template says (shown on the reply page before it is sent)."""
    return T.STAFF_FOLLOWUP.format(clinic=_followup_body()[0])


def _window_checked(*, session_id: int, seen_message_id: int | None) -> ReplyWindow:
    """Under the patient's lock: the conversation is as the person saw it, and the patient wrote on WhatsApp."""
    if seen_message_id is not None and newest_message_id(session_id=session_id) != seen_message_id:
        raise ConflictError(
            "A conversa mudou enquanto você escrevia (mensagem nova do paciente, ou esta resposta já foi "
            "enviada): confira as mensagens abaixo e envie de novo se ainda for o caso."
        )
    window = reply_window(session_id=session_id)
    if window.last_inbound_id is None:
        raise ValidationFailed("Este paciente não escreveu pelo WhatsApp: não há conversa para responder por aqui.")
    return window


def _send_soon(window: ReplyWindow) -> None:
    """A task sends the session's pending replies first, under the lock. The latest message's own task is still to
    come when it awaits its turn (a voice note being transcribed): a second one would transcribe it again."""
    if not ConversationMessage.objects.filter(pk=window.last_inbound_id, processing_status__in=UNREAD).exists():
        inbound_enqueue(message_id=window.last_inbound_id)


def _noted(session: ConversationSession, *, text: str, release: bool, now: dt.datetime) -> None:
    staff_reply_noted(session, text=text, release=release, now=now)
    if release:  # answered by this reply: a turn for them now would have the bot answer them again
        ConversationMessage.objects.filter(
            session_id=session.pk, message_type=MessageType.USER, processing_status__in=UNREAD
        ).update(processing_status=Processing.IGNORED, last_error="answered by the staff")


def handoff_notify(*, session_id: int, answered: bool = False) -> bool:
    """Tells the reception by e-mail (HANDOFF_NOTIFY_EMAILS) that a patient waits for a person (or, `answered`,
    answered the follow-up template the staff sent after the 24-hour window), with a link to the reply page. The
    least personal data an inbox needs: the first name and the phone's last four digits; what the patient wrote
    stays in the admin. Nothing is sent when the conversation was released meanwhile. Returns whether
    an e-mail went out; SMTP errors are raised (the task retries)."""
    if not settings.HANDOFF_NOTIFY_EMAILS:
        return False
    session = ConversationSession.objects.filter(pk=session_id).first()
    if session is None or session.current_state != ConversationState.HUMAN_HANDOFF:
        return False
    name = session.patient_name.split()[0] if session.patient_name.strip() else "Um paciente"
    when = timezone.localtime(session.last_activity)
    link = settings.ADMIN_BASE_URL + reverse("admin:api_gateway_conversationsession_reply", args=[session.pk])
    subject, body = (
        (T.HANDOFF_ANSWER_EMAIL_SUBJECT, T.HANDOFF_ANSWER_EMAIL_BODY)
        if answered
        else (T.HANDOFF_EMAIL_SUBJECT, T.HANDOFF_EMAIL_BODY)
    )
    send_mail(
        subject=subject.format(clinic=(clinic_catalog().get("clinica") or {}).get("nome") or "Clínica", name=name),
        message=body.format(
            name=name, phone_end=session.phone_number[-4:], time=f"{when:%H:%M}", date=f"{when:%d/%m}", link=link
        ),
        from_email=None,
        recipient_list=settings.HANDOFF_NOTIFY_EMAILS,
    )
    logger.info("reception told by e-mail that %s waits for a person", mask_phone(session.phone_number))
    return True
