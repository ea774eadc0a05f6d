import datetime as dt
import io
import json

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.core.management.base import CommandError
from django.forms.models import model_to_dict
from django.test import override_settings
from django.utils import timezone

from api_gateway.models import ConversationMessage, ConversationSession
from api_gateway.services import cache_inspect, idempotency, privacy
from api_gateway.services.privacy import phone_variants
from api_gateway.services.session_cache import session_key, session_manager
from rag_agent.models import Agendamento, Medico

pytestmark = pytest.mark.django_db

OTHER_PHONE = "5521977776666"
PATIENT_NAME = "Maria Souza"
# Nothing listens on port 1: connection refused at once, as when Redis is down.
REDIS_DOWN = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0",
              "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.1, "SOCKET_TIMEOUT": 0.1}}  # fmt: skip


@pytest.fixture(autouse=True)
def _forget_in_process_results():
    """The in-process idempotency fallback outlives a test's cache flush."""
    yield
    idempotency.idempotency_clear()


def run(command: str, *args: str) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def conversation(
    phone: str, *, name: str = PATIENT_NAME, days_ago: float = 0, messages: int = 2
) -> ConversationSession:
    """A session with messages, its cache key and a REST idempotency result, as the bot leaves them."""
    session = session_manager.get_or_start(phone=phone)
    when = timezone.now() - dt.timedelta(days=days_ago)
    session.patient_name = name
    session.last_activity = when
    session_manager.save(session=session)
    for n in range(messages):
        session.messages.create(message_type="user", content=f"mensagem {n}", timestamp=when)
    idempotency.idempotent_run(key=f"k-{phone}", payload={"text": "oi"}, phone=phone, run=lambda: {"reply": "Olá"})
    return session


def appointment(phone: str, name: str = PATIENT_NAME, hour: int = 9) -> Agendamento:
    medico = Medico.objects.order_by("pk").first()
    return Agendamento.objects.create(
        medico=medico,
        especialidade=medico.especialidades.first(),
        paciente_nome=name,
        paciente_telefone=phone,
        data=timezone.localdate() + dt.timedelta(days=3),
        hora=dt.time(hour, 0),
    )


# --- purge_conversations ------------------------------------------------------------------------------------
def test_purge_deletes_old_messages_and_idle_sessions_with_their_cache_keys(clinic, phone):
    old = conversation(phone, days_ago=100)
    recent = conversation(OTHER_PHONE, days_ago=1)
    recent.messages.create(message_type="user", content="antiga", timestamp=timezone.now() - dt.timedelta(days=90))
    kept = appointment(phone)
    before = model_to_dict(kept)

    text = run("purge_conversations", "--older-than-days", "30", "--yes")

    assert not ConversationSession.objects.filter(pk=old.pk).exists()
    assert not ConversationMessage.objects.filter(session_id=old.pk).exists()
    assert caches["default"].get(session_key(phone)) is None
    assert list(recent.messages.values_list("content", flat=True)) == ["mensagem 0", "mensagem 1"]
    assert caches["default"].get(session_key(OTHER_PHONE)) is not None
    assert model_to_dict(Agendamento.objects.get(pk=kept.pk)) == before  # the clinic's record, untouched
    assert "Agendamentos mantidos" in text


def test_purge_keeps_a_session_whose_last_activity_is_old_but_has_recent_messages(phone):
    session = conversation(phone, days_ago=100)
    session.messages.create(message_type="user", content="nova", timestamp=timezone.now())
    run("purge_conversations", "--older-than-days", "30", "--yes")
    assert list(session.messages.values_list("content", flat=True)) == ["nova"]


def test_purge_without_yes_only_counts(phone):
    conversation(phone, days_ago=100, messages=3)
    result = json.loads(run("purge_conversations", "--older-than-days", "30", "--json"))
    assert result["dry_run"] is True and result["messages"] == 3 and result["sessions"] == 1
    assert ConversationMessage.objects.count() == 3 and ConversationSession.objects.count() == 1
    assert caches["default"].get(session_key(phone)) is not None


def test_purge_reports_counts_as_json(phone):
    conversation(phone, days_ago=100, messages=3)
    conversation(OTHER_PHONE, days_ago=100, messages=1)
    result = json.loads(run("purge_conversations", "--older-than-days", "30", "--yes", "--json"))
    assert (result["messages"], result["sessions"], result["cache_keys"]) == (4, 2, 2)


def test_purge_refuses_zero_days():
    with pytest.raises(CommandError) as raised:
        run("purge_conversations", "--older-than-days", "0", "--yes")
    assert raised.value.returncode == 2


