"""The Gemini client and NLU through the real google-genai SDK against the local fake server."""

import datetime as dt
import socket
import time

import pytest
from prometheus_client import REGISTRY

from api_gateway.clients.gemini import (
    RETRY_INITIAL_DELAY_SECONDS,
    RETRY_JITTER_SECONDS,
    GeminiUnavailable,
    gemini_client,
    gemini_client_reset,
)
from api_gateway.models import ConversationSession
from api_gateway.services.nlu.gemini import NLU_RESPONSE_SCHEMA, GeminiBadAnswer, gemini_interpret
from api_gateway.services.nlu.prompt import prompt_build
from api_gateway.services.nlu.types import Intent
from tests.fakes import gemini_server
from tests.fakes.gemini_server import (
    FAKE_API_KEY,
    answer_blocked,
    answer_error,
    answer_json,
    answer_prompt_blocked,
    answer_slow,
    answer_text,
    answer_truncated,
    estimate_tokens,
)

# The shared fixture, bound as a plain name so ruff's F811 does not flag the fixture parameters.
fake_gemini = gemini_server.fake_gemini

NOW = dt.datetime(2026, 11, 23, 13, 0, tzinfo=dt.UTC)
FACTS = "Dra. Ana Souza: Cardiologia. Convênios: Unimed, Amil."
BOOKING = {
    "intent": "agendar",
    "confidence": 0.92,
    "entities": {"especialidade": "cardiologia", "medico": "Ana Souza", "data": "2026-11-25", "hora": "14:30"},
}


@pytest.fixture
def session() -> ConversationSession:
    return ConversationSession(phone_number="5511999990001")


def _interpret(session, text="quero marcar cardiologia com a dra ana quarta 14h30", **kwargs):
    return gemini_interpret(text=text, session=session, history=[], facts=FACTS, now=NOW, **kwargs)


def _calls(model: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("gemini_calls_total", {"model": model, "outcome": outcome}) or 0.0


def test_a_normal_answer_becomes_an_nlu_result_with_the_reported_tokens(fake_gemini, session, settings):
    fake_gemini.enqueue(answer_json(BOOKING, output_tokens=41))

    result = _interpret(session)

    request = fake_gemini.generate_requests[0]
    assert result.intent == Intent.AGENDAR
    assert result.confidence == pytest.approx(0.92)
    assert result.entities == BOOKING["entities"]
    assert result.source == "gemini" and result.model == settings.GEMINI_MODEL
    assert result.input_tokens == estimate_tokens(request.prompt_chars)
    assert result.output_tokens == 41


def test_the_request_uses_the_v1_generate_content_path_and_the_key_header(fake_gemini, session, settings):
    fake_gemini.enqueue(answer_json(BOOKING))

    _interpret(session)

    request = fake_gemini.generate_requests[0]
    assert request.path == f"/v1/models/{settings.GEMINI_MODEL}:generateContent"
    assert request.api_key == FAKE_API_KEY
    assert FAKE_API_KEY not in request.path
    config = request.generation_config
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == NLU_RESPONSE_SCHEMA
    assert config["maxOutputTokens"] == settings.GEMINI_MAX_OUTPUT_TOKENS
    assert "thinkingConfig" in config


def test_the_request_carries_exactly_the_built_prompt(fake_gemini, session):
    fake_gemini.enqueue(answer_json(BOOKING))
    history = [{"role": "user", "text": "oi"}, {"role": "bot", "text": "Olá! Como posso ajudar?"}]

    gemini_interpret(text="quero marcar", session=session, history=history, facts=FACTS, now=NOW)

    expected = prompt_build(text="quero marcar", session=session, history=history, facts=FACTS, now=NOW)
    request = fake_gemini.generate_requests[0]
    assert request.texts() == [expected.system_instruction, expected.contents[0]["parts"][0]["text"]]
    assert request.prompt_chars == expected.chars


def test_economy_mode_uses_the_economy_model(fake_gemini, session, settings):
    settings.GEMINI_ECONOMY_MODEL = "gemini-economy-test"
    fake_gemini.enqueue(answer_json(BOOKING))

    result = _interpret(session, economy=True)

    assert fake_gemini.generate_requests[0].model == "gemini-economy-test"
    assert result.model == "gemini-economy-test"


def test_an_unknown_intent_becomes_desconhecido_and_malformed_entities_are_dropped(fake_gemini, session):
    fake_gemini.enqueue(
        answer_json(
            {
                "intent": "comprar_pizza",
                "confidence": 7,
                "entities": {
                    "data": "2026-02-30",
                    "hora": "25:00",
                    "medico_id": 99,
                    "cor_favorita": "azul",
                    "opcao": True,
                    "periodo": "manhã",
                    "particular": "sim",
                    "medico": "   ",
                    "convenio": "Amil",
                },
            }
        )
    )

    result = _interpret(session)

    assert result.intent == Intent.DESCONHECIDO
    assert result.confidence == 1.0
    assert result.entities == {"periodo": "manha", "convenio": "Amil"}


def test_a_question_keeps_the_grounded_answer(fake_gemini, session):
    answer = "Sim, aceitamos Amil e Unimed."
    fake_gemini.enqueue(
        answer_json({"intent": "pergunta", "confidence": 0.9, "entities": {"topico": "convenio"}, "answer": answer})
    )

    result = _interpret(session, text="vocês aceitam amil?")

    assert (result.intent, result.entities, result.answer) == (Intent.PERGUNTA, {"topico": "convenio"}, answer)


def test_tokens_are_estimated_only_when_the_response_has_no_usage_metadata(fake_gemini, session):
    fake_gemini.enqueue(answer_json(BOOKING, with_usage=False))

    result = _interpret(session)

    expected = prompt_build(
        text="quero marcar cardiologia com a dra ana quarta 14h30", session=session, history=[], facts=FACTS, now=NOW
    )
    assert result.input_tokens == expected.estimated_tokens > 0
    assert result.output_tokens > 0


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (answer_text('{"intent": "agendar", "confidence": '), "malformed"),
        (answer_text('["agendar"]'), "malformed"),
        (answer_blocked(), "blocked"),
        (answer_blocked(finish_reason="RECITATION"), "blocked"),
        (answer_prompt_blocked(), "blocked"),
        (answer_truncated(), "truncated"),
    ],
)
def test_an_unusable_answer_raises_bad_answer_with_the_tokens_it_cost(fake_gemini, session, settings, answer, reason):
    fake_gemini.enqueue(answer)
    before = _calls(settings.GEMINI_MODEL, reason)

    with pytest.raises(GeminiBadAnswer) as caught:
        _interpret(session)

    request = fake_gemini.generate_requests[0]
    assert caught.value.reason == reason
    assert caught.value.input_tokens == estimate_tokens(request.prompt_chars)
    assert _calls(settings.GEMINI_MODEL, reason) == before + 1
    assert len(fake_gemini.generate_requests) == 1  # an answer, even a bad one, is not retried


