"""The reception is told by e-mail when a patient is handed to a person: the real turn through the webhook, the
Celery task, Django's SMTP backend talking to a local SMTP server (aiosmtpd)."""

import datetime as dt
import socket
import threading
import time
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller

from api_gateway.models import ConversationSession, ConversationState
from api_gateway.services import staff
from api_gateway.services.session_cache import session_manager
from tests.fakes import graph_server
from tests.fakes.graph_server import load_payload, post_webhook

celery_inline = graph_server.celery_inline
fake_graph = graph_server.fake_graph

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_inline")]

PATIENT = "5511999990001"  # the sender of tests/fixtures/whatsapp/text.json ("João Silva")
RECEPTION = ["recepcao@clinica.example", "gerente@clinica.example"]


class _Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp(settings):
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", controller.port, False
    settings.EMAIL_TIMEOUT = 2
    settings.DEFAULT_FROM_EMAIL = "bot@clinica.example"
    settings.HANDOFF_NOTIFY_EMAILS = RECEPTION
    settings.ADMIN_BASE_URL = "https://clinica.example"
    yield inbox
    controller.stop()


def _says(client, text: str, *, seq: int) -> None:
    payload = load_payload("text", now=time.time() + seq)
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message["id"], message["text"]["body"] = f"wamid.MAIL{seq:04d}", text
    assert post_webhook(client, payload).status_code == 200


def _session() -> ConversationSession:
    return ConversationSession.objects.get(phone_number=PATIENT)


def test_a_patient_asking_for_a_person_is_announced_to_the_reception_once(client, clinic, fake_graph, smtp):
    _says(client, "quero falar com um atendente", seq=1)

    assert _session().current_state == ConversationState.HUMAN_HANDOFF
    assert len(smtp.messages) == 1
    recipients, mail = smtp.messages[0]
    assert sorted(recipients) == sorted(RECEPTION)
    assert mail["From"] == "bot@clinica.example"
    assert "aguarda atendimento no WhatsApp" in mail["Subject"] and clinic.nome in mail["Subject"]
    body = mail.get_content()
    assert f"https://clinica.example/admin/api_gateway/conversationsession/{_session().pk}/reply/" in body
    assert "final 0001" in body
    # The least personal data an inbox needs: no full phone, nothing the patient wrote.
    assert PATIENT not in body and PATIENT not in mail["Subject"] and "atendente" not in mail["Subject"]
    assert "quero falar" not in body

    _says(client, "oi, alguém aí?", seq=2)  # still waiting: no second e-mail for the same handoff
    assert len(smtp.messages) == 1


def test_a_patient_the_bot_could_not_understand_is_announced_too(client, clinic, fake_graph, smtp, settings):
    settings.HANDOFF_AFTER_FAILURES = 2
    _says(client, "xkq zzpt vvv", seq=1)
    _says(client, "blorf mnnn qqq", seq=2)

    assert _session().current_state == ConversationState.HUMAN_HANDOFF
    assert len(smtp.messages) == 1


def test_nobody_is_emailed_when_no_address_is_set(client, clinic, fake_graph, smtp, settings):
    settings.HANDOFF_NOTIFY_EMAILS = []

    _says(client, "quero falar com um atendente", seq=1)

    assert _session().current_state == ConversationState.HUMAN_HANDOFF
    assert smtp.messages == []


