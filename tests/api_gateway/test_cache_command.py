import datetime as dt
import io
import json
import logging

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from api_gateway.models import ConversationSession, ConversationState
from api_gateway.services import cache_inspect, idempotency
from api_gateway.services.session_cache import session_key, session_manager
from api_gateway.services.token_monitor import token_monitor, tokens_key
from rag_agent.cache import CLINIC_DATA_KEY, doctor_key
from rag_agent.models import Medico
from rag_agent.selectors import clinic_catalog, doctor_detail

pytestmark = pytest.mark.django_db
locmem_only = pytest.mark.skipif(bool(settings.REDIS_URL), reason="LocMem behaviour (runs without REDIS_URL)")

OTHER_PHONE = "5521988887777"


def run_cache(*args: str) -> str:
    out = io.StringIO()
    call_command("cache", *args, stdout=out)
    return out.getvalue()


def run_cache_json(*args: str):
    return json.loads(run_cache(*args, "--json"))


def seed_every_family(phone: str) -> dict[str, int]:
    """One or more keys in each family, through the code that writes them in production."""
    session_manager.get_or_start(phone=phone)
    token_monitor.tokens_used_today()  # builds today's token counter
    session_manager.get_or_start(phone=OTHER_PHONE)
    doctors = [d["id"] for d in clinic_catalog()["medicos"][:3]]
    for doctor_id in doctors:
        doctor_detail(doctor_id)
    idempotency.idempotent_run(key="client-key-1", payload={"text": "oi"}, phone=phone, run=lambda: {"reply": "Olá"})
    # clinic: the catalogue and its version key
    return {"sessions": 2, "clinic": 2, "doctors": len(doctors), "tokens": 1, "idempotency": 1}


def family_counts() -> dict[str, int]:
    return {name: len(cache_inspect.cache_key_list(family=name, limit=None)) for name in cache_inspect.FAMILIES}


# --- LocMem: the command cannot see the server's cache ---------------------------------------------------------
@locmem_only
@pytest.mark.parametrize(
    "args",
    [
        ["stats"],
        ["keys"],
        ["keys", "--family", "sessions", "--json"],
        ["show", "session", "5511999990001"],
        ["clear", "--family", "sessions", "--yes"],
    ],
)
def test_on_locmem_cache_command_says_the_cache_lives_in_the_server_process(args, phone):
    session_manager.get_or_start(phone=phone)
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("cache", *args, stdout=out)
    assert raised.value.returncode == 3
    assert "/admin/cache/" in str(raised.value) and "processo do servidor" in str(raised.value)
    assert out.getvalue() == ""  # no empty, misleading table
    assert caches["default"].get(session_key(phone)) is not None  # and nothing was cleared


@locmem_only
def test_on_locmem_cache_warm_explains_it_would_only_fill_its_own_process(clinic):
    with pytest.raises(CommandError) as raised:
        run_cache("warm")
    assert raised.value.returncode == 3
    assert "/admin/cache/" in str(raised.value)
    assert caches["default"].get(CLINIC_DATA_KEY) is None


# --- Redis ---------------------------------------------------------------------------------------------------
@pytest.mark.redis
def test_stats_counts_keys_per_family_and_reports_redis_memory(clinic, phone):
    expected = seed_every_family(phone)
    stats = run_cache_json("stats")
    assert stats["backend"] == "redis"
    assert {name: family["keys"] for name, family in stats["families"].items()} == expected
    assert stats["redis"]["used_memory_bytes"] > 0
    assert stats["redis"]["keyspace_hits"] is not None


@pytest.mark.redis
def test_stats_reads_as_a_table_for_people(clinic, phone):
    expected = seed_every_family(phone)
    text = run_cache("stats")
    assert "Backend: redis" in text and "memória" in text
    for name, count in expected.items():
        assert any(line.split()[:2] == [name, str(count)] for line in text.splitlines())


@pytest.mark.redis
def test_keys_lists_one_family_with_remaining_ttl(clinic, phone):
    seed_every_family(phone)
    rows = run_cache_json("keys", "--family", "sessions")
    assert sorted(r["key"] for r in rows) == sorted([session_key(phone), session_key(OTHER_PHONE)])
    timeout = token_monitor.get_cache_timeout()
    assert all(r["family"] == "sessions" and 0 < r["ttl"] <= timeout for r in rows)


@pytest.mark.redis
def test_keys_honours_pattern_and_limit(clinic, phone):
    seed_every_family(phone)
    assert [r["key"] for r in run_cache_json("keys", "--pattern", f"*{phone}")] == [session_key(phone)]
    assert len(run_cache_json("keys", "--limit", "2")) == 2
    assert "1 chave(s)" in run_cache("keys", "--pattern", CLINIC_DATA_KEY)


@pytest.mark.redis
def test_keys_with_an_unknown_family_is_a_usage_error(phone):
    with pytest.raises(CommandError) as raised:
        run_cache("keys", "--family", "nope")
    assert raised.value.returncode == 2


@pytest.mark.redis
def test_show_session_puts_the_cache_beside_the_database(phone):
    session = session_manager.get_or_start(phone=phone)
    session.patient_name = "Maria Souza"
    session_manager.save(session=session)
    shown = run_cache_json("show", "session", phone)
    assert shown["cache"]["patient_name"] == shown["database"]["patient_name"] == "Maria Souza"
    assert shown["stale"] is False and shown["ttl"] > 0


