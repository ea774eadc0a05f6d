"""SessionManager: conversation sessions, cache-aside for reads and write-through for writes.

- Key `gemini_session_{phone}` on the "default" cache (errors there are logged and swallowed, so a Redis outage
  degrades to the database). A hit costs zero database queries; a miss costs one read and refills the cache.
- The database is the source of truth. Every save is an UPDATE guarded by the row's `version` (optimistic
  check), then the cache is written; if that write fails the key is deleted, so the cache never holds a state
  the database does not have.
- Turns of one phone are serialised with `lock(phone)`: a Redis lock on the strict cache when Redis is
  configured, a process lock otherwise (the embedded default runs in one process; several processes need Redis).
"""

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

from django.conf import settings
from django.core.cache import caches
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from redis.exceptions import RedisError

from api_gateway.models import ConversationSession, ConversationState
from api_gateway.services.token_monitor import token_monitor
from core import metrics
from core.exceptions import ServiceUnavailable
from core.logging import mask_phone

logger = logging.getLogger(__name__)

SESSION_KEY_PREFIX = "gemini_session_"
LOCK_KEY_PREFIX = "lock:session:"
LOCK_WAIT_SECONDS = 30
LOCK_BUSY_MESSAGE = "Outra mensagem deste paciente ainda está sendo processada."

_FIELDS = ConversationSession._meta.concrete_fields
_ATTNAMES = [f.attname for f in _FIELDS]
_ATTNAME_SET = frozenset(_ATTNAMES)
_WRITABLE = [f.attname for f in _FIELDS if f.attname not in {"id", "created_at", "version"}]


class SessionConflict(Exception):
    """The session changed in the database since it was read (another turn won the race)."""


class SessionLockTimeout(ServiceUnavailable):
    code = "session_busy"


def session_key(phone: str) -> str:
    return f"{SESSION_KEY_PREFIX}{phone}"


class SessionManager:
    _process_locks: dict[str, threading.Lock] = {}
    _process_locks_guard = threading.Lock()

    @property
    def cache(self):
        return caches["default"]

    # --- reads ------------------------------------------------------------------------------------------
    def get_or_start(self, *, phone: str) -> ConversationSession:
        cached = self.cache.get(session_key(phone))
        if cached is not None and not (isinstance(cached, dict) and _ATTNAME_SET <= cached.keys()):
            cached = None  # written before a field was added (a deploy): read the row instead of failing
        if cached is not None:
            metrics.cache_event("session", "hit")
            return ConversationSession.from_db("default", _ATTNAMES, [cached[name] for name in _ATTNAMES])
        metrics.cache_event("session", "miss")
        session = ConversationSession.objects.filter(phone_number=phone).first()
        if session is None:
            session = self._create(phone)
        self._cache_write(session)
        return session

    def get_from_database(self, *, phone: str) -> ConversationSession | None:
        return ConversationSession.objects.filter(phone_number=phone).first()

    def _create(self, phone: str) -> ConversationSession:
        try:
            with transaction.atomic():
                return ConversationSession.objects.create(phone_number=phone)
        except IntegrityError:  # another process created it first
            return ConversationSession.objects.get(phone_number=phone)

    # --- writes -----------------------------------------------------------------------------------------
    def save(self, *, session: ConversationSession) -> ConversationSession:
        """Write-through: UPDATE ... WHERE version = read version, then refresh the cache."""
        if session.current_state not in ConversationState.values:
            raise ValueError(f"invalid conversation state: {session.current_state!r}")
        now = timezone.now()
        session.updated_at = now
        values = {name: getattr(session, name) for name in _WRITABLE}
        rows = ConversationSession.objects.filter(pk=session.pk, version=session.version).update(
            **values, version=F("version") + 1
        )
        if rows == 0:
            self.invalidate(phone=session.phone_number)
            raise SessionConflict(f"session {mask_phone(session.phone_number)} changed concurrently")
        session.version += 1
        self._cache_write(session)
        return session

    def reset(self, *, session: ConversationSession, keep_name: bool = True) -> ConversationSession:
        """Back to idle with every slot cleared (the patient said 'recomeçar', or staff reset a stuck session)."""
        fresh = ConversationSession(phone_number=session.phone_number)
        for name in _WRITABLE:
            if name in {"phone_number", "last_activity", "updated_at", "has_greeted"}:
                continue
            if keep_name and name in {"patient_name", "name_confirmed"}:
                continue
            setattr(session, name, getattr(fresh, name))
        return self.save(session=session)

    def invalidate(self, *, phone: str) -> None:
        self.cache.delete(session_key(phone))

    def _cache_write(self, session: ConversationSession) -> None:
        key = session_key(session.phone_number)
        data = {name: getattr(session, name) for name in _ATTNAMES}
        ok = self.cache.set(key, data, timeout=token_monitor.get_cache_timeout())
        if ok is False or (ok is None and settings.REDIS_URL):
            # django-redis returns None when it swallowed an error: make sure no older copy survives.
            logger.warning("session cache write failed for %s; dropping the key", mask_phone(session.phone_number))
            self.cache.delete(key)

    # --- per-phone serialisation ------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, phone: str, *, wait_seconds: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
        if settings.REDIS_URL:
            with self._redis_lock(phone, wait_seconds):
                yield
            return
        with self._process_lock(phone, wait_seconds):
            yield

    @contextlib.contextmanager
    def _redis_lock(self, phone: str, wait_seconds: float) -> Iterator[None]:
        lock = caches["strict"].lock(
            f"{LOCK_KEY_PREFIX}{phone}", timeout=settings.SESSION_LOCK_TIMEOUT_SECONDS, blocking_timeout=wait_seconds
        )
        try:
            acquired = lock.acquire(blocking=True)
        except (RedisError, OSError):
            if not settings.IS_POSTGRES:
                raise  # no shared fallback: the task retries later
            logger.warning("Redis unavailable for the session lock of %s; using a database lock", mask_phone(phone))
            acquired = None
        if acquired is None:  # Redis is down: conversations go on, serialised by the database instead
            with self._database_lock(phone, wait_seconds):
                yield
            return
        if not acquired:
            raise SessionLockTimeout(LOCK_BUSY_MESSAGE)
        try:
            yield
        finally:
            try:
                lock.release()
            except Exception:  # noqa: BLE001 - expired or Redis gone; the timeout frees it anyway
                logger.warning("session lock for %s was already released", mask_phone(phone))

    @contextlib.contextmanager
    def _database_lock(self, phone: str, wait_seconds: float) -> Iterator[None]:
        """A PostgreSQL session-level advisory lock: released by unlock, or by the server if this process dies."""
        key = f"{LOCK_KEY_PREFIX}{phone}"
        deadline = time.monotonic() + wait_seconds
        with connection.cursor() as cursor:
            while True:
                cursor.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [key])
                if cursor.fetchone()[0]:
                    break
                if time.monotonic() > deadline:
                    raise SessionLockTimeout(LOCK_BUSY_MESSAGE)
                time.sleep(0.05)
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [key])

    @contextlib.contextmanager
    def _process_lock(self, phone: str, wait_seconds: float) -> Iterator[None]:
        with self._process_locks_guard:
            lock = self._process_locks.setdefault(phone, threading.Lock())
        if not lock.acquire(timeout=wait_seconds):
            raise SessionLockTimeout(LOCK_BUSY_MESSAGE)
        try:
            yield
        finally:
            lock.release()


session_manager = SessionManager()
