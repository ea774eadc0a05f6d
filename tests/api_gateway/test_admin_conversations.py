import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from api_gateway.models import ConversationMessage, ConversationSession, ConversationState
from api_gateway.services import cache_inspect, idempotency
from api_gateway.services.session_cache import session_key, session_manager
from api_gateway.services.token_monitor import token_monitor
from rag_agent.cache import CLINIC_DATA_KEY
from rag_agent.models import Medico
from rag_agent.selectors import clinic_catalog, doctor_detail

pytestmark = pytest.mark.django_db

CACHE_URL = "/admin/cache/"
SESSIONS_URL = "/admin/api_gateway/conversationsession/"
MESSAGES_URL = "/admin/api_gateway/conversationmessage/"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness costs seconds per login here and proves nothing about the admin.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def conversation(phone):
    session = session_manager.get_or_start(phone=phone)
    session.patient_name = "Maria Souza"
    session_manager.save(session=session)
    start = timezone.now() - dt.timedelta(minutes=10)
    texts = ["Quero marcar cardiologia", "Com qual médico?", "Dr. Carlos"]
    for minute, text in enumerate(texts):
        session.messages.create(
            message_type="user" if minute % 2 == 0 else "bot",
            content=text,
            intent="agendar" if minute == 0 else "",
            confidence=0.93 if minute == 0 else None,
            entities={"especialidade": "Cardiologia"} if minute == 0 else {},
            input_tokens=210 if minute == 0 else 0,
            output_tokens=40 if minute == 0 else 0,
            timestamp=start + dt.timedelta(minutes=minute),
            whatsapp_message_id=f"wamid.test{minute}",
        )
    return session


@pytest.fixture
def non_staff_client(db):
    user = get_user_model().objects.create_user(username="paciente", password="uma-senha-qualquer-123")
    client = Client()
    client.force_login(user)
    return client


def test_sessions_list_shows_phone_name_and_state_to_staff(admin_client, conversation):
    response = admin_client.get(SESSIONS_URL)
    body = response.content.decode()
    assert response.status_code == 200
    assert conversation.phone_number in body and "Maria Souza" in body and "ocioso" in body


def test_sessions_can_be_searched_by_phone_and_name(admin_client, conversation):
    ConversationSession.objects.create(phone_number="5521977776666", patient_name="João Lima")
    by_phone = admin_client.get(SESSIONS_URL, {"q": conversation.phone_number[-6:]}).content.decode()
    by_name = admin_client.get(SESSIONS_URL, {"q": "João"}).content.decode()
    assert conversation.phone_number in by_phone and "5521977776666" not in by_phone
    assert "5521977776666" in by_name and conversation.phone_number not in by_name


def test_sessions_can_be_filtered_by_state(admin_client, conversation):
    ConversationSession.objects.create(phone_number="5521977776666", current_state=ConversationState.HUMAN_HANDOFF)
    body = admin_client.get(SESSIONS_URL, {"current_state__exact": "human_handoff"}).content.decode()
    assert "5521977776666" in body and conversation.phone_number not in body


def test_session_page_shows_messages_in_order_with_nlu_and_tokens(admin_client, conversation):
    response = admin_client.get(f"{SESSIONS_URL}{conversation.pk}/change/")
    body = response.content.decode()
    assert response.status_code == 200
    positions = [body.index(text) for text in ("Quero marcar cardiologia", "Com qual médico?", "Dr. Carlos")]
    assert positions == sorted(positions)
    assert "agendar" in body and "Cardiologia" in body and "210" in body
    assert 'name="_save"' not in body  # read-only: nothing to save


def test_sessions_cannot_be_added_or_deleted_from_the_admin(admin_client, conversation):
    assert admin_client.get(f"{SESSIONS_URL}add/").status_code == 403
    assert admin_client.get(f"{SESSIONS_URL}{conversation.pk}/delete/").status_code == 403


