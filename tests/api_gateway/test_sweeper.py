import datetime as dt
import time

import pytest
from django.core.management import call_command
from django.utils import timezone

from api_gateway.models import ConversationMessage
from api_gateway.services import texts as T
from api_gateway.services.inbound import inbound_process, inbound_sweep, webhook_ingest
from api_gateway.whatsapp import webhook_parse
from core import metrics
from tests.fakes import graph_server
from tests.fakes.graph_server import load_payload

fake_graph = graph_server.fake_graph
celery_inline = graph_server.celery_inline

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("celery_inline")]


def _lost(wamid: str = "wamid.LOST", *, minutes_ago: int, attempts: int = 0) -> ConversationMessage:
    """An accepted message whose task never ran (inside the test transaction on_commit does not fire)."""
    payload = load_payload("text", now=time.time() - minutes_ago * 60)
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = wamid
    webhook_ingest(parsed=webhook_parse(payload))
    ConversationMessage.objects.filter(whatsapp_message_id=wamid).update(
        created_at=timezone.now() - dt.timedelta(minutes=minutes_ago), attempts=attempts
    )
    return ConversationMessage.objects.get(whatsapp_message_id=wamid)


def _waited(message: ConversationMessage, *, hours: float) -> ConversationMessage:
    """The message was sent `hours` ago and accepted then, and nothing has processed it since (an outage)."""
    then = timezone.now() - dt.timedelta(hours=hours)
    ConversationMessage.objects.filter(pk=message.pk).update(timestamp=then, created_at=then)
    message.refresh_from_db()
    return message


def _sweeper(outcome: str) -> float:
    return metrics.SWEEPER.labels(outcome)._value.get()


def test_sweeper_recovers_a_message_whose_task_was_lost_and_answers_it_exactly_once(clinic, fake_graph, settings):
    settings.SWEEP_AFTER_MINUTES = 5
    message = _lost(minutes_ago=10)
    assert message.processing_status == "received"

    first = inbound_sweep()
    second = inbound_sweep()

    message.refresh_from_db()
    assert first.requeued == [message.pk] and second.requeued == []
    assert message.processing_status == "processed"
    assert ConversationMessage.objects.filter(message_type="bot", reply_to=message).count() == 1
    assert len(fake_graph.sends) == 1


def test_sweeper_leaves_recent_messages_to_their_task(clinic, settings):
    settings.SWEEP_AFTER_MINUTES = 5
    message = _lost(minutes_ago=1)

    result = inbound_sweep()

    message.refresh_from_db()
    assert result.requeued == [] and message.processing_status == "received"


def test_sweeper_fails_a_message_after_the_maximum_attempts_with_a_reason(clinic, fake_graph, settings):
    settings.SWEEP_MAX_ATTEMPTS = 3
    message = _lost(minutes_ago=30, attempts=3)
    failed_before = _sweeper("failed")

    result = inbound_sweep()

    message.refresh_from_db()
    assert result.failed == [message.pk]
    assert message.processing_status == "failed"
    assert message.last_error.startswith("gave up after 3 attempts")
    assert _sweeper("failed") - failed_before == 1
    # No turn ran, but the patient is not left in silence: one apology, sent once.
    apology = ConversationMessage.objects.get(message_type="bot")
    assert apology.reply_to_id == message.pk and apology.content == T.TURN_FAILED
    assert apology.delivery_status == "sent" and len(fake_graph.sends) == 1
    inbound_sweep()
    assert ConversationMessage.objects.filter(message_type="bot").count() == 1 and len(fake_graph.sends) == 1


def test_sweeper_resends_a_reply_stuck_pending_without_a_second_turn(clinic, fake_graph, phone):
    message = _lost(minutes_ago=10)
    from api_gateway.services import conversation

    conversation.turn_handle(phone=phone, text=message.content, inbound=message)  # the worker died before sending
    ConversationMessage.objects.filter(message_type="bot").update(created_at=timezone.now() - dt.timedelta(minutes=10))

    result = inbound_sweep()

    bot = ConversationMessage.objects.get(message_type="bot")
    assert result.resent == [bot.pk]
    assert bot.delivery_status == "sent"
    assert len(fake_graph.sends) == 1


def test_sweep_messages_command_runs_the_sweeper(clinic, capsys):
    message = _lost(minutes_ago=60)

    call_command("sweep_messages")

    message.refresh_from_db()
    assert message.processing_status == "processed"
    assert "re-enqueued 1, failed 0, replies re-sent 0, expired 0" in capsys.readouterr().out


def test_sweeper_expires_a_message_that_waited_past_whatsapps_window_instead_of_answering_it(
    clinic, fake_graph, settings
):
    settings.WHATSAPP_MAX_MESSAGE_AGE_HOURS = 24
    message = _waited(_lost(minutes_ago=10), hours=25)
    recent = _waited(_lost("wamid.RECENT", minutes_ago=10), hours=23)
    expired_before = _sweeper("expired")

    first = inbound_sweep()
    second = inbound_sweep()

    message.refresh_from_db()
    recent.refresh_from_db()
    assert first.expired == [message.pk] and first.requeued == [recent.pk]
    assert (message.processing_status, message.last_error) == ("ignored", "too old")
    assert recent.processing_status == "processed"  # still inside the window: answered
    assert second.expired == [] and second.requeued == []  # a dead broker no longer means re-enqueueing forever
    assert _sweeper("expired") - expired_before == 1
    assert list(ConversationMessage.objects.filter(message_type="bot").values_list("reply_to", flat=True)) == [
        recent.pk
    ]
    assert len(fake_graph.sends) == 1


def test_a_task_skips_messages_that_waited_past_the_window_and_answers_the_patients_newer_one(
    clinic, fake_graph, settings
):
    settings.WHATSAPP_MAX_MESSAGE_AGE_HOURS = 24
    stale = _waited(_lost("wamid.STALE", minutes_ago=10), hours=30)
    fresh = _lost("wamid.FRESH", minutes_ago=1)
    assert stale.session_id == fresh.session_id

    inbound_process(message_id=fresh.pk)  # processes every due message of the session up to this one, in order

    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert (stale.processing_status, stale.last_error) == ("ignored", "too old")
    assert fresh.processing_status == "processed"
    assert list(ConversationMessage.objects.filter(message_type="bot").values_list("reply_to", flat=True)) == [fresh.pk]
