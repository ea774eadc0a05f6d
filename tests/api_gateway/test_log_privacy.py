"""No clear-text phone or patient name reaches a log record from the operations tools.

core.logging masks phones when a record is created; these tests switch that safety net off, so they check that
our own code never hands a clear phone (or a name, which the net cannot recognise) to a logger.
"""

import io
import logging

import pytest
from django.core.management import call_command
from django.utils import timezone

from api_gateway.models import ConversationSession, ConversationState
from api_gateway.services import idempotency
from api_gateway.services.session_cache import session_manager
from core import logging as core_logging

pytestmark = pytest.mark.django_db

PATIENT_NAME = "Maria Souza"


@pytest.fixture
def without_masking_safety_net():
    """Neither the masking record factory nor the handlers' masking filter (which rewrites the shared record)."""
    previous = logging.getLogRecordFactory()
    logging.setLogRecordFactory(core_logging._base_factory)
    removed = []
    for handler in logging.getLogger().handlers:
        for f in [f for f in handler.filters if isinstance(f, core_logging.MaskPersonalDataFilter)]:
            handler.removeFilter(f)
            removed.append((handler, f))
    yield
    for handler, f in removed:
        handler.addFilter(f)
    logging.setLogRecordFactory(previous)


@pytest.fixture
def patient(phone):
    session = session_manager.get_or_start(phone=phone)
    session.patient_name = PATIENT_NAME
    session.current_state = ConversationState.HUMAN_HANDOFF
    session_manager.save(session=session)
    session.messages.create(message_type="user", content="oi", timestamp=timezone.now())
    idempotency.idempotent_run(key="k1", payload={"text": "oi"}, phone=phone, run=lambda: {"reply": "Olá"})
    return session


def assert_no_personal_data(caplog, phone: str) -> None:
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert caplog.records, "the capture saw nothing: the test would prove nothing"
    assert phone not in text and phone[2:] not in text
    assert PATIENT_NAME not in text and "Souza" not in text


def test_the_capture_would_see_a_clear_phone_without_the_safety_net(without_masking_safety_net, caplog, phone):
    with caplog.at_level(logging.INFO):
        logging.getLogger("api_gateway").info("patient %s", phone)
    assert phone in caplog.text  # so the assertions below can fail


def test_privacy_commands_log_no_clear_phone_or_name(without_masking_safety_net, caplog, clinic, patient, phone):
    with caplog.at_level(logging.DEBUG):
        call_command("forget_patient", phone, stdout=io.StringIO())
        call_command("forget_patient", phone, "--yes", stdout=io.StringIO())
        ConversationSession.objects.create(phone_number=phone, patient_name=PATIENT_NAME, last_activity=timezone.now())
        call_command("purge_conversations", "--older-than-days", "1", "--yes", stdout=io.StringIO())
        call_command("tokens", stdout=io.StringIO())
    assert_no_personal_data(caplog, phone)


def test_cache_clear_by_phone_logs_no_clear_phone(without_masking_safety_net, caplog, admin_client, patient, phone):
    with caplog.at_level(logging.DEBUG):
        admin_client.post("/admin/cache/", {"action": "clear", "phone": phone})
    assert any("[CACHE CLEARED]" in r.getMessage() for r in caplog.records)
    assert_no_personal_data(caplog, phone)


@pytest.mark.redis
def test_cache_command_logs_no_clear_phone(without_masking_safety_net, caplog, patient, phone):
    with caplog.at_level(logging.DEBUG):
        call_command("cache", "show", "session", phone, stdout=io.StringIO())
        call_command("cache", "clear", "--phone", phone, "--yes", stdout=io.StringIO())
    assert_no_personal_data(caplog, phone)


def test_admin_actions_log_no_clear_phone(without_masking_safety_net, caplog, admin_client, patient, phone):
    with caplog.at_level(logging.DEBUG):
        for action in ("release_to_bot", "restart_session"):
            admin_client.post(
                "/admin/api_gateway/conversationsession/", {"action": action, "_selected_action": [patient.pk]}
            )
    assert ConversationSession.objects.get(pk=patient.pk).current_state == "idle"
    assert_no_personal_data(caplog, phone)
