"""core.broker: the short publish path must put on Redis what Celery's own producer would, and fail loudly.

A real worker consuming these messages (and restoring one after a worker crash) is covered end to end in
tests/reliability (test_concurrency, test_process_faults), which run gunicorn + a Celery worker on PostgreSQL + Redis.
"""

import base64
import json
import time

import pytest
import redis
from django.conf import settings

from api_gateway.models import ConversationMessage
from api_gateway.tasks import process_inbound
from core import broker
from core.celery import app
from core.logging import request_id_var
from tests.fakes.graph_server import load_payload, post_webhook

needs_redis = pytest.mark.skipif(not settings.REDIS_URL, reason="the short path exists only on a Redis broker")


@pytest.fixture
def published_for_real():
    """Tasks go to the broker (eager mode off) for the test's duration."""
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    broker.reset()
    yield
    app.conf.task_always_eager = previous
    broker.reset()


def _pop_newest(client: redis.Redis, queue: str) -> dict:
    raw = client.lpop(queue)  # kombu and the short path both LPUSH; the worker BRPOPs the other end
    assert raw is not None, "nothing was published"
    return json.loads(raw)


@needs_redis
def test_the_short_path_publishes_the_same_message_as_celerys_producer(published_for_real):
    assert broker.short_path_available()
    client = redis.Redis.from_url(app.conf.broker_url)
    queue = app.conf.task_default_queue

    process_inbound.apply_async((4242,))
    theirs = _pop_newest(client, queue)
    broker.task_publish(process_inbound, 4242)
    ours = _pop_newest(client, queue)

    assert ours.keys() == theirs.keys()
    assert ours["headers"].keys() == theirs["headers"].keys()
    assert ours["properties"].keys() == theirs["properties"].keys()
    assert (
        ours["properties"]["delivery_info"]
        == theirs["properties"]["delivery_info"]
        == {
            "exchange": "",
            "routing_key": queue,
        }
    )
    for name in ("task", "argsrepr", "kwargsrepr", "retries", "timelimit", "origin", "lang"):
        assert ours["headers"][name] == theirs["headers"][name], name
    assert ours["headers"]["id"] == ours["headers"]["root_id"] == ours["properties"]["correlation_id"]
    assert ours["headers"]["id"] != theirs["headers"]["id"]
    for name in ("content-type", "content-encoding"):
        assert ours[name] == theirs[name]
    assert ours["properties"]["body_encoding"] == theirs["properties"]["body_encoding"] == "base64"
    assert json.loads(base64.b64decode(ours["body"])) == json.loads(base64.b64decode(theirs["body"]))


@needs_redis
def test_a_published_message_is_decoded_by_kombu_into_the_task_call(published_for_real):
    """The consumer side: kombu's Redis channel turns the raw list item into a Message Celery executes."""
    broker.task_publish(process_inbound, 77)
    payload = _pop_newest(redis.Redis.from_url(app.conf.broker_url), app.conf.task_default_queue)
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        message = channel.Message(payload, channel=channel)  # what the worker builds from a list item
        args, kwargs, _embed = message.decode()
    assert message.headers["task"] == "api_gateway.tasks.process_inbound"
    assert (args, kwargs) == ([77], {})
    assert message.delivery_tag == payload["properties"]["delivery_tag"]


def test_eager_mode_goes_through_celery():
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    broker.reset()
    try:
        assert not broker.short_path_available()
    finally:
        app.conf.task_always_eager = previous
        broker.reset()


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_broker_still_acknowledges_and_keeps_the_message_for_the_sweeper(
    client, clinic, published_for_real, caplog
):
    previous = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens there: connection refused at once
    broker.reset()
    try:
        started = time.monotonic()
        response = post_webhook(client, load_payload("text", now=time.time()))  # autocommit: published at once
        elapsed = time.monotonic() - started
    finally:
        app.conf.broker_url = previous
        broker.reset()

    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert [r.getMessage() for r in caplog.records if r.exc_info] == [
        f"could not enqueue inbound {ConversationMessage.objects.get().pk}; the sweeper will pick it up"
    ]
    stored = ConversationMessage.objects.get(message_type="user")
    assert stored.processing_status == ConversationMessage.Processing.RECEIVED  # the sweeper's to re-enqueue
    assert elapsed < broker.PUBLISH_SOCKET_TIMEOUT_SECONDS * 3


@needs_redis
def test_the_request_id_of_the_enqueueing_request_travels_in_the_message(published_for_real):
    token = request_id_var.set("req-webhook-1")
    try:
        broker.task_publish(process_inbound, 5)
    finally:
        request_id_var.reset(token)
    message = _pop_newest(redis.Redis.from_url(app.conf.broker_url), app.conf.task_default_queue)
    assert message["headers"]["request_id"] == "req-webhook-1"


@app.task(name="tests.current_request_id")
def current_request_id() -> str:
    return request_id_var.get()


def test_a_task_logs_under_the_request_id_it_was_enqueued_with_or_its_own_id():
    assert request_id_var.get() == "-"  # as in a worker process between tasks

    assert current_request_id.apply(headers={"request_id": "req-webhook-2"}).result == "req-webhook-2"
    assert request_id_var.get() == "-"  # restored after the task
    untagged = current_request_id.apply(task_id="task-from-beat")
    assert untagged.result == "task-from-beat"

    token = request_id_var.set("req-inline")  # eager mode: the task runs inside the request
    try:
        assert current_request_id.apply(headers={"request_id": "other"}).result == "req-inline"
    finally:
        request_id_var.reset(token)
