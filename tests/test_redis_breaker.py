"""The Redis circuit breaker, through real redis-py and django-redis clients, against a server that accepts
connections and never answers (what a stopped or unreachable Redis looks like) and, where there is one, real Redis."""

import os
import socket
import threading
import time
from urllib.parse import urlparse

import pytest
import redis
from django.core.cache import caches
from prometheus_client import REGISTRY

from core import redis_breaker
from core.redis_breaker import (
    BreakerConnection,
    BreakerSSLConnection,
    BreakerUnixDomainSocketConnection,
    CircuitOpen,
    connection_class_for,
)

TIMEOUT = 0.2
WINDOW = 0.6


class SilentServer:
    """Accepts every connection and reads what it is sent, but never answers; with `answering` set it answers
    +OK to every command instead (enough for redis-py's handshake, SET and GET)."""

    def __init__(self):
        self.answering = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.received = 0
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self):
        while not self._stop:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn):
        pending = b""
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            self.received += len(data)
            pending += data
            *lines, pending = pending.split(b"\r\n")
            commands = sum(line.startswith(b"*") for line in lines)  # a RESP command starts with *<argc>
            if self.answering and commands:
                conn.sendall(b"+OK\r\n" * commands)

    def close(self):
        self._stop = True
        self.listener.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def silent():
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def breaker(settings):
    settings.REDIS_BREAKER_SECONDS = WINDOW
    redis_breaker.breaker_reset()
    yield
    redis_breaker.breaker_reset()


def _client(port: int) -> redis.Redis:
    return redis.Redis.from_url(
        f"redis://127.0.0.1:{port}/0",
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
        connection_class=BreakerConnection,
        protocol=2,  # RESP2: the fake's +OK then also answers the handshake
    )


def _trips(server: str) -> float:
    return REGISTRY.get_sample_value("redis_breaker_trips_total", {"server": server}) or 0.0


def test_two_timeouts_in_a_row_open_the_breaker_and_the_next_calls_are_not_attempted(silent, caplog):
    client = _client(silent.port)
    with pytest.raises(redis.exceptions.TimeoutError):
        client.get("k")
    assert not redis_breaker.breaker_open(silent.server)  # one slow moment is not an outage
    with pytest.raises(redis.exceptions.TimeoutError):
        client.get("k")
    assert redis_breaker.breaker_open(silent.server)
    sent, connections = silent.received, len(silent.connections)
    assert sent > 0
    for _ in range(3):
        with pytest.raises(CircuitOpen):
            client.set("k", "v")
    time.sleep(0.05)
    assert silent.received == sent  # nothing more was sent ...
    assert len(silent.connections) == connections  # ... nor connected
    assert _trips(silent.server) == 1
    assert [r.getMessage() for r in caplog.records if r.name == "core.redis_breaker"] == [
        f"Redis at {silent.server} did not answer in time: calls to it fail fast for {WINDOW:.1f} s"
    ]


def test_an_answer_between_two_timeouts_keeps_the_breaker_closed(silent):
    client = _client(silent.port)
    with pytest.raises(redis.exceptions.TimeoutError):
        client.get("k")
    silent.answering = True
    assert client.set("k", "v")
    silent.answering = False
    with pytest.raises(redis.exceptions.TimeoutError):
        client.get("k")
    assert not redis_breaker.breaker_open(silent.server)
    assert _trips(silent.server) == 0


def _open(client: redis.Redis) -> None:
    for _ in range(redis_breaker.TIMEOUTS_TO_OPEN):
        with pytest.raises(redis.exceptions.TimeoutError):
            client.get("k")


def test_after_the_window_one_timeout_reopens_it(silent):
    client = _client(silent.port)
    _open(client)
    time.sleep(WINDOW + 0.05)
    assert not redis_breaker.breaker_open(silent.server)
    sent = silent.received
    with pytest.raises(redis.exceptions.TimeoutError):
        client.get("k")
    assert silent.received > sent  # tried again
    assert redis_breaker.breaker_open(silent.server)  # half-open: one timeout was enough
    assert _trips(silent.server) == 2


def test_after_the_window_an_answer_closes_it(silent, caplog):
    client = _client(silent.port)
    _open(client)
    time.sleep(WINDOW + 0.05)
    silent.answering = True
    assert client.set("k", "v")
    assert "Redis at %s answers again" in [r.msg for r in caplog.records]
    silent.answering = False
    with pytest.raises(redis.exceptions.TimeoutError):  # closed again: two timeouts are needed once more
        client.get("k")
    assert not redis_breaker.breaker_open(silent.server)


def test_a_zero_window_disables_the_breaker(silent, settings):
    settings.REDIS_BREAKER_SECONDS = 0
    client = _client(silent.port)
    for _ in range(3):
        with pytest.raises(redis.exceptions.TimeoutError):
            client.get("k")
    assert not redis_breaker.breaker_open(silent.server)


