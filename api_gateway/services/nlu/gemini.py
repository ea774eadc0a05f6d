"""The Gemini NLU: one structured-output call, its answer validated into an NLUResult.

Nothing the model returns is trusted as is: the intent must be one of ours, entity keys and types are checked
(ids are never taken from the model; the router resolves names against the clinic's tables), dates must parse.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from django.conf import settings

from api_gateway.clients.gemini import GeminiResult, GeminiUnavailable, gemini_generate
from api_gateway.models import ConversationSession
from api_gateway.services.nlu.prompt import CHARS_PER_TOKEN, prompt_build
from api_gateway.services.nlu.types import Intent, NLUResult

logger = logging.getLogger(__name__)

__all__ = [
    "GeminiBadAnswer",
    "GeminiUnavailable",
    "NLU_RESPONSE_SCHEMA",
    "gemini_interpret",
    "nlu_result_from_json",
    "tokens_spent",
]

NAME_KEYS = ("nome", "especialidade", "medico", "convenio", "exame")
BOOL_KEYS = ("particular", "referencia")
PERIODS = ("manha", "tarde", "noite")
TOPICS = (
    "endereco",
    "horario",
    "telefone",
    "email",
    "preco",
    "convenio",
    "preparo",
    "politicas",
    "duracao",
    "urgencia",
    "agenda",
    "medicos",
    "especialidades",
    "exames",
)
MAX_NAME_CHARS = 120
MAX_ANSWER_CHARS = 1000
MAX_OPTION = 20
DEFAULT_CONFIDENCE = 0.5

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})$")

NLU_RESPONSE_SCHEMA: dict = {
    "type": "object",
    "properties": {
        "intent": {"type": "string", "enum": [i.value for i in Intent]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "entities": {
            "type": "object",
            "properties": {
                **{key: {"type": "string"} for key in NAME_KEYS},
                **{key: {"type": "boolean"} for key in BOOL_KEYS},
                "data": {"type": "string", "description": "YYYY-MM-DD"},
                "hora": {"type": "string", "description": "HH:MM (24h)"},
                "periodo": {"type": "string", "enum": list(PERIODS)},
                "opcao": {"type": "integer", "minimum": 1},
                "topico": {"type": "string", "enum": list(TOPICS)},
            },
        },
        "answer": {"type": "string"},
    },
    "required": ["intent", "confidence", "entities"],
}


class GeminiBadAnswer(Exception):
    """Gemini answered but the answer is unusable. `reason`: blocked | truncated | malformed.

    Carries the tokens the answer cost, so they are still counted against the budget.
    """

    def __init__(self, reason: str, *, model: str = "", input_tokens: int = 0, output_tokens: int = 0):
        super().__init__(f"Gemini answer unusable: {reason}")
        self.reason = reason
        self.model = model
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens


def _clean_name(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = " ".join(value.split())
    return value[:MAX_NAME_CHARS] if value else None


def _clean_date(value: object) -> str | None:
    if not isinstance(value, str) or not _DATE_RE.match(value.strip()):
        return None
    try:
        return dt.date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        return None


def _clean_time(value: object) -> str | None:
    match = _TIME_RE.match(value.strip()) if isinstance(value, str) else None
    if not match:
        return None
    hour, minute = int(match[1]), int(match[2])
    return f"{hour:02d}:{minute:02d}" if hour < 24 and minute < 60 else None


def _clean_option(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return value if isinstance(value, int) and 1 <= value <= MAX_OPTION else None


def _clean_period(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip().lower().replace("ã", "a")
    return value if value in PERIODS else None


def _clean_entities(raw: object) -> dict:
    if not isinstance(raw, dict):
        return {}
    cleaned: dict = {}
    for key in NAME_KEYS:
        if (value := _clean_name(raw.get(key))) is not None:
            cleaned[key] = value
    for key in BOOL_KEYS:
        if isinstance(raw.get(key), bool):
            cleaned[key] = raw[key]
    checks = {
        "data": _clean_date,
        "hora": _clean_time,
        "opcao": _clean_option,
        "periodo": _clean_period,
        "topico": lambda v: v if v in TOPICS else None,
    }
    for key, check in checks.items():
        if key in raw and (value := check(raw[key])) is not None:
            cleaned[key] = value
    dropped = set(raw) - set(cleaned)
    if dropped:
        logger.info("gemini entities dropped as unknown or malformed: %s", ", ".join(sorted(map(str, dropped))))
    return cleaned


def _clean_confidence(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return DEFAULT_CONFIDENCE
    return min(1.0, max(0.0, float(value)))


def nlu_result_from_json(data: dict, *, model: str = "", input_tokens: int = 0, output_tokens: int = 0) -> NLUResult:
    """Validate the model's JSON into an NLUResult (unknown intent -> desconhecido; bad entities dropped)."""
    try:
        intent = Intent(str(data.get("intent", "")).strip().lower())
    except ValueError:
        intent = Intent.DESCONHECIDO
    answer = data.get("answer")
    answer = answer.strip()[:MAX_ANSWER_CHARS] if isinstance(answer, str) and answer.strip() else None
    return NLUResult(
        intent=intent,
        confidence=_clean_confidence(data.get("confidence")),
        entities=_clean_entities(data.get("entities")),
        answer=answer,
        source="gemini",
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )


def tokens_spent(result: GeminiResult, prompt_tokens_estimate: int) -> tuple[int, int]:
    """(input, output) tokens of a call: as Gemini reported them, else estimated (the prompt's estimate given, the
    answer's from its length)."""
    if result.usage_reported:
        return result.input_tokens, result.output_tokens
    return prompt_tokens_estimate, -(-len(result.text or "") // CHARS_PER_TOKEN)


def gemini_interpret(
    *,
    text: str,
    session: ConversationSession,
    history: list[dict],
    facts: str,
    economy: bool = False,
    now: dt.datetime | None = None,
) -> NLUResult:
    """Interpret one message with Gemini. Raises GeminiUnavailable or GeminiBadAnswer; never returns junk."""
    model = settings.GEMINI_ECONOMY_MODEL if economy else settings.GEMINI_MODEL
    prompt = prompt_build(text=text, session=session, history=history, facts=facts, economy=economy, now=now)
    result = gemini_generate(
        model=model,
        system_instruction=prompt.system_instruction,
        contents=prompt.contents,
        response_schema=NLU_RESPONSE_SCHEMA,
        max_output_tokens=settings.GEMINI_MAX_OUTPUT_TOKENS,
    )
    input_tokens, output_tokens = tokens_spent(result, prompt.estimated_tokens)
    if result.outcome != "ok":
        raise GeminiBadAnswer(result.outcome, model=model, input_tokens=input_tokens, output_tokens=output_tokens)
    return nlu_result_from_json(result.parsed, model=model, input_tokens=input_tokens, output_tokens=output_tokens)