def test_429_is_retried_a_bounded_number_of_times_then_reported_as_rate_limited(fake_gemini, session, settings):
    settings.GEMINI_MAX_ATTEMPTS = 3
    fake_gemini.default = answer_error(429)

    with pytest.raises(GeminiUnavailable) as caught:
        _interpret(session)

    assert caught.value.reason == "rate_limited"
    assert len(fake_gemini.generate_requests) == 3


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried_then_reported(fake_gemini, session, settings, status):
    fake_gemini.default = answer_error(status)

    with pytest.raises(GeminiUnavailable) as caught:
        _interpret(session)

    assert caught.value.reason == "server_error"
    assert len(fake_gemini.generate_requests) == settings.GEMINI_MAX_ATTEMPTS == 2


def test_a_transient_503_followed_by_an_answer_succeeds(fake_gemini, session):
    fake_gemini.enqueue(answer_error(503), answer_json(BOOKING))

    result = _interpret(session)

    assert result.intent == Intent.AGENDAR
    assert len(fake_gemini.generate_requests) == 2


def test_a_400_is_not_retried(fake_gemini, session):
    fake_gemini.default = answer_error(400)

    with pytest.raises(GeminiUnavailable) as caught:
        _interpret(session)

    assert caught.value.reason == "client_error"
    assert len(fake_gemini.generate_requests) == 1


def test_a_slow_server_times_out_within_attempts_times_timeout_plus_delays(fake_gemini, session, settings):
    settings.GEMINI_TIMEOUT_SECONDS = 0.5
    fake_gemini.default = answer_slow(5, answer_json(BOOKING))

    started = time.monotonic()
    with pytest.raises(GeminiUnavailable) as caught:
        _interpret(session)
    elapsed = time.monotonic() - started

    attempts = settings.GEMINI_MAX_ATTEMPTS
    ceiling = attempts * 0.5 + (attempts - 1) * (RETRY_INITIAL_DELAY_SECONDS + RETRY_JITTER_SECONDS) + 1.0
    assert caught.value.reason == "timeout"
    assert attempts * 0.5 <= elapsed < ceiling
    assert len(fake_gemini.generate_requests) == attempts


def test_a_refused_connection_is_reported_as_connect(settings, session):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.GEMINI_API_KEY = FAKE_API_KEY
    settings.GEMINI_API_BASE_URL = f"http://127.0.0.1:{port}"
    gemini_client_reset()

    with pytest.raises(GeminiUnavailable) as caught:
        _interpret(session)

    assert caught.value.reason == "connect"
    gemini_client_reset()


def test_one_sdk_client_is_reused_until_the_settings_change(fake_gemini, settings):
    first = gemini_client()

    assert gemini_client() is first
    settings.GEMINI_TIMEOUT_SECONDS = 3.0
    assert gemini_client() is not first
