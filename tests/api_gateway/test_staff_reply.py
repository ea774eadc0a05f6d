"""A person of the clinic answers a patient from the admin ("Responder ao paciente"), end to end: the patient's
messages through the real webhook, the reply through the admin page, sent by the real httpx client to the fake
Graph server, and the bot quiet (or not) afterwards."""

import datetime as dt
import threading
import time

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from api_gateway.models import ConversationMessage, ConversationSession, ConversationState
from api_gateway.services import staff
from api_gateway.services.inbound import inbound_sweep
from api_gateway.services.session_cache import session_manager
from core.exceptions import ValidationFailed
from tests.fakes import graph_server
from tests.fakes.graph_server import graph_error, graph_ok, load_payload, post_webhook

celery_inline = graph_server.celery_inline
fake_graph = graph_server.fake_graph

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_inline")]

PATIENT = "5511999990001"  # the sender of tests/fixtures/whatsapp/text.json
STAFF_TEXT = "Oi, João! Aqui é a Carla, da recepção. Consigo um encaixe com a Dra. Ana amanhã às 10h, pode ser?"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _says(client, text: str, *, seq: int, at: float | None = None) -> None:
    payload = load_payload("text", now=at or time.time() + seq)
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message["id"], message["text"]["body"] = f"wamid.STAFF{seq:04d}", text
    assert post_webhook(client, payload).status_code == 200


def _session() -> ConversationSession:
    return ConversationSession.objects.get(phone_number=PATIENT)


def _reply_url(session: ConversationSession) -> str:
    return f"/admin/api_gateway/conversationsession/{session.pk}/reply/"


def _reply(admin_client, session: ConversationSession, text: str = STAFF_TEXT, *, follow=False, **fields):
    """What a browser does: open the page, then post the form with the newest message the page showed."""
    seen = admin_client.get(_reply_url(session)).context["newest_message_id"]
    return admin_client.post(_reply_url(session), {"text": text, "seen": seen, **fields}, follow=follow)


def _staff_messages():
    return ConversationMessage.objects.filter(message_type="bot", channel_type="staff")


def _handed_over(client) -> ConversationSession:
    _says(client, "quero falar com um atendente", seq=1)
    session = _session()
    assert session.current_state == ConversationState.HUMAN_HANDOFF
    return session


def test_the_staff_reply_reaches_the_patient_and_the_bot_stays_quiet_after_it(client, admin_client, clinic, fake_graph):
    session = _handed_over(client)
    page = admin_client.get(_reply_url(session)).content.decode()
    assert "quero falar com um atendente" in page and "Janela do WhatsApp aberta" in page

    response = _reply(admin_client, session, follow=True)

    assert "Mensagem enviada ao paciente." in response.content.decode()
    sent = fake_graph.sends[-1].body
    assert (sent["to"], sent["type"], sent["text"]["body"]) == (PATIENT, "text", STAFF_TEXT)
    reply = _staff_messages().get()
    assert reply.delivery_status == "sent" and reply.whatsapp_message_id == fake_graph.sends[-1].wamid
    assert reply.entities["staff"]["username"] == "admin"
    assert reply.reply_to == ConversationMessage.objects.get(whatsapp_message_id="wamid.STAFF0001")
    session = _session()
    assert session.current_state == ConversationState.HUMAN_HANDOFF
    assert session.recent_messages[-1] == {"role": "bot", "text": STAFF_TEXT}  # what the LLM reads later

    sends = len(fake_graph.sends)
    _says(client, "pode ser sim, obrigado", seq=2)
    assert len(fake_graph.sends) == sends  # the person answers that one, not the bot
    assert "pode ser sim, obrigado" in admin_client.get(_reply_url(session)).content.decode()


def test_devolver_ao_bot_with_the_reply_lets_the_bot_answer_the_next_message(client, admin_client, clinic, fake_graph):
    session = _handed_over(client)

    _reply(admin_client, session, release="on")

    assert _session().current_state == ConversationState.IDLE
    sends = len(fake_graph.sends)
    _says(client, "vocês aceitam Unimed?", seq=2)
    assert len(fake_graph.sends) == sends + 1
    assert "Unimed" in fake_graph.sends[-1].body["text"]["body"]


