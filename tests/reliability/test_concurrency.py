"""Concurrency against real processes: a gunicorn live server on PostgreSQL + a dedicated Redis, a real Celery
worker, and threads in this process racing for the same slots."""

import datetime as dt
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from django.utils import timezone

from api_gateway.models import ConversationMessage, ConversationSession
from api_gateway.services import texts as T
from api_gateway.services.conversation import turn_handle
from rag_agent import selectors
from rag_agent import services as clinic_services
from rag_agent.models import Agendamento, Especialidade, Medico
from tests.fakes.graph_server import signature_header
from tests.reliability.conftest import APP_SECRET, ROOT, patient_phone, text_message, wait_for

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

TZ = timezone.get_default_timezone()


def _blast(url: str, body: bytes, *, processes: int, threads: int, tmp_path) -> list[tuple[int, float]]:
    """The same signed body from several OS processes at one instant."""
    body_file = tmp_path / "body.json"
    body_file.write_bytes(body)
    start_at = time.time() + 2.0
    args = [url, str(body_file), signature_header(body, APP_SECRET), str(threads), str(start_at)]
    procs = [
        subprocess.Popen([sys.executable, "-m", "tests.reliability.blast", *args], cwd=ROOT, stdout=subprocess.PIPE)
        for _ in range(processes)
    ]
    results = []
    import json

    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        results.extend(tuple(r) for r in json.loads(out))
    return results


def test_fifty_copies_of_one_message_from_five_processes_give_one_row_one_turn_one_reply(
    stack, clinic, figures, tmp_path
):
    stack.env_overrides["CELERY_TASK_ALWAYS_EAGER"] = "0"
    stack.start_worker()
    stack.start_web()
    phone = patient_phone(1)
    body = text_message(phone=phone, wamid="wamid.SAME0001", text="qual o endereço?", timestamp=time.time())

    results = _blast(f"{stack.base_url}/webhook/whatsapp/", body, processes=5, threads=10, tmp_path=tmp_path)
    wait_for(lambda: len(stack.graph.sends) >= 1, timeout=30, what="the reply")
    time.sleep(2.0)  # room for a second (wrong) reply to show up

    statuses = [status for status, _ in results]
    inbound = ConversationMessage.objects.filter(message_type="user")
    figures["concurrency_same_message_x50"] = {
        "posted": len(results),
        "http_200": statuses.count(200),
        "max_latency_s": max(latency for _, latency in results),
        "stored": inbound.count(),
        "bot_messages": ConversationMessage.objects.filter(message_type="bot").count(),
        "replies_at_graph": len(stack.graph.sends),
    }
    assert statuses == [200] * 50
    assert inbound.count() == 1
    assert inbound.get().processing_status == "processed"
    assert ConversationMessage.objects.filter(message_type="bot").count() == 1
    assert len(stack.graph.sends) == 1
    assert stack.graph.sends[0].body["to"] == phone


QUESTIONS = ["qual o endereço?", "aceita Unimed?", "qual o horário de funcionamento?", "quanto custa o hemograma?"]