# --- forget_patient -----------------------------------------------------------------------------------------
def test_forget_erases_sessions_messages_and_cache_keys_and_anonymises_appointments(clinic, phone):
    conversation(phone)
    conversation(OTHER_PHONE, name="João Lima")
    mine, theirs = appointment(phone), appointment(OTHER_PHONE, "João Lima", hour=10)

    run("forget_patient", f"+{phone[:2]} ({phone[2:4]}) {phone[4:9]}-{phone[9:]}", "--yes")

    assert not ConversationSession.objects.filter(phone_number=phone).exists()
    assert not ConversationMessage.objects.filter(session__phone_number=phone).exists()
    assert caches["default"].get(session_key(phone)) is None
    leftover = [k.name for k in cache_inspect.cache_key_list(limit=None) if phone in k.name]
    assert leftover == []
    assert cache_inspect.cache_clear_phones(phones={phone}, dry_run=True) == []
    anonymised = Agendamento.objects.get(pk=mine.pk)  # the row stays, the person is gone
    assert anonymised.paciente_nome != PATIENT_NAME and phone not in anonymised.paciente_telefone
    assert not Agendamento.objects.filter(paciente_telefone=phone).exists()
    # Someone else's data is untouched.
    assert ConversationSession.objects.get(phone_number=OTHER_PHONE).messages.count() == 2
    assert Agendamento.objects.get(pk=theirs.pk).paciente_nome == "João Lima"
    assert caches["default"].get(session_key(OTHER_PHONE)) is not None
    assert cache_inspect.cache_clear_phones(phones={OTHER_PHONE}, families=("idempotency",), dry_run=True) != []


@pytest.mark.parametrize(
    "erase",
    [
        lambda phone: privacy.patient_forget(phone=phone).cache_keys,  # forget_patient
        lambda phone: cache_inspect.cache_clear(phone=phone).keys,  # cache clear --phone, /admin/cache/
    ],
    ids=["forget_patient", "cache_clear_phone"],
)
def test_erasing_a_phone_also_erases_its_results_kept_in_process_memory_during_a_redis_outage(
    erase, clinic, phone, caplog
):
    def answer(p: str, reply: str) -> idempotency.IdempotentResult:
        return idempotency.idempotent_run(key=f"k-{p}", payload={"text": "oi"}, phone=p, run=lambda: {"reply": reply})

    lenient = {**REDIS_DOWN, "OPTIONS": {**REDIS_DOWN["OPTIONS"], "IGNORE_EXCEPTIONS": True}}
    with override_settings(CACHES={"default": lenient, "strict": REDIS_DOWN}):
        answer(phone, "Olá")
        answer(OTHER_PHONE, "Olá")
    assert "in-process memory" in caplog.text  # both results live only in this process's fallback

    erased = erase(phone)  # once Redis is back

    assert idempotency.cache_key(f"k-{phone}") in erased
    assert answer(phone, "de novo").body == {"reply": "de novo"}  # nothing left to replay
    theirs = answer(OTHER_PHONE, "de novo")
    assert theirs.replayed and theirs.body == {"reply": "Olá"}


def test_forget_finds_a_patient_stored_without_the_ninth_digit(clinic):
    stored = "551188887777"  # wa_id without the 9 that the patient types
    conversation(stored)
    appointment(stored)
    run("forget_patient", "5511988887777", "--yes")
    assert not ConversationSession.objects.filter(phone_number=stored).exists()
    assert not Agendamento.objects.filter(paciente_telefone=stored).exists()
    assert caches["default"].get(session_key(stored)) is None


def test_phone_variants_cover_both_forms_of_a_brazilian_mobile_only():
    assert phone_variants(phone="+55 11 98888-7777") == ["5511988887777", "551188887777"]
    assert phone_variants(phone="551188887777") == ["551188887777", "5511988887777"]
    assert phone_variants(phone="551133334444") == ["551133334444"]  # a landline has no ninth digit


def test_forget_without_yes_only_says_what_it_would_erase(clinic, phone):
    conversation(phone)
    appointment(phone)
    text = run("forget_patient", phone)
    assert "apagaria 1 sessão(ões), 2 mensagem(ns)" in text and "anonimizaria 1 agendamento(s)" in text
    assert phone not in text
    assert ConversationSession.objects.filter(phone_number=phone).exists()
    assert Agendamento.objects.filter(paciente_telefone=phone).exists()
    assert caches["default"].get(session_key(phone)) is not None


def test_forget_of_an_unknown_phone_exits_with_one(phone):
    with pytest.raises(CommandError) as raised:
        run("forget_patient", phone, "--yes")
    assert raised.value.returncode == 1


def test_forget_of_something_that_is_not_a_phone_is_a_usage_error():
    with pytest.raises(CommandError) as raised:
        run("forget_patient", "abc123", "--yes")
    assert raised.value.returncode == 2


@pytest.mark.skipif(cache_inspect.cache_is_process_local() is False, reason="LocMem behaviour")
def test_forget_on_locmem_warns_that_the_servers_copy_expires_on_its_own(phone):
    conversation(phone)
    assert cache_inspect.PROCESS_LOCAL_ERASE_NOTE in run("forget_patient", phone, "--yes")