def test_release_action_hands_the_session_back_to_the_bot_in_database_and_cache(admin_client, conversation, phone):
    conversation.current_state = ConversationState.HUMAN_HANDOFF
    conversation.failed_attempts = 3
    conversation.flow = "agendar"
    conversation.preferred_date = dt.date(2030, 1, 7)
    session_manager.save(session=conversation)
    response = admin_client.post(
        SESSIONS_URL, {"action": "release_to_bot", "_selected_action": [conversation.pk]}, follow=True
    )
    assert response.status_code == 200
    row = ConversationSession.objects.get(pk=conversation.pk)
    assert row.current_state == "idle" and row.previous_state == "human_handoff" and row.failed_attempts == 0
    assert row.flow == "" and row.preferred_date is None  # the half-made booking does not come back
    cached = caches["default"].get(session_key(phone))
    assert cached["current_state"] == "idle" and cached["version"] == row.version


def test_release_action_leaves_sessions_that_are_not_in_handoff_alone(admin_client, conversation):
    conversation.current_state = ConversationState.CHOOSING_DATE
    session_manager.save(session=conversation)
    admin_client.post(SESSIONS_URL, {"action": "release_to_bot", "_selected_action": [conversation.pk]})
    assert ConversationSession.objects.get(pk=conversation.pk).current_state == "choosing_date"


def test_restart_action_resets_a_stuck_session_and_keeps_the_name(admin_client, conversation, phone):
    conversation.current_state = ConversationState.CHOOSING_TIME
    conversation.flow = "agendar"
    conversation.preferred_date = dt.date(2030, 1, 7)
    conversation.last_options = {"kind": "slot", "items": [{"id": "2030-01-07T09:00"}]}
    session_manager.save(session=conversation)
    admin_client.post(SESSIONS_URL, {"action": "restart_session", "_selected_action": [conversation.pk]})
    row = ConversationSession.objects.get(pk=conversation.pk)
    assert (row.current_state, row.flow, row.preferred_date, row.last_options) == ("idle", "", None, {})
    assert row.patient_name == "Maria Souza"
    cached = caches["default"].get(session_key(phone))
    assert cached["current_state"] == "idle" and cached["preferred_date"] is None


def test_messages_list_is_searchable_by_wamid_and_read_only(admin_client, conversation):
    body = admin_client.get(MESSAGES_URL, {"q": "wamid.test2"}).content.decode()
    assert "Dr. Carlos" in body and "Quero marcar" not in body
    message = ConversationMessage.objects.get(whatsapp_message_id="wamid.test2")
    assert admin_client.get(f"{MESSAGES_URL}add/").status_code == 403
    page = admin_client.get(f"{MESSAGES_URL}{message.pk}/change/").content.decode()
    assert 'name="_save"' not in page


def test_messages_can_be_filtered_by_type(admin_client, conversation):
    body = admin_client.get(MESSAGES_URL, {"message_type__exact": "bot"}).content.decode()
    assert "Com qual médico?" in body and "Quero marcar" not in body


@pytest.mark.parametrize("url", [SESSIONS_URL, MESSAGES_URL, CACHE_URL])
def test_admin_pages_send_non_staff_to_the_login(url, non_staff_client, client):
    for anyone in (non_staff_client, client):
        response = anyone.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


def test_cache_page_refuses_a_clear_from_non_staff(non_staff_client, phone):
    session_manager.get_or_start(phone=phone)
    response = non_staff_client.post(CACHE_URL, {"action": "clear", "family": "sessions"})
    assert response.status_code == 302
    assert caches["default"].get(session_key(phone)) is not None


