"""The NLU router end to end: offline rules, the real google-genai SDK, the local fake Gemini, the demo clinic."""

import datetime as dt
import logging
import time

import pytest

from api_gateway.clients.gemini import RETRY_INITIAL_DELAY_SECONDS, RETRY_JITTER_SECONDS
from api_gateway.models import ConversationSession
from api_gateway.services.nlu.offline import offline_interpret
from api_gateway.services.nlu.router import nlu_interpret
from api_gateway.services.nlu.types import Intent
from api_gateway.services.token_monitor import token_monitor
from rag_agent.models import Convenio, Especialidade, Medico
from tests.fakes import gemini_server
from tests.fakes.gemini_server import (
    FAKE_API_KEY,
    answer_blocked,
    answer_error,
    answer_json,
    answer_slow,
    answer_text,
    answer_truncated,
    estimate_tokens,
)

# The shared fixture, bound as a plain name so ruff's F811 does not flag the fixture parameters.
fake_gemini = gemini_server.fake_gemini

NOW = dt.datetime(2026, 11, 23, 13, 0, tzinfo=dt.UTC)  # Monday 10:00 in São Paulo
VAGUE = "ando me sentindo meio estranho, quem poderia me ver?"  # the rules cannot read it (confidence 0.2)
BOOK_ANA = "quero marcar com a dra ana souza"  # the rules read it (agendar 0.85, doctor resolved)
HISTORY = [
    {"role": "user", "text": "oi, primeira mensagem"},
    {"role": "bot", "text": "Olá! Sou a recepção virtual, segunda mensagem"},
    {"role": "user", "text": "terceira mensagem do paciente"},
    {"role": "bot", "text": "quarta mensagem: como posso ajudar?"},
]


@pytest.fixture
def session(clinic, phone) -> ConversationSession:
    return ConversationSession.objects.create(phone_number=phone)


def _interpret(session, text=VAGUE, history=None):
    return nlu_interpret(text=text, session=session, history=HISTORY if history is None else history, now=NOW)


def _offline(session, text=VAGUE):
    return offline_interpret(text=text, session=session, now=NOW)


def _prompt_text(request) -> str:
    return "\n".join(request.texts())


def test_a_normal_turn_takes_gemini_intent_resolves_names_to_ids_and_records_tokens(fake_gemini, session, settings):
    assert _offline(session).confidence < 0.6  # precondition: the rules alone cannot read this message
    fake_gemini.enqueue(
        answer_json(
            {
                "intent": "agendar",
                "confidence": 0.88,
                "entities": {"especialidade": "cardiologia", "medico": "Ana Souza", "data": "2026-11-25"},
            },
            output_tokens=30,
        )
    )

    result = _interpret(session)

    request = fake_gemini.generate_requests[0]
    assert (result.intent, result.confidence, result.source) == (Intent.AGENDAR, 0.88, "gemini")
    assert result.entities == {
        "especialidade": "Cardiologia",
        "especialidade_id": Especialidade.objects.get(nome="Cardiologia").id,
        "medico": "Dra. Ana Souza",
        "medico_id": Medico.objects.get(nome="Dra. Ana Souza").id,
        "data": "2026-11-25",
    }
    assert result.fallback_reason == ""
    assert result.model == settings.GEMINI_MODEL == request.model
    assert (result.input_tokens, result.output_tokens) == (estimate_tokens(request.prompt_chars), 30)
    assert token_monitor.tokens_used_today() == result.input_tokens + 30


def test_the_api_key_travels_in_the_header_and_the_prompt_has_facts_and_three_history_messages(fake_gemini, session):
    fake_gemini.enqueue(answer_json({"intent": "agendar", "confidence": 0.9, "entities": {}}))

    _interpret(session, text=BOOK_ANA)

    request = fake_gemini.generate_requests[0]
    prompt = _prompt_text(request)
    assert request.api_key == FAKE_API_KEY
    assert "Av. Paulista, 1000" in prompt and "Dra. Ana Souza" in prompt  # facts from the clinic's tables
    assert "primeira mensagem" not in prompt
    assert all(m in prompt for m in ("segunda mensagem", "terceira mensagem", "quarta mensagem"))


