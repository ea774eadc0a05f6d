import datetime as dt

from api_gateway.models import ConversationSession, ConversationState
from api_gateway.services.nlu.prompt import (
    ECONOMY_HISTORY_MESSAGES,
    HISTORY_MESSAGES,
    MAX_FACTS_CHARS,
    MAX_HISTORY_CHARS,
    MAX_MESSAGE_CHARS,
    SYSTEM_INSTRUCTION,
    prompt_build,
    prompt_naive_full_history,
)
from api_gateway.services.nlu.types import Intent

NOW = dt.datetime(2026, 11, 23, 13, 0, tzinfo=dt.UTC)  # Monday 10:00 in São Paulo
FACTS = "Clínica Vida Saudável. Dra. Ana Souza: Cardiologia; convênios Unimed, Amil."


def _history(count: int, length: int = 120) -> list[dict]:
    return [
        {"role": "user" if i % 2 == 0 else "bot", "text": f"mensagem {i:04d} " + "x" * (length - 14)}
        for i in range(count)
    ]


def _session(**fields) -> ConversationSession:
    return ConversationSession(phone_number="5511999990001", patient_name="João da Silva", **fields)


def _text(prompt) -> str:
    return "\n".join(part["text"] for content in prompt.contents for part in content["parts"])


def test_prompt_size_is_the_same_for_a_100_message_history_as_for_a_5_message_one():
    short = prompt_build(text="quero marcar", session=_session(), history=_history(5), facts=FACTS, now=NOW)
    long = prompt_build(text="quero marcar", session=_session(), history=_history(100), facts=FACTS, now=NOW)

    assert long.chars == short.chars
    assert long.estimated_tokens == short.estimated_tokens


def test_naive_full_history_prompt_grows_with_the_conversation():
    short = prompt_naive_full_history(text="oi", session=_session(), history=_history(5), catalogue=FACTS, now=NOW)
    long = prompt_naive_full_history(text="oi", session=_session(), history=_history(100), catalogue=FACTS, now=NOW)

    assert long.chars > short.chars + 95 * 100


def test_prompt_is_bounded_for_a_huge_message_huge_history_and_huge_facts():
    prompt = prompt_build(
        text="a" * 50_000,
        session=_session(),
        history=_history(500, length=10_000),
        facts="fato\n" * 20_000,
        now=NOW,
    )

    ceiling = len(SYSTEM_INSTRUCTION) + MAX_MESSAGE_CHARS + HISTORY_MESSAGES * (MAX_HISTORY_CHARS + 12)
    ceiling += MAX_FACTS_CHARS + 600  # headings, date line, state line
    assert prompt.chars <= ceiling
    assert "a" * MAX_MESSAGE_CHARS not in _text(prompt)


def test_prompt_sends_the_last_three_messages_and_only_the_last_one_in_economy_mode():
    history = [{"role": "user", "text": f"mensagem número {i}"} for i in range(1, 8)]

    normal = _text(prompt_build(text="ok", session=_session(), history=history, facts=FACTS, now=NOW))
    economy = _text(prompt_build(text="ok", session=_session(), history=history, facts=FACTS, economy=True, now=NOW))

    assert HISTORY_MESSAGES == 3 and ECONOMY_HISTORY_MESSAGES == 1
    assert [f"mensagem número {i}" in normal for i in (4, 5, 6, 7)] == [False, True, True, True]
    assert [f"mensagem número {i}" in economy for i in (6, 7)] == [False, True]


def test_prompt_gives_the_current_date_and_weekday_in_sao_paulo_time():
    text = _text(prompt_build(text="amanhã às 15h", session=_session(), history=[], facts=FACTS, now=NOW))

    assert "segunda-feira, 2026-11-23 10:00 (America/Sao_Paulo)" in text


def test_prompt_carries_state_slots_and_offered_options_but_no_phone_or_patient_name():
    session = _session(
        current_state=ConversationState.CHOOSING_TIME,
        flow="agendar",
        name_confirmed=True,
        selected_doctor_id=7,
        preferred_date=dt.date(2026, 11, 25),
        last_options={
            "kind": "slot",
            "items": [{"id": "slot:1", "title": "09:00"}, {"id": "slot:2", "title": "09:30"}],
        },
    )

    text = _text(prompt_build(text="o segundo", session=session, history=[], facts=FACTS, now=NOW))

    assert "Estado: choosing_time; fluxo: agendar" in text
    assert "medico_id=7" in text and "data=2026-11-25" in text
    assert "1. 09:00; 2. 09:30" in text
    assert "5511999990001" not in text and "João" not in text


def test_prompt_includes_the_facts_and_the_patient_message_last():
    text = _text(prompt_build(text="vocês aceitam Amil?", session=_session(), history=[], facts=FACTS, now=NOW))

    assert FACTS in text
    assert text.rstrip().endswith("vocês aceitam Amil?")


def test_system_instruction_lists_every_intent_and_forbids_invention():
    for intent in Intent:
        assert intent.value in SYSTEM_INSTRUCTION
    assert "Never invent doctors" in SYSTEM_INSTRUCTION


def test_estimated_tokens_are_characters_divided_by_four_rounded_up():
    prompt = prompt_build(text="oi", session=_session(), history=[], facts=FACTS, now=NOW)

    assert prompt.estimated_tokens == -(-prompt.chars // 4)
    assert prompt.estimated_tokens * 4 >= prompt.chars > (prompt.estimated_tokens - 1) * 4
