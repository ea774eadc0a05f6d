"""The Gemini prompt: a short fixed system instruction plus one bounded per-turn message.

The size stays flat as a conversation grows: only the last few history messages are sent (the API is
stateless, so nothing else is remembered), every piece of text is truncated, and the clinic facts are the
compact, relevant ones from `rag_agent.context`, capped in length. The patient's name and phone are never sent:
the model does not need them to classify a message (LGPD data minimisation).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.utils import timezone

from api_gateway.models import ConversationSession
from api_gateway.services.nlu.types import Intent

HISTORY_MESSAGES = 3
ECONOMY_HISTORY_MESSAGES = 1
MAX_HISTORY_CHARS = 300
MAX_MESSAGE_CHARS = 1000
MAX_FACTS_CHARS = 3000
MAX_OPTIONS = 5
MAX_OPTION_CHARS = 50
# Gemini's tokenizer averages ~4 characters per token on Portuguese prose; close enough for budgeting and for
# benchmarks (the API's usage_metadata is the real count).
CHARS_PER_TOKEN = 4

WEEKDAYS_PT = ("segunda-feira", "terça-feira", "quarta-feira", "quinta-feira", "sexta-feira", "sábado", "domingo")

SYSTEM_INSTRUCTION = f"""You are the language-understanding step of a WhatsApp receptionist for a Brazilian \
medical clinic. Patients write in Brazilian Portuguese, often informally, with typos and abbreviations.
Classify the patient's LAST message and return only JSON matching the schema:
- intent: one of {", ".join(i.value for i in Intent)}. Use "informar" when the patient only gives data \
(name, date, time, doctor, plan, option); "pergunta" for a question about the clinic; "aguardar" when the \
patient will decide or answer later ("vou ver com meu marido e te falo"); "desconhecido" if unsure.
- confidence: 0 to 1.
- entities: only what the patient wrote, names as written. data as YYYY-MM-DD and hora as HH:MM, resolved \
against the current date and time given (America/Sao_Paulo); periodo manha|tarde|noite; opcao is the 1-based \
number of an offered option; referencia true for "com ele", "essa"; particular true when paying without a plan; \
topico for questions. Omit what is absent.
- answer: only for intent "pergunta": a short, friendly answer in Brazilian Portuguese (at most 3 sentences) \
grounded ONLY in the clinic facts given. If the facts do not contain the answer, say the clinic team will \
confirm. Never invent doctors, prices, plans, exams, addresses or times.
Use the conversation state and recent messages only to interpret short replies ("sim", "o segundo", "às 10")."""


@dataclass
class Prompt:
    system_instruction: str
    contents: list[dict] = field(default_factory=list)

    @property
    def chars(self) -> int:
        return len(self.system_instruction) + sum(
            len(part.get("text", "")) for content in self.contents for part in content.get("parts", [])
        )

    @property
    def estimated_tokens(self) -> int:
        """chars / 4, rounded up: an estimate for budgeting before the call (the response reports the truth)."""
        return -(-self.chars // CHARS_PER_TOKEN)


def _truncate(text: str, limit: int) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _now_line(now: dt.datetime | None) -> str:
    local = timezone.localtime(now or timezone.now())
    return f"Agora: {WEEKDAYS_PT[local.weekday()]}, {local:%Y-%m-%d %H:%M} (America/Sao_Paulo)"


def session_slots(session: ConversationSession) -> dict:
    """The filled slots as ids and plain values: no related-row reads, no personal data."""
    slots = {
        "especialidade_id": session.selected_specialty_id,
        "medico_id": session.selected_doctor_id,
        "convenio_id": session.selected_convenio_id,
        "convenio": session.insurance_type or None,
        "data": session.preferred_date.isoformat() if session.preferred_date else None,
        "hora": session.preferred_time.strftime("%H:%M") if session.preferred_time else None,
        "periodo": getattr(session, "preferred_period", "") or None,
        "agendamento_id": session.target_appointment_id,
    }
    return {key: value for key, value in slots.items() if value not in (None, "")}


def _options_line(last_options: dict | None) -> str:
    if not isinstance(last_options, dict) or not last_options.get("items"):
        return ""
    titles = []
    for item in list(last_options["items"])[:MAX_OPTIONS]:
        title = (item.get("title") or item.get("name") or item.get("id")) if isinstance(item, dict) else item
        titles.append(_truncate(str(title), MAX_OPTION_CHARS))
    more = len(last_options["items"]) - len(titles)
    suffix = f" (+{more})" if more > 0 else ""
    listed = "; ".join(f"{i}. {t}" for i, t in enumerate(titles, 1))
    return f"Opções oferecidas ({last_options.get('kind', '')}): {listed}{suffix}"


def _state_lines(session: ConversationSession) -> list[str]:
    slots = session_slots(session)
    state = f"Estado: {session.current_state}"
    if session.flow:
        state += f"; fluxo: {session.flow}"
    if session.name_confirmed:
        state += "; nome do paciente já informado"
    lines = [state]
    if slots:
        lines.append("Dados já escolhidos: " + ", ".join(f"{k}={v}" for k, v in slots.items()))
    options = _options_line(session.last_options)
    if options:
        lines.append(options)
    return lines


def _history_lines(history: list[dict], limit: int | None, max_chars: int | None) -> list[str]:
    recent = history[-limit:] if limit else list(history)
    lines = []
    for item in recent:
        who = "Paciente" if item.get("role") == "user" else "Recepção"
        text = item.get("text", "")
        lines.append(f"{who}: {_truncate(text, max_chars) if max_chars else text}")
    return lines


def _assemble(*, now_line: str, state: list[str], history: list[str], facts: str, message: str) -> list[dict]:
    sections = [now_line, *state]
    if history:
        sections.append("Mensagens recentes:\n" + "\n".join(history))
    sections.append("Fatos da clínica:\n" + (facts or "(nenhum fato relevante encontrado)"))
    sections.append(f"Última mensagem do paciente:\n{message}")
    return [{"role": "user", "parts": [{"text": "\n\n".join(sections)}]}]


def prompt_build(
    *,
    text: str,
    session: ConversationSession,
    history: list[dict],
    facts: str,
    economy: bool = False,
    now: dt.datetime | None = None,
) -> Prompt:
    """The bounded prompt for one turn. `history`: [{"role": "user"|"bot", "text": ...}], newest last; it
    should not include the current message."""
    limit = ECONOMY_HISTORY_MESSAGES if economy else HISTORY_MESSAGES
    contents = _assemble(
        now_line=_now_line(now),
        state=_state_lines(session),
        history=_history_lines(history, limit, MAX_HISTORY_CHARS),
        facts=_truncate_block(facts, MAX_FACTS_CHARS),
        message=_truncate(text, MAX_MESSAGE_CHARS),
    )
    return Prompt(system_instruction=SYSTEM_INSTRUCTION, contents=contents)


def prompt_naive_full_history(
    *,
    text: str,
    session: ConversationSession,
    history: list[dict],
    catalogue: str,
    now: dt.datetime | None = None,
) -> Prompt:
    """The naive alternative, for benchmarks only: the whole history and the whole clinic catalogue, untruncated."""
    contents = _assemble(
        now_line=_now_line(now),
        state=_state_lines(session),
        history=_history_lines(history, None, None),
        facts=catalogue,
        message=text,
    )
    return Prompt(system_instruction=SYSTEM_INSTRUCTION, contents=contents)


def _truncate_block(text: str, limit: int) -> str:
    """Like _truncate, but keeps line breaks (facts are one fact per line)."""
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
