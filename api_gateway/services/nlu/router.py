"""The one NLU entry point of the conversation engine: offline rules first, Gemini only when it is worth it.

The patient always gets an answer: without a key, over budget, on a confident offline reading, or when Gemini
fails in any way, the offline result is returned with `fallback_reason` saying why.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from django.conf import settings

from api_gateway.clients.gemini import GeminiUnavailable
from api_gateway.models import ConversationSession
from api_gateway.services.nlu.gemini import GeminiBadAnswer, gemini_interpret
from api_gateway.services.nlu.offline import offline_interpret
from api_gateway.services.nlu.prompt import session_slots
from api_gateway.services.nlu.types import Intent, NLUResult
from api_gateway.services.token_monitor import token_monitor

logger = logging.getLogger(__name__)

# "sim", "2", "oi": the rules are certain and a model call would only add latency and cost.
OFFLINE_CERTAIN = 0.95
# In economy mode a reasonably sure offline reading is good enough.
ECONOMY_OFFLINE_ENOUGH = 0.6


def _finders() -> dict:
    from rag_agent import selectors

    return {
        "especialidade": selectors.specialty_find,
        "medico": selectors.doctor_find,
        "convenio": selectors.convenio_find,
        "exame": selectors.exam_find,
    }


def _fallback(
    offline: NLUResult, reason: str, *, model: str = "", input_tokens: int = 0, output_tokens: int = 0
) -> NLUResult:
    # Tokens a failed answer still cost travel with the result: the engine stores them on the message, the
    # durable record the daily budget is rebuilt from.
    return dataclasses.replace(
        offline,
        fallback_reason=reason,
        model=model or offline.model,
        input_tokens=offline.input_tokens + input_tokens,
        output_tokens=offline.output_tokens + output_tokens,
    )


def _skip_reason(offline: NLUResult) -> tuple[str, bool]:
    """(why Gemini is not called, or "", economy mode)."""
    if not settings.GEMINI_API_KEY:
        return "no_key", False
    # Checked before the budget so trivial replies cost no counter read.
    if offline.confidence >= OFFLINE_CERTAIN:
        return "offline_confident", False
    status = token_monitor.status()
    if status.exhausted:
        return "budget_exhausted", True
    if status.economy and offline.confidence >= ECONOMY_OFFLINE_ENOUGH:
        return "economy", True
    return "", status.economy


def entities_merge(*, offline: dict, gemini: dict) -> dict:
    """Offline entities (which carry resolved ids) updated with Gemini's, whose names are re-resolved to ids.

    A name that matches nothing in the clinic's tables is dropped: the bot never invents a doctor, plan or exam.
    """
    merged = dict(offline)
    finders = _finders()
    for key, value in gemini.items():
        finder = finders.get(key)
        if finder is None:
            merged[key] = value
            continue
        matches = finder(value, limit=1)
        if not matches:
            logger.info("gemini %s not found in the clinic's tables; dropped", key)
            continue
        match = matches[0]
        merged[key] = match.name
        merged[f"{key}_id"] = match.id
    return merged


def nlu_interpret(
    *,
    text: str,
    session: ConversationSession,
    history: list[dict],
    now: dt.datetime | None = None,
) -> NLUResult:
    """Interpret one patient message. `history`: [{"role": "user"|"bot", "text": ...}], newest last."""
    offline = offline_interpret(text=text, session=session, now=now)
    reason, economy = _skip_reason(offline)
    if reason:
        return _fallback(offline, reason)

    from rag_agent.context import context_build

    try:
        facts = context_build(text=text, entities=offline.entities, slots=session_slots(session))
        result = gemini_interpret(text=text, session=session, history=history, facts=facts, economy=economy, now=now)
    except GeminiUnavailable as exc:
        logger.warning("gemini unavailable (%s); using the offline NLU", exc.reason)
        return _fallback(offline, exc.reason)
    except GeminiBadAnswer as exc:
        logger.warning("gemini answer unusable (%s); using the offline NLU", exc.reason)
        token_monitor.record_usage(input_tokens=exc.input_tokens, output_tokens=exc.output_tokens)
        return _fallback(
            offline, exc.reason, model=exc.model, input_tokens=exc.input_tokens, output_tokens=exc.output_tokens
        )
    except Exception:  # noqa: BLE001 - a bug on the model path must not leave the patient without an answer
        logger.exception("gemini NLU failed unexpectedly; using the offline NLU")
        return _fallback(offline, "error")

    token_monitor.record_usage(input_tokens=result.input_tokens, output_tokens=result.output_tokens)
    try:
        entities = entities_merge(offline=offline.entities, gemini=result.entities)
    except Exception:  # noqa: BLE001 - same reason: fall back, but keep the tokens already spent
        logger.exception("merging gemini entities failed; using the offline NLU")
        return _fallback(
            offline, "error", model=result.model, input_tokens=result.input_tokens, output_tokens=result.output_tokens
        )
    if result.intent == Intent.DESCONHECIDO and offline.intent != Intent.DESCONHECIDO:
        # The model gave up where the rules had a reading: keep the rules' intent, still take its entities.
        return dataclasses.replace(
            result, intent=offline.intent, confidence=offline.confidence, entities=entities, answer=None
        )
    return dataclasses.replace(result, entities=entities)