def test_the_breaker_is_per_server(silent):
    other = SilentServer()
    try:
        _open(_client(silent.port))
        with pytest.raises(redis.exceptions.TimeoutError):  # attempted, not refused by the first one's breaker
            _client(other.port).get("k")
        assert other.received > 0
    finally:
        other.close()


def test_a_refused_connection_does_not_open_the_breaker():
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    with pytest.raises(redis.exceptions.ConnectionError) as refused:
        _client(port).get("k")
    assert not isinstance(refused.value, CircuitOpen)
    assert not redis_breaker.breaker_open(f"127.0.0.1:{port}")


def _cache_settings(port: int, *, ignore_exceptions: bool) -> dict:
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{port}/0",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "CONNECTION_FACTORY": "core.redis_breaker.BreakerConnectionFactory",
            "SOCKET_CONNECT_TIMEOUT": TIMEOUT,
            "SOCKET_TIMEOUT": TIMEOUT,
            "IGNORE_EXCEPTIONS": ignore_exceptions,
        },
    }


def test_cache_aliases_share_the_breaker_lenient_degrades_and_strict_raises(silent, settings):
    settings.CACHES = {
        **settings.CACHES,
        "silent_lenient": _cache_settings(silent.port, ignore_exceptions=True),
        "silent_strict": _cache_settings(silent.port, ignore_exceptions=False),
    }
    lenient, strict = caches["silent_lenient"], caches["silent_strict"]
    assert lenient.get("k", "fallback") == "fallback"  # timed out, swallowed
    with pytest.raises(redis.exceptions.TimeoutError):
        strict.get("k")  # the second timeout in a row, through the other alias (one pool per URL)
    sent = silent.received
    assert lenient.get("k", "fallback") == "fallback"  # not attempted
    with pytest.raises(CircuitOpen):  # django-redis re-raises the redis error itself when not ignoring
        strict.set("k", "v")
    assert silent.received == sent


def test_connection_class_follows_the_url_scheme():
    assert connection_class_for("redis://127.0.0.1:6379/0") is BreakerConnection
    assert connection_class_for("rediss://cache.example:6380/0") is BreakerSSLConnection
    assert connection_class_for("unix:///run/redis.sock") is BreakerUnixDomainSocketConnection


@pytest.mark.redis
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
def test_the_configured_aliases_and_the_broker_use_the_breaker_and_recover_after_the_window():
    from core import broker

    url = urlparse(os.environ["REDIS_URL"])
    server = f"{url.hostname}:{url.port or 6379}"
    for alias in ("default", "strict"):
        assert caches[alias].client.get_client().connection_pool.connection_class is BreakerConnection
    if broker.short_path_available():
        assert broker._short_path().client.connection_pool.connection_class is BreakerConnection

    strict = caches["strict"]
    strict.set("breaker-probe", "1", timeout=30)
    for _ in range(redis_breaker.TIMEOUTS_TO_OPEN):
        redis_breaker.breaker_timeout(server)  # as if calls had just timed out
    with pytest.raises(CircuitOpen):
        strict.get("breaker-probe")
    assert caches["default"].get("breaker-probe", "fallback") == "fallback"
    time.sleep(WINDOW + 0.05)
    assert strict.get("breaker-probe") == "1"  # tried again, answered: closed
    assert not redis_breaker.breaker_open(server)
    strict.delete("breaker-probe")


def test_a_webhook_while_the_brokers_breaker_is_open_is_stored_for_the_sweeper_without_a_traceback(
    silent, client, clinic, caplog, django_capture_on_commit_callbacks
):
    from api_gateway.models import ConversationMessage
    from core import broker
    from core.celery import app
    from tests.fakes.graph_server import load_payload, post_webhook

    previous = app.conf.broker_url, app.conf.task_always_eager
    app.conf.broker_url, app.conf.task_always_eager = f"redis://127.0.0.1:{silent.port}/0", False
    broker.reset()
    try:
        for _ in range(redis_breaker.TIMEOUTS_TO_OPEN):
            redis_breaker.breaker_timeout(silent.server)  # as if the last publishes had timed out
        with django_capture_on_commit_callbacks(execute=True) as enqueued:  # the test's transaction holds them
            response = post_webhook(client, load_payload("text", now=time.time()))
    finally:
        app.conf.broker_url, app.conf.task_always_eager = previous
        broker.reset()

    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert len(enqueued) == 1
    stored = ConversationMessage.objects.get(message_type="user")
    assert stored.processing_status == ConversationMessage.Processing.RECEIVED  # the sweeper's to re-enqueue
    assert silent.received == 0  # the hung broker was not even tried
    assert f"could not enqueue inbound {stored.pk} (Redis breaker open); the sweeper will pick it up" in [
        r.getMessage() for r in caplog.records
    ]
    assert not [r for r in caplog.records if r.exc_info]