def test_twenty_messages_of_one_patient_posted_at_once_are_all_answered_in_timestamp_order(stack, clinic, figures):
    # Celery eager: each request runs the turns inline, racing for the patient's lock. 24 threads: all 20 requests
    # are inside the server at once.
    # With Celery eager a request keeps its pooled database connection while it waits for the lock: the pool must
    # be as large as the thread count, or requests queue for a connection (DB_POOL_TIMEOUT_SECONDS) first.
    # gunicorn does not balance accepted connections between workers: each must be able to hold all 20 alone.
    stack.env_overrides["DB_POOL_MAX_SIZE"] = "22"
    stack.start_web(workers=2, threads=20)
    phone = patient_phone(2)
    t0 = time.time() - 60
    bodies = [
        text_message(phone=phone, wamid=f"wamid.ORDER{i:03d}", text=f"{QUESTIONS[i % 4]} ({i})", timestamp=t0 + i)
        for i in range(20)
    ]
    random.Random(7).shuffle(bodies)  # arrival order is not WhatsApp order

    # A turn of this patient is running (we hold the same Redis lock the server takes) while all 20 arrive: once it
    # ends, whatever is stored must run in WhatsApp timestamp order, whichever request wins the lock.
    running_turn = stack.redis.client().lock(f"clinicbot:1:lock:session:{phone}", timeout=60)
    assert running_turn.acquire(blocking=False)
    with ThreadPoolExecutor(max_workers=20) as pool:
        pending = pool.map(stack.post_webhook, bodies)
        stored = ConversationMessage.objects.filter(message_type="user")
        wait_for(lambda: stored.count() == 20, timeout=30, what="twenty stored messages")
        running_turn.release()
        results = list(pending)
    wait_for(lambda: len(stack.graph.sends) >= 20, timeout=60, what="twenty replies")
    time.sleep(1.0)

    inbound = list(ConversationMessage.objects.filter(message_type="user").order_by("timestamp", "pk"))
    bots = list(ConversationMessage.objects.filter(message_type="bot").select_related("reply_to").order_by("pk"))
    session = ConversationSession.objects.get(phone_number=phone)
    figures["concurrency_one_patient_x20"] = {
        "posted": 20,
        "http_200": [s for s, _ in results].count(200),
        "max_latency_s": round(max(latency for _, latency in results), 3),
        "stored": len(inbound),
        "processed": sum(m.processing_status == "processed" for m in inbound),
        "replies_at_graph": len(stack.graph.sends),
        "session_version": session.version,
    }
    assert [s for s, _ in results] == [200] * 20
    assert [m.processing_status for m in inbound] == ["processed"] * 20
    # Turns ran in WhatsApp timestamp order: the n-th reply answers the n-th message, and processed_at grows.
    assert [b.reply_to.whatsapp_message_id for b in bots] == [m.whatsapp_message_id for m in inbound]
    assert [m.processed_at for m in inbound] == sorted(m.processed_at for m in inbound)
    assert len(stack.graph.sends) == 20
    assert [s.wamid for s in stack.graph.sends] == [b.whatsapp_message_id for b in bots]
    # No lost update: every turn wrote on top of the previous one, and the history ends with the last message.
    assert session.version >= 20
    user_history = [m["text"] for m in session.recent_messages if m["role"] == "user"]
    assert user_history[-1] == inbound[-1].content


# --- bookings: 200 patients, limited slots ------------------------------------------------------------------------
def _next_weekday(weekday: int, hour: int) -> dt.datetime:
    today = timezone.localdate()
    day = today + dt.timedelta(days=(weekday - today.weekday()) % 7 or 7)
    return dt.datetime.combine(day, dt.time(hour, 0), tzinfo=TZ)


def test_two_hundred_patients_racing_for_twenty_slots_never_double_book_and_losers_get_another_slot(clinic, figures):
    doctor = Medico.objects.get(nome="Dr. Gustavo Pereira")
    specialty = Especialidade.objects.get(nome="Ortopedia")
    contested = selectors.slot_list_free(medico_id=doctor.pk, start=timezone.localdate(), days=30, limit=20)
    assert len(contested) == 20
    barrier = threading.Barrier(40)
    outcomes: dict[str, str] = {}
    offers: dict[str, list] = {}
    guard = threading.Lock()

    def patient(n: int) -> None:
        phone = patient_phone(1000 + n)
        when = random.Random(n).choice(contested)
        try:
            clinic_services.appointment_book(
                medico_id=doctor.pk, especialidade_id=specialty.pk, convenio_id=None,
                paciente_nome=f"Paciente {n}", paciente_telefone=phone, data=when.date(), hora=when.time(),
            )  # fmt: skip
            outcome, offered = "booked", []
        except clinic_services.SlotUnavailable:
            outcome = "offered"
            offered = selectors.slots_nearest(medico_id=doctor.pk, wanted=when, limit=3)
        with guard:
            outcomes[phone], offers[phone] = outcome, offered

    def worker(indexes: list[int]) -> None:
        try:
            barrier.wait(timeout=30)
            for n in indexes:
                patient(n)
                # Back to the pool after each patient, as a request would: 40 threads share DB_POOL_MAX_SIZE (10)
                # connections, and a thread holding one through all its patients starved the others past the pool
                # timeout on a loaded machine (PoolTimeout, seen once in CI).
                connections.close_all()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(list(range(i, 200, 40)),)) for i in range(40)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    elapsed = time.perf_counter() - started

    booked = list(Agendamento.objects.filter(medico=doctor).values_list("data", "hora", "paciente_telefone"))
    slots = [(d, h) for d, h, _ in booked]
    losers = [phone for phone, outcome in outcomes.items() if outcome == "offered"]
    figures["bookings_200_patients_20_slots"] = {
        "patients": len(outcomes),
        "booked": len(booked),
        "refused_and_offered_another_slot": len(losers),
        "double_bookings": len(slots) - len(set(slots)),
        "seconds": round(elapsed, 2),
    }
    assert len(outcomes) == 200
    assert len(slots) == len(set(slots))  # the partial unique constraint held
    assert list(outcomes.values()).count("booked") == len(booked)
    assert {dt.datetime.combine(d, h, tzinfo=TZ) for d, h in slots} <= set(contested)
    assert len(booked) == len({random.Random(n).choice(contested) for n in range(200)})
    for phone in losers:
        assert offers[phone], f"{phone[-4:]} got no alternative"
        refused = random.Random(int(phone[-4:]) - 1000).choice(contested)
        # Free when offered (other racers may take them a moment later: the next confirmation re-checks).
        assert refused not in offers[phone]