def test_a_reply_in_a_conversation_the_bot_holds_takes_it_over(client, admin_client, clinic, fake_graph):
    _says(client, "quero marcar uma consulta de cardiologia", seq=1)
    before = _session().current_state
    assert before != ConversationState.HUMAN_HANDOFF

    _reply(admin_client, _session())

    session = _session()
    assert (session.current_state, session.previous_state) == (ConversationState.HUMAN_HANDOFF, before)
    sends = len(fake_graph.sends)
    _says(client, "pode ser", seq=2)
    assert len(fake_graph.sends) == sends


def test_the_patients_answer_to_a_late_staff_reply_goes_to_the_staff_not_the_bot(
    client, admin_client, clinic, fake_graph
):
    """The patient asked for a person at 20:00; the staff answer at 09:00 the next day (13 h later, past
    HANDOFF_IDLE_HOURS = 12); the patient's answer a minute later is for the person who just wrote."""
    session = _handed_over(client)
    session = session_manager.get_from_database(phone=PATIENT)
    session.last_activity = timezone.now() - dt.timedelta(hours=13)
    session_manager.save(session=session)

    _reply(admin_client, session)

    sends = len(fake_graph.sends)
    _says(client, "pode ser às 10h sim", seq=2)
    assert len(fake_graph.sends) == sends
    assert _session().current_state == ConversationState.HUMAN_HANDOFF


def test_outside_the_24_hour_window_the_reply_is_refused_and_nothing_is_stored(admin_client, clinic, fake_graph):
    session = ConversationSession.objects.create(phone_number=PATIENT, current_state=ConversationState.HUMAN_HANDOFF)
    session.messages.create(
        message_type="user",
        channel_type="text",
        content="preciso falar com alguém",
        whatsapp_message_id="wamid.OLD",
        timestamp=timezone.now() - dt.timedelta(hours=25),
    )
    page = admin_client.get(_reply_url(session)).content.decode()
    assert "janela de 24 horas do WhatsApp fechou" in page and "disabled" in page

    response = _reply(admin_client, session)

    assert response.status_code == 200
    body = response.content.decode()
    assert "fora dela só são entregues modelos aprovados" in body
    assert STAFF_TEXT.split("!")[0] in body  # the text typed is kept in the form
    assert not _staff_messages().exists()
    assert fake_graph.requests == []


def test_a_patient_who_never_wrote_on_whatsapp_cannot_be_answered_from_here(admin_client, clinic, fake_graph):
    session = ConversationSession.objects.create(phone_number=PATIENT)
    session.messages.create(message_type="user", channel_type="api", content="oi", timestamp=timezone.now())

    response = _reply(admin_client, session)

    assert "não escreveu pelo WhatsApp" in response.content.decode()
    assert not _staff_messages().exists()


def test_an_empty_reply_is_refused_by_the_form(client, admin_client, clinic, fake_graph):
    session = _handed_over(client)

    response = admin_client.post(_reply_url(session), {"text": "   "})

    assert response.status_code == 200 and "Este campo é obrigatório" in response.content.decode()
    assert not _staff_messages().exists()


@pytest.mark.parametrize(("text", "error"), [(" \x00 ", "Escreva a mensagem"), ("a" * 4097, "até 4096")])
def test_the_service_refuses_an_empty_or_too_long_text(client, admin_user, clinic, fake_graph, text, error):
    session = _handed_over(client)

    with pytest.raises(ValidationFailed, match=error):
        staff.staff_reply_send(session_id=session.pk, text=text, staff_user=admin_user, release=False)
    assert not _staff_messages().exists()


def test_a_reply_the_graph_api_could_not_take_yet_is_sent_by_the_sweeper(client, admin_client, clinic, fake_graph):
    session = _handed_over(client)
    fake_graph.default = graph_error(131016, status=503)  # Meta's "service unavailable", retried

    response = _reply(admin_client, session, follow=True)

    assert "o envio está em andamento" in response.content.decode()
    reply = _staff_messages().get()
    assert reply.delivery_status == "pending"
    fake_graph.default = graph_ok()
    result = inbound_sweep(now=timezone.now() + dt.timedelta(minutes=10))
    assert reply.pk in result.resent
    reply.refresh_from_db()
    assert reply.delivery_status == "sent"
    assert fake_graph.sends[-1].body["text"]["body"] == STAFF_TEXT
    assert _staff_messages().count() == 1


def test_a_reply_meta_refuses_for_good_is_shown_as_refused(client, admin_client, clinic, fake_graph):
    session = _handed_over(client)
    fake_graph.default = graph_error(131047)  # re-engagement: the window closed at Meta's end

    response = _reply(admin_client, session, follow=True)

    assert "O WhatsApp recusou a mensagem (código 131047)" in response.content.decode()
    assert _staff_messages().get().delivery_status == "failed"


