"""A per-process circuit breaker for a Redis server that stops answering.

A Redis that is down refuses connections at once, and every caller already degrades (the lenient cache alias
falls back to the database, the strict one raises to a caller that decides). A Redis that hangs (a stopped
process, a lost network path, a full machine) accepts the connection and then says nothing: every call waits for
the socket timeout, and a webhook that makes four cache calls waits four times. So when calls to a server time
out twice in a row (no answer in between, from any thread of this process), the breaker for that server opens:
for REDIS_BREAKER_SECONDS every call to it in this process fails at once with `CircuitOpen` (a redis
`ConnectionError`, so it takes exactly the path of a refused connection). After the window the next call tries
again (half-open): an answer closes the breaker, a single timeout opens it for another window. Two timeouts, not
one, so that one slow moment of a healthy Redis (a fork for a snapshot, a network hiccup) does not cost a
window of degraded mode.

Only timeouts open it. A refused or reset connection is already fast, and redis-py raises ConnectionError for
ordinary things too (a server closing an idle connection), which must not turn into seconds of degraded mode.

It sits in the connection class (`connection_class_for(url)`; the cache aliases get it through
`BreakerConnectionFactory`), so everything that talks to Redis through our pools shares it: both cache aliases,
the locks and scripts taken from them, and the broker publish (core.broker). Celery's own consumer in the worker
keeps kombu's connections. State is per process and per server (host and port, or socket path), not per database
number.
"""

import logging
import threading
import time

import redis
from django_redis.pool import ConnectionFactory
from redis.connection import Connection, SSLConnection, UnixDomainSocketConnection

from core.metrics import REDIS_BREAKER_TRIPS

logger = logging.getLogger(__name__)

TIMEOUTS_TO_OPEN = 2

# server -> time.monotonic() until which calls fail fast. An entry stays after its window has passed, until an
# answer removes it: while it is there the breaker is half-open and one timeout reopens it.
_open_until: dict[str, float] = {}
_strikes: dict[str, int] = {}  # server -> timeouts in a row while closed
_lock = threading.Lock()


class CircuitOpen(redis.exceptions.ConnectionError):
    """Not attempted: this server timed out moments ago (see the module docstring)."""


def _window_seconds() -> float:
    from django.conf import settings

    return float(getattr(settings, "REDIS_BREAKER_SECONDS", 0.0))


def breaker_check(server: str) -> None:
    """Raise CircuitOpen while `server`'s breaker is open."""
    until = _open_until.get(server)
    if until is not None and time.monotonic() < until:
        raise CircuitOpen(f"Redis at {server} timed out recently; not tried for {until - time.monotonic():.1f} s")


def breaker_timeout(server: str) -> None:
    """A call to `server` timed out: the second in a row (or the first after a window) opens the breaker for
    REDIS_BREAKER_SECONDS. A window of 0 disables the breaker."""
    window = _window_seconds()
    if window <= 0:
        return
    now = time.monotonic()
    with _lock:
        half_open = server in _open_until
        strikes = _strikes.get(server, 0) + 1
        if not half_open and strikes < TIMEOUTS_TO_OPEN:
            _strikes[server] = strikes
            return
        _strikes.pop(server, None)
        was_open = _open_until.get(server, 0.0) > now
        _open_until[server] = now + window
    if not was_open:
        REDIS_BREAKER_TRIPS.labels(server).inc()
        logger.warning("Redis at %s did not answer in time: calls to it fail fast for %.1f s", server, window)


def breaker_answered(server: str) -> None:
    """`server` answered a call: forget its timeouts and close its breaker. Two dict lookups when all is well."""
    if server in _open_until or server in _strikes:
        with _lock:
            closed = _open_until.pop(server, None) is not None
            _strikes.pop(server, None)
        if closed:
            logger.warning("Redis at %s answers again", server)


def breaker_open(server: str) -> bool:
    return _open_until.get(server, 0.0) > time.monotonic()


def breaker_reset() -> None:
    """Close every breaker and forget every timeout (tests)."""
    with _lock:
        _open_until.clear()
        _strikes.clear()


def _count_timeout(server: str, exc: Exception) -> None:
    if not getattr(exc, "_breaker_counted", False):
        exc._breaker_counted = True
        breaker_timeout(server)


class _BreakerMixin:
    """Checks the breaker before connecting or sending; reports timeouts of a connect, send or read, and answers."""

    _breaker_name = ""

    def _breaker_server(self) -> str:
        if not self._breaker_name:
            self._breaker_name = getattr(self, "path", "") or f"{self.host}:{self.port}"
        return self._breaker_name

    def connect_check_health(self, *args, **kwargs):
        if self._sock:
            return
        server = self._breaker_server()
        breaker_check(server)
        try:
            return super().connect_check_health(*args, **kwargs)
        except redis.exceptions.TimeoutError as exc:
            _count_timeout(server, exc)  # the socket connect, or the handshake's read (counted once)
            raise

    def send_packed_command(self, command, check_health=True):
        server = self._breaker_server()
        breaker_check(server)
        try:
            return super().send_packed_command(command, check_health=check_health)
        except redis.exceptions.TimeoutError as exc:
            _count_timeout(server, exc)
            raise

    def read_response(self, *args, **kwargs):
        try:
            response = super().read_response(*args, **kwargs)
        except redis.exceptions.TimeoutError as exc:
            _count_timeout(self._breaker_server(), exc)
            raise
        except redis.exceptions.ResponseError:
            breaker_answered(self._breaker_server())  # an error reply is an answer
            raise
        breaker_answered(self._breaker_server())
        return response


class BreakerConnection(_BreakerMixin, Connection):
    pass


class BreakerSSLConnection(_BreakerMixin, SSLConnection):
    pass


class BreakerUnixDomainSocketConnection(_BreakerMixin, UnixDomainSocketConnection):
    pass


def connection_class_for(url: str) -> type[Connection] | type[UnixDomainSocketConnection]:
    """The breaker-aware connection class for a Redis URL (a connection_class passed to `from_url` replaces the
    one its scheme would choose, so the scheme decides here)."""
    if url.startswith("rediss://"):
        return BreakerSSLConnection
    if url.startswith("unix://"):
        return BreakerUnixDomainSocketConnection
    return BreakerConnection


class BreakerConnectionFactory(ConnectionFactory):
    """django-redis connection factory (cache OPTIONS "CONNECTION_FACTORY") whose pools use the breaker."""

    def make_connection_params(self, url: str) -> dict:
        return {**super().make_connection_params(url), "connection_class": connection_class_for(url)}
