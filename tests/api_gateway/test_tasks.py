import time

import pytest

from api_gateway.models import ConversationMessage
from api_gateway.services import conversation
from api_gateway.services.inbound import webhook_ingest
from api_gateway.services.session_cache import SessionLockTimeout
from api_gateway.tasks import process_inbound
from api_gateway.whatsapp import webhook_parse
from tests.fakes import graph_server
from tests.fakes.graph_server import graph_error, graph_ok, load_payload

fake_graph = graph_server.fake_graph

pytestmark = pytest.mark.django_db


def _stored(wamid: str, text: str, *, at: float) -> ConversationMessage:
    """Records an inbound message exactly as the webhook does. Inside the test transaction on_commit never
    fires, so no task is enqueued: the state a lost task leaves behind."""
    payload = load_payload("text", now=at)
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message["id"], message["text"]["body"] = wamid, text
    webhook_ingest(parsed=webhook_parse(payload))
    return ConversationMessage.objects.get(whatsapp_message_id=wamid)


def _bots():
    return ConversationMessage.objects.filter(message_type="bot").order_by("pk")


def test_the_task_processes_earlier_messages_of_the_patient_first_whatever_their_arrival(clinic, fake_graph):
    now = time.time()
    later = _stored("wamid.B", "Cardiologia", at=now + 5)
    earlier = _stored("wamid.A", "Quero marcar uma consulta", at=now)
    assert later.pk < earlier.pk

    process_inbound.apply(args=[later.pk])

    earlier.refresh_from_db()
    later.refresh_from_db()
    assert earlier.processing_status == later.processing_status == "processed"
    assert earlier.processed_at <= later.processed_at
    assert [b.reply_to_id for b in _bots()] == [earlier.pk, later.pk]
    assert [s.wamid for s in fake_graph.sends] == [b.whatsapp_message_id for b in _bots()]


def test_the_task_leaves_later_messages_to_their_own_task(clinic, fake_graph):
    now = time.time()
    earlier = _stored("wamid.A", "oi", at=now)
    later = _stored("wamid.B", "quero marcar", at=now + 5)

    process_inbound.apply(args=[earlier.pk])

    later.refresh_from_db()
    assert later.processing_status == "received"


def test_replaying_the_task_runs_no_second_turn_and_sends_nothing_again(clinic, fake_graph):
    inbound = _stored("wamid.A", "oi", at=time.time())
    process_inbound.apply(args=[inbound.pk])

    process_inbound.apply(args=[inbound.pk])
    process_inbound.apply(args=[inbound.pk])

    inbound.refresh_from_db()
    assert _bots().count() == 1
    assert len(fake_graph.sends) == 1
    assert inbound.attempts == 1
    assert inbound.replied_at is not None


def test_a_turn_that_committed_before_a_crash_gets_its_reply_sent_once_without_a_second_turn(clinic, fake_graph, phone):
    inbound = _stored("wamid.A", "oi", at=time.time())
    # The worker ran the turn (reply stored as pending) and died before sending.
    conversation.turn_handle(phone=phone, text=inbound.content, inbound=inbound)
    assert _bots().get().delivery_status == "pending"

    process_inbound.apply(args=[inbound.pk])

    bot = _bots().get()
    assert bot.delivery_status == "sent"
    assert len(fake_graph.sends) == 1
    inbound.refresh_from_db()
    assert inbound.replied_at is not None


def test_mark_read_failing_does_not_block_the_reply(clinic, fake_graph):
    fake_graph.responder = lambda request: graph_error(131000, status=500) if request.body.get("status") else graph_ok()
    inbound = _stored("wamid.A", "oi", at=time.time())

    process_inbound.apply(args=[inbound.pk])

    assert len(fake_graph.reads) == 1
    assert _bots().get().delivery_status == "sent"


def test_without_an_access_token_the_reply_is_stored_as_not_sent(clinic):
    inbound = _stored("wamid.A", "oi", at=time.time())

    process_inbound.apply(args=[inbound.pk])

    assert _bots().get().delivery_status == "not_sent"


def test_the_task_is_late_acked_rejected_on_worker_loss_and_retries_transient_errors_boundedly():
    assert process_inbound.acks_late is True
    assert process_inbound.reject_on_worker_lost is True
    assert SessionLockTimeout in process_inbound.autoretry_for
    assert 0 < process_inbound.max_retries <= 10
    assert process_inbound.retry_backoff