def seed_families(phone: str) -> dict[str, int]:
    session_manager.get_or_start(phone=phone)
    doctors = [d["id"] for d in clinic_catalog()["medicos"][:2]]
    for doctor_id in doctors:
        doctor_detail(doctor_id)
    idempotency.idempotent_run(key="k1", payload={"text": "oi"}, phone=phone, run=lambda: {"reply": "Olá"})
    token_monitor.tokens_used_today()  # builds today's token counter
    # clinic: the catalogue and its version key
    return {"sessions": 1, "clinic": 2, "doctors": len(doctors), "tokens": 1, "idempotency": 1}


def test_cache_page_shows_the_same_figures_as_cache_stats_and_tokens(admin_client, clinic, phone):
    expected = seed_families(phone)
    response = admin_client.get(CACHE_URL)
    body = response.content.decode()
    assert response.status_code == 200
    assert response.context["stats"]["families"] == cache_inspect.cache_stats()["families"]
    for name, count in expected.items():
        assert f'data-family="{name}">{count}<' in body
    assert response.context["tokens"] == cache_inspect.token_usage_report(days=7)
    assert "Modo economia" in body


@pytest.mark.parametrize("family", ["sessions", "doctors", "idempotency"])
def test_cache_page_clears_one_family_only(family, admin_client, clinic, phone):
    expected = seed_families(phone)
    response = admin_client.post(CACHE_URL, {"action": "clear", "family": family}, follow=True)
    assert response.status_code == 200
    assert f"{expected[family]} chave(s) removida(s)" in response.content.decode()
    counts = {name: len(cache_inspect.cache_key_list(family=name, limit=None)) for name in cache_inspect.FAMILIES}
    assert counts == {**expected, family: 0}


def test_cache_page_clears_one_phone(admin_client, clinic, phone):
    seed_families(phone)
    session_manager.get_or_start(phone="5521977776666")
    admin_client.post(CACHE_URL, {"action": "clear", "phone": f"+{phone[:2]} {phone[2:]}"})
    assert caches["default"].get(session_key(phone)) is None
    assert caches["default"].get(session_key("5521977776666")) is not None
    assert cache_inspect.cache_key_list(family="idempotency") == []


def test_cache_page_clear_with_nothing_chosen_says_so_in_the_pages_words(admin_client, clinic, phone):
    expected = seed_families(phone)
    response = admin_client.post(CACHE_URL, {"action": "clear", "family": "", "phone": ""}, follow=True)
    body = response.content.decode()
    assert "Escolha uma família de chaves ou informe um telefone." in body and "--family" not in body
    assert {name: len(cache_inspect.cache_key_list(family=name, limit=None)) for name in expected} == expected


def test_cache_page_warms_the_catalogue(admin_client, clinic):
    admin_client.post(CACHE_URL, {"action": "warm"})
    assert caches["default"].get(CLINIC_DATA_KEY) is not None
    assert len(cache_inspect.cache_key_list(family="doctors", limit=None)) == Medico.objects.filter(ativo=True).count()


def test_cache_page_rejects_a_post_without_csrf_token(admin_user, phone):
    session_manager.get_or_start(phone=phone)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(CACHE_URL, {"action": "clear", "family": "sessions"}).status_code == 403
    assert caches["default"].get(session_key(phone)) is not None


def test_admin_login_locks_after_five_wrong_passwords(settings, admin_user):
    settings.AXES_ENABLED = True
    assert settings.AXES_FAILURE_LIMIT == 5
    client = Client()
    login = reverse("admin:login")
    for _ in range(5):
        client.post(login, {"username": admin_user.username, "password": "errada"})
    # Even the right password is refused now.
    response = client.post(login, {"username": admin_user.username, "password": "password"})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_admin_login_still_works_before_the_limit(settings, admin_user):
    settings.AXES_ENABLED = True
    client = Client()
    login = reverse("admin:login")
    for _ in range(4):
        client.post(login, {"username": admin_user.username, "password": "errada"})
    response = client.post(login, {"username": admin_user.username, "password": "password", "next": "/admin/"})
    assert response.status_code == 302 and "_auth_user_id" in client.session