def test_offline_entities_are_kept_and_gemini_adds_what_the_rules_missed(fake_gemini, session):
    fake_gemini.enqueue(
        answer_json({"intent": "agendar", "confidence": 0.9, "entities": {"data": "2026-11-25", "hora": "14:00"}})
    )

    result = _interpret(session, text=BOOK_ANA)

    assert result.entities["medico_id"] == Medico.objects.get(nome="Dra. Ana Souza").id
    assert (result.entities["data"], result.entities["hora"]) == ("2026-11-25", "14:00")


def test_a_doctor_or_plan_gemini_invents_is_dropped(fake_gemini, session):
    fake_gemini.enqueue(
        answer_json(
            {
                "intent": "agendar",
                "confidence": 0.9,
                "entities": {
                    "medico": "Dr. Roberto Inventado",
                    "convenio": "Plano Imaginário Total",
                    "periodo": "tarde",
                },
            }
        )
    )

    result = _interpret(session, text="queria ver com o dr roberto à tarde, pelo meu plano")

    assert result.source == "gemini"
    # Gemini's "Dr. Roberto Inventado" and plan are dropped; the offline reading keeps the patient's own words
    # "dr roberto" as a doctor without an id, which the bot answers with "Não encontrei Dr. Roberto".
    assert result.entities == {"periodo": "tarde", "medico": "Dr. Roberto"}


def test_a_question_keeps_gemini_answer_and_resolves_the_plan(fake_gemini, session):
    answer = "Sim! Aceitamos Amil. Quer agendar uma consulta?"
    fake_gemini.enqueue(
        answer_json(
            {
                "intent": "pergunta",
                "confidence": 0.9,
                "entities": {"convenio": "amil", "topico": "convenio"},
                "answer": answer,
            }
        )
    )

    result = _interpret(session, text="vcs atendem pelo amil ou só particular??")

    assert (result.intent, result.answer) == (Intent.PERGUNTA, answer)
    assert result.entities["convenio_id"] == Convenio.objects.get(nome="Amil").id


def test_when_gemini_gives_up_the_rules_intent_is_kept(fake_gemini, session):
    offline = _offline(session, text="quero marcar uma consulta")
    fake_gemini.enqueue(answer_json({"intent": "desconhecido", "confidence": 0.3, "entities": {}}))

    result = _interpret(session, text="quero marcar uma consulta")

    assert offline.intent == Intent.AGENDAR
    assert (result.intent, result.confidence) == (offline.intent, offline.confidence)
    assert len(fake_gemini.generate_requests) == 1


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (answer_text("{isto não é json"), "malformed"),
        (answer_blocked(), "blocked"),
        (answer_truncated(), "truncated"),
    ],
)
def test_an_unusable_answer_falls_back_to_the_rules_and_still_counts_its_tokens(
    fake_gemini, session, answer, reason, caplog
):
    offline = _offline(session)
    fake_gemini.enqueue(answer)

    with caplog.at_level(logging.WARNING):
        result = _interpret(session)

    request = fake_gemini.generate_requests[0]
    assert (result.intent, result.confidence, result.entities) == (offline.intent, offline.confidence, offline.entities)
    assert (result.source, result.fallback_reason) == ("offline", reason)
    assert result.input_tokens == estimate_tokens(request.prompt_chars)
    assert token_monitor.tokens_used_today() == result.input_tokens + result.output_tokens > 0
    assert reason in caplog.text and session.phone_number not in caplog.text


