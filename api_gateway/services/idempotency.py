"""Idempotency for the REST turn (Stripe / IETF Idempotency-Key semantics).

Key `idem:{sha256(idempotency key)}` holds {"status": "running"|"done", "fingerprint", "response", "created_at",
"phone"}. The "running" marker is written with an atomic `add` on the strict cache (SET NX on Redis), so two
concurrent first requests cannot both run; "done" is written on the default cache for CACHE_TTL_HOURS. Both
aliases share one store, so they address the same key. When Redis is unreachable the strict cache raises and
the same protocol runs on an in-process dictionary (per-process protection only, logged).
"""

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches

from core import metrics
from core.exceptions import ConflictError, UnprocessableError

logger = logging.getLogger(__name__)

KEY_PREFIX = "idem:"
# A "running" marker older than this belongs to a crashed request: the key is free again.
RUNNING_TTL_SECONDS = 120

ERROR_KEY_RUNNING = (
    "Uma requisição com esta chave de idempotência ainda está em andamento. Tente novamente em instantes."
)
ERROR_KEY_REUSED = "Esta chave de idempotência já foi usada com outro conteúdo. Use uma chave nova para outra mensagem."


@dataclass(frozen=True)
class IdempotentResult:
    body: dict
    replayed: bool


def idempotency_key_derive(*, message_id: str, phone: str, timestamp: str) -> str:
    """The key when the client sends no Idempotency-Key header: sha256 of message_id, phone and timestamp joined
    unambiguously (as a JSON list: plain concatenation made "x1"+"5511..." and "x15"+"511..." one key)."""
    joined = json.dumps([message_id, phone, timestamp], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(joined.encode()).hexdigest()


def payload_fingerprint(payload: dict) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def cache_key(key: str) -> str:
    return KEY_PREFIX + hashlib.sha256(key.encode()).hexdigest()


def _ttl_seconds() -> int:
    return settings.CACHE_TTL_HOURS * 3600


# --- In-process fallback (Redis unreachable) --------------------------------------------------------------
_memory: dict[str, tuple[float, dict]] = {}  # key -> (expires_at monotonic, entry)
_memory_guard = threading.Lock()


def _memory_get(key: str) -> dict | None:
    with _memory_guard:
        item = _memory.get(key)
        if item is None:
            return None
        if item[0] < time.monotonic():
            del _memory[key]
            return None
        return item[1]


def _memory_add(key: str, entry: dict, ttl: float) -> bool:
    with _memory_guard:
        item = _memory.get(key)
        if item is not None and item[0] >= time.monotonic():
            return False
        _memory[key] = (time.monotonic() + ttl, entry)
        return True


def _memory_set(key: str, entry: dict, ttl: float) -> None:
    with _memory_guard:
        _memory[key] = (time.monotonic() + ttl, entry)


def _memory_delete(key: str) -> None:
    with _memory_guard:
        _memory.pop(key, None)


# --- Store: cache first, memory when the cache is down -----------------------------------------------------
def _get(key: str) -> dict | None:
    entry = caches["default"].get(key)  # errors swallowed on the lenient alias: None
    return entry if entry is not None else _memory_get(key)


def _add_running(key: str, entry: dict) -> bool:
    try:
        return bool(caches["strict"].add(key, entry, timeout=RUNNING_TTL_SECONDS))
    except Exception as exc:  # noqa: BLE001 - any backend error means "Redis is down": fall back, never drop
        logger.warning("idempotency cache unreachable (%s); using in-process memory", type(exc).__name__)
        return _memory_add(key, entry, RUNNING_TTL_SECONDS)


def _save(key: str, entry: dict) -> None:
    ttl = _ttl_seconds()
    try:
        caches["strict"].set(key, entry, timeout=ttl)
        _memory_delete(key)
    except Exception as exc:  # noqa: BLE001 - keep the result somewhere a retry can find it
        logger.warning("idempotency cache unreachable on save (%s); keeping the result in memory", type(exc).__name__)
        _memory_set(key, entry, ttl)


def _release(key: str) -> None:
    try:
        caches["strict"].delete(key)
    except Exception:  # noqa: BLE001 - the marker expires on its own
        logger.warning("could not release idempotency marker %s…", key[len(KEY_PREFIX) : len(KEY_PREFIX) + 8])
    _memory_delete(key)


def _short(key: str) -> str:
    return key[len(KEY_PREFIX) : len(KEY_PREFIX) + 12] + "…"


def _expired(entry: dict, now: float) -> bool:
    age = now - float(entry.get("created_at", now))
    limit = RUNNING_TTL_SECONDS if entry.get("status") == "running" else _ttl_seconds()
    return age > limit


def idempotent_run(*, key: str, payload: dict, phone: str, run: Callable[[], dict]) -> IdempotentResult:
    """Runs `run()` once per key. Same key + same payload → the stored body (replayed); same key + another payload
    → UnprocessableError (422); same key while the first still runs → ConflictError (409)."""
    ckey = cache_key(key)
    fingerprint = payload_fingerprint(payload)
    entry = _get(ckey)
    now = time.time()
    if entry is not None and _expired(entry, now):
        age = now - entry["created_at"]
        logger.info("[CACHE EXPIRED] key=%s age=%.0fs status=%s", _short(ckey), age, entry["status"])
        _release(ckey)
        entry = None
    if entry is None:
        running = {"status": "running", "fingerprint": fingerprint, "created_at": now, "phone": phone}
        if _add_running(ckey, running):
            metrics.cache_event("idempotency", "miss")
            logger.info("[CACHE MISS] key=%s", _short(ckey))
            return IdempotentResult(body=_run_and_save(ckey, running, run), replayed=False)
        entry = _get(ckey) or running  # lost the race: another request holds the key now
    if entry.get("fingerprint") != fingerprint:
        raise UnprocessableError(ERROR_KEY_REUSED)
    if entry.get("status") != "done":
        raise ConflictError(ERROR_KEY_RUNNING)
    metrics.cache_event("idempotency", "hit")
    size = len(json.dumps(entry["response"], ensure_ascii=False, default=str).encode())
    logger.info("[CACHE HIT] key=%s age=%.1fs size=%dB", _short(ckey), now - entry["created_at"], size)
    return IdempotentResult(body=entry["response"], replayed=True)


def _run_and_save(ckey: str, running: dict, run: Callable[[], dict]) -> dict:
    try:
        body = run()
    except BaseException:
        # A failed first attempt must not poison the key: the client's retry runs the turn again.
        _release(ckey)
        raise
    done = {**running, "status": "done", "response": body, "created_at": time.time()}
    _save(ckey, done)
    size = len(json.dumps(body, ensure_ascii=False, default=str).encode())
    logger.info("[CACHE SAVE] key=%s size=%dB ttl=%ds", _short(ckey), size, _ttl_seconds())
    return body


def idempotency_clear(*, phones: Collection[str] | None = None, dry_run: bool = False) -> list[str]:
    """The one place that finds, and unless `dry_run` removes, stored results: all of them, or those whose `phone`
    is one of `phones` (digits, as the REST API stores it). Returns their cache keys.

    It looks in the cache and in the in-process fallback dictionary. That dictionary lives inside each process:
    called from a management command (`forget_patient`, `cache clear --phone`), it reaches only the command's own,
    empty one, never the web processes' results kept during a Redis outage (those expire after CACHE_TTL_HOURS,
    or with a restart). The dictionary is cleared first, so it is cleared even when the cache then cannot be
    listed: that error propagates, since an erasure must not report a success it did not achieve.
    """
    wanted = None if phones is None else set(phones)

    def matches(entry: object) -> bool:
        return isinstance(entry, dict) and (wanted is None or entry.get("phone") in wanted)

    with _memory_guard:
        keys = {key for key, (_, entry) in _memory.items() if matches(entry)}
        if not dry_run:
            for key in keys:
                del _memory[key]
    cache = caches["strict"]
    found = [key for key in _cache_keys(cache) if matches(cache.get(key))]
    keys.update(found)
    if not dry_run:
        if found:
            cache.delete_many(found)
        logger.info("[CACHE CLEARED] idempotency keys=%d scope=%s", len(keys), "all" if wanted is None else "patient")
    return sorted(keys)


def _cache_keys(cache) -> list[str]:
    """The idempotency keys in the cache: SCAN on django-redis (never KEYS); on LocMem, its private dict, whose
    full keys are "prefix:version:key"."""
    if hasattr(cache, "iter_keys"):
        return list(cache.iter_keys(f"{KEY_PREFIX}*", itersize=500))
    marker = f":{KEY_PREFIX}"
    return [k.split(":", 2)[2] for k in list(getattr(cache, "_cache", {})) if marker in k]
