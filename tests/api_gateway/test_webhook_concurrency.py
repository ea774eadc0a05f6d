"""Meta delivers at least once and in parallel: the same message N times at once, or two messages of one patient
racing. Real threads, real commits, the real turn and sender against the fake Graph API.

Like Meta, a delivering thread retries until it gets a 200 (a 503 means "not stored, send again"). On the SQLite
stack the shared in-memory test database refuses concurrent writers outright ("table is locked"), so some
deliveries are refused and retried, and a turn may be left for the sweeper; the invariants checked are the same
on both stacks: one stored message, one turn, one reply, nothing lost.
"""

import datetime as dt
import threading
import time

import pytest
from django.db import OperationalError, connections
from django.test import Client
from django.utils import timezone

from api_gateway.models import ConversationMessage, ConversationSession
from api_gateway.services.inbound import inbound_sweep
from api_gateway.services.session_cache import session_manager
from tests.concurrency import at_once
from tests.fakes import graph_server
from tests.fakes.graph_server import load_payload, post_webhook, webhook_body

celery_inline = graph_server.celery_inline
fake_graph = graph_server.fake_graph

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_inline")]

THREADS = 8


def _deliver(body: bytes) -> int:
    """Posts like Meta: again after any non-200 (bounded here; Meta keeps going for days)."""
    for _ in range(50):
        status = post_webhook(Client(), body).status_code
        if status == 200:
            return status
        time.sleep(0.05)
    return status


def _let_the_sweeper_finish() -> None:
    """What the periodic sweeper does for turns a busy database left behind (nothing to do on PostgreSQL)."""
    inbound_sweep(now=timezone.now() + dt.timedelta(hours=1))


def test_same_message_posted_concurrently_is_stored_once_turned_once_and_answered_once(clinic, fake_graph):
    body = webhook_body(load_payload("text", now=time.time()))

    results = at_once(THREADS, lambda i: _deliver(body))
    _let_the_sweeper_finish()

    assert results == [200] * THREADS
    assert ConversationMessage.objects.filter(message_type="user").count() == 1
    assert ConversationMessage.objects.filter(message_type="bot").count() == 1
    assert len(fake_graph.sends) == 1
    inbound = ConversationMessage.objects.get(message_type="user")
    assert inbound.processing_status == "processed"


def _two_messages(now: float) -> list[bytes]:
    bodies = []
    for i, text in enumerate(["Quero marcar uma consulta", "Cardiologia"]):
        payload = load_payload("text", now=now + i)
        message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
        message["id"], message["text"]["body"] = f"wamid.RACE{i}", text
        bodies.append(webhook_body(payload))
    return bodies


def _assert_both_answered_in_order() -> None:
    inbound = list(ConversationMessage.objects.filter(message_type="user").order_by("processed_at", "pk"))
    assert [m.whatsapp_message_id for m in inbound] == ["wamid.RACE0", "wamid.RACE1"]
    assert all(m.processing_status == "processed" for m in inbound)
    bots = list(ConversationMessage.objects.filter(message_type="bot").order_by("pk"))
    assert [b.reply_to.whatsapp_message_id for b in bots] == ["wamid.RACE0", "wamid.RACE1"]


def test_two_messages_of_one_patient_posted_concurrently_are_both_processed_without_lost_state(clinic, fake_graph):
    bodies = _two_messages(time.time())

    results = at_once(2, lambda i: _deliver(bodies[i]))
    _let_the_sweeper_finish()

    assert results == [200, 200]
    assert ConversationMessage.objects.filter(message_type="user", processing_status="processed").count() == 2
    assert ConversationMessage.objects.filter(message_type="bot").count() == 2
    assert len(fake_graph.sends) == 2
    session = ConversationSession.objects.get()
    assert session.version >= 2  # both turns were written on top of each other, none lost
    assert session.current_state != "idle"


def test_messages_that_arrive_out_of_order_during_a_turn_run_in_whatsapp_timestamp_order(clinic, fake_graph, phone):
    earlier, later = _two_messages(time.time())
    stored = ConversationMessage.objects.filter(message_type="user")

    with session_manager.lock(phone):  # a turn of this patient is running
        threads = [threading.Thread(target=_deliver_and_close, args=(body,)) for body in (later, earlier)]
        threads[0].start()
        _wait_until(lambda: stored.count() == 1)
        threads[1].start()
        _wait_until(lambda: stored.count() == 2)
    for thread in threads:
        thread.join(timeout=60)
    _let_the_sweeper_finish()

    _assert_both_answered_in_order()
    assert [s.wamid for s in fake_graph.sends] == list(
        ConversationMessage.objects.filter(message_type="bot")
        .order_by("pk")
        .values_list("whatsapp_message_id", flat=True)
    )


def _deliver_and_close(body: bytes) -> None:
    try:
        _deliver(body)
    finally:
        connections.close_all()


def _wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except OperationalError:  # SQLite's shared in-memory test database: a writer holds the table
            pass
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_status_callbacks_racing_each_other_never_move_a_message_backwards(db, phone):
    session = ConversationSession.objects.create(phone_number=phone)
    reply = ConversationMessage.objects.create(
        session=session, message_type="bot", content="Olá", whatsapp_message_id="wamid.OUT0001", delivery_status="sent"
    )
    order = ["read", "delivered", "sent", "delivered", "read", "sent"]
    bodies = [webhook_body(load_payload(f"status_{s}", now=time.time())) for s in order]

    results = at_once(len(bodies), lambda i: _deliver(bodies[i]))

    assert results == [200] * len(bodies)
    reply.refresh_from_db()
    assert reply.delivery_status == "read"