def test_without_whatsapp_credentials_the_reply_is_stored_and_said_not_sent(client, admin_client, clinic):
    session = _handed_over(client)

    response = _reply(admin_client, session, follow=True)

    assert "não enviada" in response.content.decode()
    assert _staff_messages().get().delivery_status == "not_sent"


def test_a_turn_holding_the_patients_lock_makes_the_reply_wait_and_then_refuse(
    client, admin_client, clinic, fake_graph, monkeypatch
):
    session = _handed_over(client)
    monkeypatch.setattr(staff, "LOCK_WAIT_SECONDS", 0.2)
    held, done = threading.Event(), threading.Event()

    def turn_under_way():
        with session_manager.lock(PATIENT):
            held.set()
            done.wait(10)

    worker = threading.Thread(target=turn_under_way)
    worker.start()
    try:
        held.wait(5)
        response = _reply(admin_client, session)
    finally:
        done.set()
        worker.join()

    assert "sendo processada" in response.content.decode()
    assert not _staff_messages().exists()


def test_only_staff_who_may_change_conversations_can_reply(client, clinic, fake_graph):
    session = _handed_over(client)
    user_model = get_user_model()
    viewer = user_model.objects.create_user(username="viewer", password="uma-senha-qualquer-123", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_conversationsession"))
    patient = user_model.objects.create_user(username="paciente", password="uma-senha-qualquer-123")
    viewer_client, patient_client = Client(), Client()
    viewer_client.force_login(viewer)
    patient_client.force_login(patient)

    assert viewer_client.post(_reply_url(session), {"text": STAFF_TEXT}).status_code == 403
    assert patient_client.post(_reply_url(session), {"text": STAFF_TEXT}).status_code == 302  # to the login
    assert Client().post(_reply_url(session), {"text": STAFF_TEXT}).status_code == 302
    assert not _staff_messages().exists()


def test_the_admin_points_staff_to_the_waiting_patients_and_the_reply_page(client, admin_client, clinic, fake_graph):
    session = _handed_over(client)
    ConversationSession.objects.create(phone_number="5521977776666")

    index = admin_client.get("/admin/").content.decode()
    change = admin_client.get(f"/admin/api_gateway/conversationsession/{session.pk}/change/").content.decode()
    listing = admin_client.get("/admin/api_gateway/conversationsession/").content.decode()

    assert "Atendimento humano: 1 paciente aguardando resposta<" in index
    assert "?aguardando=sim" in index
    assert _reply_url(session) in change and _reply_url(session) in listing


def _waiting() -> list[str]:
    return sorted(s.phone_number for s in staff.handoff_waiting_sessions())


def test_a_patient_waits_for_the_staff_until_they_answer_and_again_when_the_patient_writes(
    client, admin_client, clinic, fake_graph
):
    other = "5521977776666"
    ConversationSession.objects.create(phone_number=other, current_state=ConversationState.HUMAN_HANDOFF)
    session = _handed_over(client)
    assert _waiting() == [PATIENT]  # the other handoff has no message from its patient

    _reply(admin_client, session)
    assert _waiting() == []
    listing = admin_client.get("/admin/api_gateway/conversationsession/", {"aguardando": "sim"}).content.decode()
    assert PATIENT not in listing

    _says(client, "pode ser às 10h?", seq=2)
    assert _waiting() == [PATIENT]
    listing = admin_client.get("/admin/api_gateway/conversationsession/", {"aguardando": "sim"}).content.decode()
    assert PATIENT in listing and other not in listing


def test_a_handoff_whose_patient_wrote_more_than_24_hours_ago_waits_for_no_one(client, clinic, fake_graph):
    _handed_over(client)

    later = timezone.now() + dt.timedelta(hours=25)
    assert _waiting() == [PATIENT]
    assert list(staff.handoff_waiting_sessions(now=later)) == []


def test_a_reply_to_a_conversation_that_no_longer_exists_redirects(admin_client, db):
    response = admin_client.get("/admin/api_gateway/conversationsession/999999/reply/")
    assert response.status_code == 302


# --- After the review: what the person saw, what the release answers, what counts as the patient writing ----------
def test_a_patient_message_that_arrived_while_the_staff_typed_stops_the_reply_until_they_read_it(
    client, admin_client, clinic, fake_graph
):
    session = _handed_over(client)
    seen = admin_client.get(_reply_url(session)).context["newest_message_id"]
    _says(client, "ah, e pode ser com a Dra. Ana?", seq=2)  # while the person types

    response = admin_client.post(_reply_url(session), {"text": STAFF_TEXT, "seen": seen})

    body = response.content.decode()
    assert "A conversa mudou enquanto você escrevia" in body and "pode ser com a Dra. Ana?" in body
    assert not _staff_messages().exists()
    assert _reply(admin_client, session).status_code == 302  # read, sent
    assert _staff_messages().count() == 1


def test_a_double_click_sends_the_reply_once(client, admin_client, clinic, fake_graph):
    session = _handed_over(client)
    seen = admin_client.get(_reply_url(session)).context["newest_message_id"]

    first = admin_client.post(_reply_url(session), {"text": STAFF_TEXT, "seen": seen})
    second = admin_client.post(_reply_url(session), {"text": STAFF_TEXT, "seen": seen})

    assert first.status_code == 302 and second.status_code == 200
    assert _staff_messages().count() == 1
    assert [r.body["text"]["body"] for r in fake_graph.sends].count(STAFF_TEXT) == 1


def test_releasing_with_the_reply_drops_a_yes_no_question_the_bot_had_left_open(
    client, admin_client, clinic, fake_graph
):
    from rag_agent.models import Agendamento, Medico

    doctor = Medico.objects.get(nome="Dra. Ana Souza")
    day = timezone.localdate() + dt.timedelta(days=9)
    appointment = Agendamento.objects.create(
        medico=doctor,
        especialidade=doctor.especialidades.first(),
        paciente_nome="João Silva",
        paciente_telefone=PATIENT,
        data=day,
        hora=dt.time(9, 0),
    )
    _says(client, "quero cancelar minha consulta", seq=1)
    assert "Quer mesmo cancelar" in fake_graph.sends[-1].body["interactive"]["body"]["text"]

    _reply(admin_client, _session(), "Oi João, prefere remarcar em vez de cancelar?", release="on")
    _says(client, "sim", seq=2)  # to the person's question, not to the bot's

    appointment.refresh_from_db()
    assert appointment.status == "agendado"


def test_releasing_answers_the_messages_no_turn_has_read_yet_so_the_bot_does_not_answer_them_again(
    client, admin_client, clinic, fake_graph
):
    session = _handed_over(client)
    waiting = session.messages.create(  # accepted by the webhook, its task not run yet
        message_type="user",
        channel_type="text",
        content="vocês aceitam Unimed?",
        whatsapp_message_id="wamid.UNREAD",
        timestamp=timezone.now() + dt.timedelta(seconds=5),  # after the request for a person
        processing_status="received",
    )
    sends = len(fake_graph.sends)

    _reply(admin_client, session, "Aceitamos sim, a Unimed Nacional.", release="on")
    from api_gateway.tasks import process_inbound

    process_inbound.apply(args=[waiting.pk])  # the message's own task, late

    waiting.refresh_from_db()
    assert (waiting.processing_status, waiting.last_error) == ("ignored", "answered by the staff")
    assert [r.body["text"]["body"] for r in fake_graph.sends[sends:]] == ["Aceitamos sim, a Unimed Nacional."]
    assert _staff_messages().get().reply_to == waiting


def test_a_reply_meta_refused_leaves_the_patient_waiting(client, admin_client, clinic, fake_graph):
    session = _handed_over(client)
    fake_graph.default = graph_error(131047)

    _reply(admin_client, session)

    assert _waiting() == [PATIENT]


def test_a_reaction_to_the_reply_is_no_message_waiting_and_opens_no_window(client, admin_client, clinic, fake_graph):
    session = _handed_over(client)
    _reply(admin_client, session)
    before = staff.reply_window(session_id=session.pk)

    post_webhook(client, load_payload("reaction", now=time.time() + 60))

    assert ConversationMessage.objects.filter(whatsapp_message_id="wamid.REACT0001").exists()
    assert _waiting() == []
    assert staff.reply_window(session_id=session.pk) == before


def test_what_the_patient_wrote_during_the_handoff_is_in_the_history_the_bot_reads_after(
    client, admin_client, clinic, fake_graph
):
    session = _handed_over(client)
    _says(client, "meu plano é Unimed, tem horário amanhã?", seq=2)
    _reply(admin_client, session, release="on")

    history = _session().recent_messages
    assert {"role": "user", "text": "meu plano é Unimed, tem horário amanhã?"} in history
    assert history[-1] == {"role": "bot", "text": STAFF_TEXT}


def test_staff_who_may_only_view_conversations_are_not_offered_the_reply(client, clinic, fake_graph):
    session = _handed_over(client)
    viewer = get_user_model().objects.create_user(username="viewer", password="uma-senha-qualquer-123", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_conversationsession"))
    nobody = get_user_model().objects.create_user(username="nobody", password="uma-senha-qualquer-123", is_staff=True)
    viewer_client, nobody_client = Client(), Client()
    viewer_client.force_login(viewer)
    nobody_client.force_login(nobody)

    listing = viewer_client.get("/admin/api_gateway/conversationsession/").content.decode()
    change = viewer_client.get(f"/admin/api_gateway/conversationsession/{session.pk}/change/").content.decode()

    assert PATIENT in listing and _reply_url(session) not in listing and _reply_url(session) not in change
    assert "aguardando resposta" in viewer_client.get("/admin/").content.decode()
    assert "aguardando resposta" not in nobody_client.get("/admin/").content.decode()


# --- after the 24-hour window: the approved follow-up template -----------------------------------------------------


def _silent_for_a_day(client) -> ConversationSession:
    """A patient handed to a person 25 hours ago, nobody answered: free text no longer reaches them."""
    _says(client, "quero falar com um atendente", seq=1, at=time.time() - 25 * 3600)
    session = session_manager.get_from_database(phone=PATIENT)
    assert session.current_state == ConversationState.HUMAN_HANDOFF
    session.last_activity = timezone.now() - dt.timedelta(hours=25)  # the turn ran when the message came
    session_manager.save(session=session)
    return _session()


def _followup(admin_client, session: ConversationSession, *, follow=True):
    seen = admin_client.get(_reply_url(session)).context["newest_message_id"]
    return admin_client.post(_reply_url(session), {"followup": "1", "seen": seen}, follow=follow)


def test_after_the_window_the_staff_send_the_approved_template_once_and_the_patients_answer_reaches_them(
    client, admin_client, clinic, fake_graph, settings
):
    settings.WHATSAPP_MAX_MESSAGE_AGE_HOURS = 48  # the 25-hour-old message still gets its turn (the handoff)
    settings.WHATSAPP_FOLLOWUP_TEMPLATE = "retomar_conversa"
    session = _silent_for_a_day(client)
    ConversationSession.objects.filter(pk=session.pk).update(patient_name="João Pereira")
    page = admin_client.get(_reply_url(session)).content.decode()
    assert "janela de 24 horas do WhatsApp fechou" in page and 'name="followup"' in page
    assert "Olá! Aqui é da Clínica Vida Saudável." in page  # what the patient will read

    response = _followup(admin_client, session)

    assert "Mensagem enviada ao paciente." in response.content.decode()
    sent = fake_graph.sends[-1].body
    assert (sent["to"], sent["type"], sent["template"]["name"]) == (PATIENT, "template", "retomar_conversa")
    body = sent["template"]["components"][0]["parameters"]
    assert [p["text"] for p in body] == ["Clínica Vida Saudável"]  # no name: the session's may be a child's
    stored = _staff_messages().get()
    assert stored.entities["followup"] is True and stored.content.startswith("Olá! Aqui é da Clínica")

    again = _followup(admin_client, session).content.decode()  # before the patient answered: refused
    assert "O modelo já foi enviado em" in again and _staff_messages().count() == 1

    sends = len(fake_graph.sends)
    _says(client, "oi, pode falar", seq=2)
    assert len(fake_graph.sends) == sends  # the bot stays quiet: the answer is for the person
    assert _session().current_state == ConversationState.HUMAN_HANDOFF
    assert session.pk in set(staff.handoff_waiting_sessions().values_list("pk", flat=True))
    assert "Mensagem enviada ao paciente." in _reply(admin_client, session, follow=True).content.decode()


def test_a_template_meta_refused_may_be_sent_again(client, admin_client, clinic, fake_graph, settings):
    settings.WHATSAPP_MAX_MESSAGE_AGE_HOURS = 48
    settings.WHATSAPP_FOLLOWUP_TEMPLATE = "retomar_conversa"
    session = _silent_for_a_day(client)
    fake_graph.enqueue(graph_error(132001, status=404))  # the template's name is not approved (yet)

    refused = _followup(admin_client, session).content.decode()

    assert "O WhatsApp recusou a mensagem (código 132001)" in refused
    assert "Mensagem enviada ao paciente." in _followup(admin_client, session).content.decode()
    assert [m.delivery_status for m in _staff_messages().order_by("pk")] == ["failed", "sent"]


def test_the_template_is_refused_while_the_window_is_open_and_when_none_is_configured(
    client, admin_user, clinic, fake_graph, settings
):
    session = _handed_over(client)
    settings.WHATSAPP_FOLLOWUP_TEMPLATE = "retomar_conversa"
    with pytest.raises(ValidationFailed, match="janela de 24 horas está aberta"):
        staff.staff_followup_send(session_id=session.pk, staff_user=admin_user)
    settings.WHATSAPP_FOLLOWUP_TEMPLATE = ""
    later = timezone.now() + dt.timedelta(hours=25)
    with pytest.raises(ValidationFailed, match="WHATSAPP_FOLLOWUP_TEMPLATE"):
        staff.staff_followup_send(session_id=session.pk, staff_user=admin_user, now=later)
    assert not _staff_messages().exists()


def test_without_a_template_the_closed_window_page_offers_no_template(
    client, admin_client, clinic, fake_graph, settings
):
    settings.WHATSAPP_MAX_MESSAGE_AGE_HOURS = 48
    settings.WHATSAPP_FOLLOWUP_TEMPLATE = ""
    session = _silent_for_a_day(client)
    page = admin_client.get(_reply_url(session)).content.decode()
    assert "janela de 24 horas do WhatsApp fechou" in page and 'name="followup"' not in page


def test_the_patients_answer_to_the_template_reaches_the_staff_however_late_it_comes(
    client, admin_client, clinic, fake_graph, settings
):
    settings.WHATSAPP_MAX_MESSAGE_AGE_HOURS = 48
    settings.WHATSAPP_FOLLOWUP_TEMPLATE = "retomar_conversa"
    session = _silent_for_a_day(client)
    _followup(admin_client, session)
    session = session_manager.get_from_database(phone=PATIENT)
    session.last_activity = timezone.now() - dt.timedelta(hours=20)  # sent in the morning, answered at night
    session_manager.save(session=session)
    ConversationMessage.objects.filter(entities__followup=True).update(created_at=session.last_activity)

    sends = len(fake_graph.sends)
    _says(client, "oi, pode falar", seq=2)  # was: the bot's greeting (the handoff had idled out after 12 h)

    assert len(fake_graph.sends) == sends and _session().current_state == ConversationState.HUMAN_HANDOFF
    session = session_manager.get_from_database(phone=PATIENT)
    session.last_activity = timezone.now() - dt.timedelta(hours=13)
    session_manager.save(session=session)
    _says(client, "alô?", seq=3)  # their second message, 13 h after the first: the usual idle rule again
    assert _session().current_state != ConversationState.HUMAN_HANDOFF


def test_a_template_still_pending_when_the_patient_writes_is_not_sent(
    client, admin_client, clinic, fake_graph, settings
):
    settings.WHATSAPP_MAX_MESSAGE_AGE_HOURS = 48
    settings.WHATSAPP_FOLLOWUP_TEMPLATE = "retomar_conversa"
    session = _silent_for_a_day(client)
    fake_graph.enqueue(*[graph_error(131016, status=503)] * 4)  # Meta briefly unavailable: stays pending
    _followup(admin_client, session)
    assert _staff_messages().get().delivery_status == "pending"

    _says(client, "oi, alguém aí?", seq=2)  # the task sends pending replies first

    templates = [s.answered_status for s in fake_graph.sends if s.body["type"] == "template"]
    assert templates == [503] * 4  # only the failed attempts; was: the billed template sent after their text
    followup = _staff_messages().get()
    assert (followup.delivery_status, followup.last_error) == ("not_sent", "the patient wrote before it was sent")


def test_a_seen_field_that_is_no_number_is_ignored_not_a_500(client, admin_client, clinic, fake_graph, settings):
    settings.WHATSAPP_MAX_MESSAGE_AGE_HOURS = 48
    settings.WHATSAPP_FOLLOWUP_TEMPLATE = "retomar_conversa"
    session = _silent_for_a_day(client)
    response = admin_client.post(_reply_url(session), {"followup": "1", "seen": "²"}, follow=True)
    assert response.status_code == 200 and "Mensagem enviada ao paciente." in response.content.decode()
