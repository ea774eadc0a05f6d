"""The Gemini path through the whole turn: the real google-genai SDK against the local fake Gemini server.

Whatever Gemini does (answers, garbles, blocks, rate-limits, fails, hangs), the patient gets a sensible reply and
the session stays consistent between the cache and the database.
"""

import pytest
from django.core.cache import caches

from api_gateway.models import ConversationMessage, ConversationSession
from api_gateway.services import texts as T
from api_gateway.services.conversation import turn_handle
from api_gateway.services.session_cache import session_key
from api_gateway.services.token_monitor import token_monitor
from tests.fakes.gemini_server import (
    answer_blocked,
    answer_error,
    answer_json,
    answer_slow,
    answer_text,
    answer_truncated,
)

pytestmark = pytest.mark.django_db

# Vague enough that the rules are unsure (confidence < 0.95), so the router asks Gemini.
VAGUE = "então, eu andei sentindo umas palpitações e queria ver isso com alguém, pode ser?"


def _assert_consistent(phone: str) -> ConversationSession:
    row = ConversationSession.objects.get(phone_number=phone)
    cached = caches["default"].get(session_key(phone))
    if cached is not None:
        assert cached["version"] == row.version and cached["current_state"] == row.current_state
    return row


def test_normal_gemini_turn_fills_slots_and_records_real_token_counts(clinic, phone, fake_gemini):
    fake_gemini.enqueue(
        answer_json(
            {
                "intent": "agendar",
                "confidence": 0.9,
                "entities": {"especialidade": "Cardiologia", "nome": "João Silva", "particular": True},
            },
            output_tokens=42,
        )
    )
    result = turn_handle(phone=phone, text=VAGUE)
    assert len(fake_gemini.generate_requests) == 1
    session = _assert_consistent(phone)
    assert session.selected_specialty.nome == "Cardiologia"
    assert session.patient_name == "João Silva" and session.insurance_type == "particular"
    assert result.state == "selecting_doctor" and "Dra. Ana Souza" in result.reply.as_text()
    user = ConversationMessage.objects.get(message_type="user")
    assert user.nlu_source == "gemini" and user.output_tokens == 42 and user.input_tokens > 0
    assert token_monitor.tokens_used_today() == user.input_tokens + user.output_tokens


def test_question_answer_from_gemini_is_used_when_the_tables_have_no_template(clinic, phone, fake_gemini):
    fake_gemini.enqueue(
        answer_json(
            {"intent": "pergunta", "confidence": 0.9, "entities": {}, "answer": "Sim, há estacionamento conveniado."}
        )
    )
    result = turn_handle(phone=phone, text="vocês têm estacionamento por perto? preciso saber antes de ir")
    assert "estacionamento conveniado" in result.reply.text


def test_an_emergency_gets_the_fixed_warning_whatever_gemini_answers(clinic, phone, fake_gemini):
    text = "minha mãe está com falta de ar e uma dor forte no peito, o que faço? ela tá muito mal"
    fake_gemini.enqueue(
        answer_json({"intent": "pergunta", "confidence": 0.9, "entities": {}, "answer": "Tome um chá e descanse."})
    )
    result = turn_handle(phone=phone, text=text)
    assert result.reply.text == T.EMERGENCY_MEDICAL
    assert "chá" not in result.reply.text


def test_gemini_cannot_word_the_answer_about_emergency_care(clinic, phone, fake_gemini):
    fake_gemini.enqueue(
        answer_json(
            {
                "intent": "pergunta",
                "confidence": 0.9,
                "entities": {"topico": "urgencia"},
                "answer": "Sim, atendemos urgências a qualquer hora.",
            }
        )
    )
    result = turn_handle(phone=phone, text="se eu passar mal de madrugada, dá pra ir aí na clínica ser atendido?")
    assert len(fake_gemini.generate_requests) == 1
    assert result.reply.text.endswith(T.NO_EMERGENCY_CARE)
    assert "qualquer hora" not in result.reply.text


def test_invented_doctor_from_gemini_is_never_offered(clinic, phone, fake_gemini):
    fake_gemini.enqueue(
        answer_json({"intent": "agendar", "confidence": 0.9, "entities": {"medico": "Dr. House", "nome": "João Silva"}})
    )
    result = turn_handle(phone=phone, text=VAGUE)
    assert "House" not in result.reply.as_text()
    assert _assert_consistent(phone).selected_doctor_id is None


@pytest.mark.parametrize(
    "answers",
    [
        pytest.param([answer_text("isto não é json {")], id="malformed-json"),
        pytest.param([answer_blocked()], id="blocked"),
        pytest.param([answer_truncated()], id="truncated"),
        pytest.param([answer_error(429)] * 3, id="rate-limited-429"),
        pytest.param([answer_error(500)] * 3, id="server-error-500"),
        pytest.param([answer_error(503)] * 3, id="unavailable-503"),
        pytest.param([answer_slow(3.0)] * 3, id="timeout"),
    ],
)
def test_gemini_failures_fall_back_to_the_offline_nlu_with_a_sensible_reply(clinic, phone, fake_gemini, answers):
    fake_gemini.enqueue(*answers)
    result = turn_handle(phone=phone, text="quero marcar uma consulta de cardiologia, pode ser? meu nome é João Silva")
    assert result.reply.send and result.reply.text
    assert result.state == "choosing_plan"  # the offline NLU carried the booking on
    session = _assert_consistent(phone)
    assert session.selected_specialty.nome == "Cardiologia"
    user = ConversationMessage.objects.get(message_type="user")
    assert user.nlu_source == "offline"
    assert 1 <= len(fake_gemini.generate_requests) <= 3  # bounded retries, no storm


def test_exhausted_budget_sends_nothing_to_gemini(clinic, phone, fake_gemini, settings):
    settings.GEMINI_DAILY_TOKEN_LIMIT = 100
    token_monitor.record_usage(input_tokens=100, output_tokens=0)
    result = turn_handle(phone=phone, text=VAGUE)
    assert fake_gemini.generate_requests == []
    assert result.reply.text