NAMES = ["João Silva", "Maria Oliveira", "Pedro Santos", "Ana Costa", "Lucas Pereira", "Julia Rocha",
         "Rafael Lima", "Carla Souza", "Bruno Alves", "Paula Reis"]  # fmt: skip


def test_ten_patients_confirming_the_same_slot_in_the_conversation_book_it_once(clinic, figures):
    ref = _next_weekday(0, 10)  # a Monday, 10:00
    phones = [patient_phone(3000 + n) for n in range(10)]
    for n, phone in enumerate(phones):
        turn_handle(
            phone=phone,
            text=f"quero marcar cardiologia com a dra. Ana na quarta às 14h particular, meu nome é {NAMES[n]}",
            now=ref,
        )
    assert all(ConversationSession.objects.get(phone_number=p).current_state == "confirming" for p in phones)
    barrier = threading.Barrier(len(phones))

    def confirm(phone: str):
        try:
            barrier.wait(timeout=10)
            return turn_handle(phone=phone, text="sim", now=ref + dt.timedelta(minutes=1))
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(phones)) as pool:
        results = list(pool.map(confirm, phones))

    wednesday_14h = Agendamento.objects.filter(medico__nome="Dra. Ana Souza", hora=dt.time(14, 0))
    winners = [r for r in results if "Consulta agendada" in r.reply.as_text()]
    losers = [r for r in results if r not in winners]
    figures["conversation_10_confirm_same_slot"] = {
        "patients": 10,
        "booked": wednesday_14h.count(),
        "told_taken_and_offered_other_slots": sum(bool(r.reply.options) for r in losers),
    }
    assert wednesday_14h.count() == 1
    assert len(winners) == 1
    for result in losers:
        assert "não está disponível" in result.reply.as_text()
        assert result.reply.options, "a patient who lost the slot must be offered others"
        assert all(o.id.startswith("slot:") and not o.id.endswith("T14:00") for o in result.reply.options[:1])
    assert T.SLOT_TAKEN.split("(")[0] in losers[0].reply.as_text()


def test_one_phone_booking_many_slots_at_once_stays_within_the_open_appointment_cap(clinic, settings, figures):
    settings.PATIENT_MAX_OPEN_APPOINTMENTS = 3
    doctor = Medico.objects.get(nome="Dr. Gustavo Pereira")
    specialty = Especialidade.objects.get(nome="Ortopedia")
    slots = selectors.slot_list_free(medico_id=doctor.pk, start=timezone.localdate(), days=30, limit=12)
    phone = patient_phone(4000)
    barrier = threading.Barrier(len(slots))

    def book(when: dt.datetime) -> str:
        try:
            barrier.wait(timeout=10)
            clinic_services.appointment_book(
                medico_id=doctor.pk, especialidade_id=specialty.pk, convenio_id=None, paciente_nome="Abusador",
                paciente_telefone=phone, data=when.date(), hora=when.time(),
            )  # fmt: skip
            return "booked"
        except clinic_services.TooManyOpenAppointments:
            return "capped"
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(slots)) as pool:
        outcomes = list(pool.map(book, slots))
    open_count = Agendamento.objects.filter(paciente_telefone=phone).count()
    figures["open_appointment_cap_race_12_at_once"] = {"cap": 3, "booked": open_count}
    assert outcomes.count("booked") == open_count
    assert open_count <= 3