@pytest.mark.redis
def test_show_session_makes_a_stale_cache_visible(phone):
    session_manager.get_or_start(phone=phone)
    # A write that bypassed session_manager: the cache still holds the old state.
    ConversationSession.objects.filter(phone_number=phone).update(current_state=ConversationState.HUMAN_HANDOFF)
    shown = run_cache_json("show", "session", phone)
    assert shown["stale"] is True and "current_state" in shown["differences"]
    assert shown["cache"]["current_state"] == "idle" and shown["database"]["current_state"] == "human_handoff"
    text = run_cache("show", "session", phone)
    assert "DESATUALIZADO" in text and "current_state" in text


@pytest.mark.redis
def test_show_session_of_an_unknown_phone_exits_with_one(phone):
    with pytest.raises(CommandError) as raised:
        run_cache("show", "session", phone)
    assert raised.value.returncode == 1


@pytest.mark.redis
def test_show_without_its_argument_is_a_usage_error():
    with pytest.raises(CommandError) as raised:
        run_cache("show", "doctor")
    assert raised.value.returncode == 2


@pytest.mark.redis
def test_show_tokens_compares_the_counter_with_the_database(phone):
    session = ConversationSession.objects.create(phone_number=phone)
    session.messages.create(message_type="user", input_tokens=120, output_tokens=30, nlu_source="gemini")
    caches["strict"].set(tokens_key(timezone.localdate()), 50, timeout=600)
    shown = run_cache_json("show", "tokens")
    assert shown["cache"] == 50 and shown["database"] == 150 and shown["stale"] is True
    yesterday = (timezone.localdate() - dt.timedelta(days=1)).isoformat()
    assert run_cache_json("show", "tokens", yesterday)["database"] == 0


@pytest.mark.redis
def test_show_clinic_flags_a_doctor_the_cache_still_offers(clinic):
    clinic_catalog()
    assert run_cache_json("show", "clinic")["stale"] is False
    doctor = Medico.objects.order_by("pk").first()
    Medico.objects.filter(pk=doctor.pk).update(ativo=False)  # no signal: the cached catalogue is now stale
    shown = run_cache_json("show", "clinic")
    assert shown["differences"] == ["medicos"]
    assert doctor.pk not in shown["database"]["medicos"]


@pytest.mark.redis
def test_show_doctor_finds_by_name_and_shows_both_sides(clinic):
    doctor = Medico.objects.order_by("pk").first()
    doctor_detail(doctor.pk)
    shown = run_cache_json("show", "doctor", doctor.nome.split()[-1])
    entry = next(e for e in shown["doctors"] if e["key"] == doctor_key(doctor.pk))
    assert entry["cache"] is not None and entry["database"]["crm"] == doctor.crm


@pytest.mark.redis
def test_show_idempotency_accepts_the_clients_key(phone):
    idempotency.idempotent_run(key="client-key-9", payload={"text": "oi"}, phone=phone, run=lambda: {"reply": "Olá"})
    shown = run_cache_json("show", "idempotency", "client-key-9")
    assert shown["key"] == idempotency.cache_key("client-key-9")
    assert shown["cache"]["response"] == {"reply": "Olá"} and shown["cache"]["status"] == "done"
    assert run_cache_json("show", "idempotency", shown["key"])["cache"]["phone"] == phone


@pytest.mark.redis
@pytest.mark.parametrize("family", list(cache_inspect.FAMILIES))
def test_clear_removes_only_its_family(family, clinic, phone):
    expected = seed_every_family(phone)
    text = run_cache("clear", "--family", family, "--yes")
    assert f"{expected[family]} chave(s) removida(s)" in text
    assert family_counts() == {**expected, family: 0}


@pytest.mark.redis
def test_clear_without_yes_only_says_what_it_would_remove(clinic, phone):
    expected = seed_every_family(phone)
    text = run_cache("clear", "--family", "doctors")
    assert f"Removeria {expected['doctors']} chave(s)" in text and "--yes" in text
    assert family_counts() == expected


@pytest.mark.redis
def test_clear_by_phone_removes_that_patients_session_and_idempotency_keys_only(clinic, phone):
    expected = seed_every_family(phone)
    result = run_cache_json("clear", "--phone", phone, "--yes")
    assert result["removed"] == 2
    assert family_counts() == {**expected, "sessions": 1, "idempotency": 0}
    assert caches["default"].get(session_key(OTHER_PHONE)) is not None


@pytest.mark.redis
def test_clear_logs_cache_cleared(clinic, phone, caplog):
    seed_every_family(phone)
    with caplog.at_level(logging.INFO):
        run_cache("clear", "--family", "tokens", "--yes")
    assert any("[CACHE CLEARED]" in r.getMessage() and "tokens" in r.getMessage() for r in caplog.records)


@pytest.mark.redis
@pytest.mark.parametrize("args", [["clear", "--yes"], ["clear", "--family", "nope", "--yes"]])
def test_clear_without_a_valid_target_is_a_usage_error(args, clinic, phone):
    expected = seed_every_family(phone)
    with pytest.raises(CommandError) as raised:
        run_cache(*args)
    assert raised.value.returncode == 2
    assert family_counts() == expected


@pytest.mark.redis
def test_warm_preloads_the_catalogue_and_every_active_doctor(clinic):
    result = run_cache_json("warm")
    active = Medico.objects.filter(ativo=True).count()
    assert result == {"clinic": 2, "doctors": active}  # the catalogue and its version key
    assert caches["default"].get(CLINIC_DATA_KEY) is not None
    assert family_counts()["doctors"] == active