def test_a_mail_server_that_is_down_costs_the_patient_nothing(client, clinic, fake_graph, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", _free_port(), False
    settings.HANDOFF_NOTIFY_EMAILS = RECEPTION

    _says(client, "quero falar com um atendente", seq=1)

    assert _session().current_state == ConversationState.HUMAN_HANDOFF
    assert "atendente da recepção" in fake_graph.sends[-1].body["text"]["body"]


def test_a_conversation_released_before_the_email_goes_is_not_announced(client, clinic, fake_graph, smtp, settings):
    settings.HANDOFF_NOTIFY_EMAILS = []
    _says(client, "quero falar com um atendente", seq=1)
    settings.HANDOFF_NOTIFY_EMAILS = RECEPTION
    session = session_manager.get_from_database(phone=PATIENT)
    session.current_state = ConversationState.IDLE
    session_manager.save(session=session)

    assert staff.handoff_notify(session_id=session.pk) is False
    assert smtp.messages == []


def test_an_api_turn_is_not_announced(client, clinic, smtp):
    response = client.post(
        "/api/v1/messages/",
        {"phone": PATIENT, "text": "quero falar com um atendente"},
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer test-api-key",
    )

    assert response.status_code == 200
    assert _session().current_state == ConversationState.HUMAN_HANDOFF
    assert smtp.messages == []  # the staff could not answer it on WhatsApp


def test_inline_a_mail_server_that_hangs_up_is_tried_once_not_in_a_loop_inside_the_turn(
    client, clinic, fake_graph, settings
):
    """The embedded default runs tasks inside the turn: a retry loop there would hold the patient's reply."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def hang_up():
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            connection.close()  # SMTPServerDisconnected for the client

    threading.Thread(target=hang_up, daemon=True).start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", listener.getsockname()[1], False
    settings.HANDOFF_NOTIFY_EMAILS = RECEPTION
    try:
        _says(client, "quero falar com um atendente", seq=1)
    finally:
        listener.close()

    assert len(accepted) == 1
    assert "atendente da recepção" in fake_graph.sends[-1].body["text"]["body"]


def test_the_patients_answer_to_the_staffs_follow_up_template_is_announced_once(client, admin_client, clinic,
                                                                               fake_graph, smtp, settings):  # fmt: skip
    from tests.api_gateway.test_staff_reply import _followup, _says, _silent_for_a_day

    settings.WHATSAPP_MAX_MESSAGE_AGE_HOURS = 48
    settings.WHATSAPP_FOLLOWUP_TEMPLATE = "retomar_conversa"
    session = _silent_for_a_day(client)  # handed over 25 hours ago: the handoff e-mail went then
    assert len(smtp.messages) == 1
    _followup(admin_client, session)
    _says(client, "oi, desculpe a demora", seq=2)  # the first answer, which reopens the window
    _says(client, "pode falar", seq=3)

    assert len(smtp.messages) == 2
    recipients, mail = smtp.messages[1]
    assert sorted(recipients) == sorted(RECEPTION) and "respondeu no WhatsApp" in mail["Subject"]
    body = mail.get_content()
    assert "respondeu" in body and f"/admin/api_gateway/conversationsession/{session.pk}/reply/" in body
    assert "desculpe" not in body and PATIENT not in body  # what they wrote and their phone stay in the admin


def test_a_patient_still_waiting_who_writes_again_is_not_announced_again(client, clinic, fake_graph, smtp):
    _says(client, "quero falar com um atendente", seq=1)
    _says(client, "alguém?", seq=2)
    _says(client, "oi?", seq=3)

    assert len(smtp.messages) == 1  # no follow-up template was sent: nothing new to announce


def test_an_answer_sent_as_two_quick_messages_is_announced_once_and_stays_with_the_staff(
    client, admin_client, clinic, fake_graph, smtp, settings
):
    from tests.api_gateway.test_staff_reply import _followup, _silent_for_a_day

    settings.WHATSAPP_MAX_MESSAGE_AGE_HOURS = 48
    settings.WHATSAPP_FOLLOWUP_TEMPLATE = "retomar_conversa"
    session = _silent_for_a_day(client)
    _followup(admin_client, session)
    session = session_manager.get_from_database(phone=PATIENT)
    session.last_activity -= dt.timedelta(days=1)  # answered past HANDOFF_IDLE_HOURS
    session_manager.save(session=session)
    payload = load_payload("text", now=time.time())
    first = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    second = {**first, "id": "wamid.MAIL0003", "text": {"body": "pode falar"}, "timestamp": str(int(time.time()) + 1)}
    first["id"], first["text"]["body"] = "wamid.MAIL0002", "oi, desculpe a demora"
    payload["entry"][0]["changes"][0]["value"]["messages"].append(second)  # stored together, before either turn
    sends = len(fake_graph.sends)

    assert post_webhook(client, payload).status_code == 200

    answered = [m["Subject"] for _, m in smtp.messages[1:]]
    assert len(answered) == 1 and "respondeu no WhatsApp" in answered[0], answered
    assert _session().current_state == ConversationState.HUMAN_HANDOFF and len(fake_graph.sends) == sends