def test_429_is_retried_a_bounded_number_of_times_then_the_rules_answer(fake_gemini, session, settings):
    settings.GEMINI_MAX_ATTEMPTS = 3
    fake_gemini.default = answer_error(429, retry_delay="30s")

    started = time.monotonic()
    result = _interpret(session)

    assert len(fake_gemini.generate_requests) == 3
    assert time.monotonic() - started < 10  # the 30 s RetryInfo is not honoured: the patient is waiting
    assert (result.source, result.fallback_reason) == ("offline", "rate_limited")
    assert token_monitor.tokens_used_today() == 0


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_fall_back_to_the_rules_after_the_configured_attempts(fake_gemini, session, settings, status):
    fake_gemini.default = answer_error(status)

    result = _interpret(session)

    assert len(fake_gemini.generate_requests) == settings.GEMINI_MAX_ATTEMPTS
    assert (result.source, result.fallback_reason) == ("offline", "server_error")


def test_a_gemini_slower_than_the_timeout_gives_the_rules_answer_within_a_bounded_time(fake_gemini, session, settings):
    settings.GEMINI_TIMEOUT_SECONDS = 0.5
    settings.GEMINI_MAX_ATTEMPTS = 2
    fake_gemini.default = answer_slow(5)

    started = time.monotonic()
    result = _interpret(session)
    elapsed = time.monotonic() - started

    ceiling = 2 * 0.5 + (RETRY_INITIAL_DELAY_SECONDS + RETRY_JITTER_SECONDS) + 1.0  # attempts × timeout + delay + slack
    assert (result.source, result.fallback_reason) == ("offline", "timeout")
    assert 1.0 <= elapsed < ceiling
    assert len(fake_gemini.generate_requests) == 2


def test_without_an_api_key_no_request_is_made(fake_gemini, session, settings):
    settings.GEMINI_API_KEY = ""

    result = _interpret(session)

    assert fake_gemini.requests == []
    assert (result.source, result.fallback_reason) == ("offline", "no_key")


def test_with_the_daily_budget_exhausted_no_request_is_made(fake_gemini, session, settings):
    settings.GEMINI_DAILY_TOKEN_LIMIT = 1000
    token_monitor.record_usage(input_tokens=900, output_tokens=100)

    result = _interpret(session)

    assert fake_gemini.requests == []
    assert (result.source, result.fallback_reason) == ("offline", "budget_exhausted")


def test_a_trivially_certain_reply_makes_no_request(fake_gemini, session):
    result = _interpret(session, text="sim")

    assert fake_gemini.requests == []
    assert (result.intent, result.fallback_reason) == (Intent.CONFIRMAR, "offline_confident")


def test_economy_mode_makes_no_request_when_the_rules_are_fairly_sure(fake_gemini, session, settings):
    settings.GEMINI_DAILY_TOKEN_LIMIT = 1000
    token_monitor.record_usage(input_tokens=850, output_tokens=0)
    assert 0.6 <= _offline(session, text=BOOK_ANA).confidence < 0.95

    result = _interpret(session, text=BOOK_ANA)

    assert fake_gemini.requests == []
    assert (result.intent, result.fallback_reason) == (Intent.AGENDAR, "economy")


def test_economy_mode_asks_the_economy_model_with_one_history_message_when_the_rules_are_unsure(
    fake_gemini, session, settings
):
    settings.GEMINI_DAILY_TOKEN_LIMIT = 1000
    settings.GEMINI_ECONOMY_MODEL = "gemini-economy-test"
    token_monitor.record_usage(input_tokens=850, output_tokens=0)
    fake_gemini.enqueue(answer_json({"intent": "agendar", "confidence": 0.8, "entities": {}}, output_tokens=10))

    result = _interpret(session)

    request = fake_gemini.generate_requests[0]
    prompt = _prompt_text(request)
    assert request.model == result.model == "gemini-economy-test"
    assert "quarta mensagem" in prompt and "terceira mensagem" not in prompt
    assert token_monitor.tokens_used_today() == 850 + result.input_tokens + 10
