"""Operational endpoints: health (database, cache, broker), Prometheus metrics, and a trivial ping."""

import logging
import time
import uuid

from django.conf import settings
from django.core.cache import caches
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

logger = logging.getLogger(__name__)

# Module attributes so a test (or a multi-database deployment) can point the checks elsewhere.
HEALTH_DATABASE_ALIAS = "default"
HEALTH_CACHE_ALIAS = "strict"  # the lenient alias swallows errors and would always look healthy
BROKER_TIMEOUT_SECONDS = 2.0


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        detail = check()
    except Exception as exc:  # noqa: BLE001 - any failure is the answer; the class name, never a secret-bearing URL
        logger.warning("health check %s failed: %s", check.__name__, type(exc).__name__)
        return {"ok": False, "error": type(exc).__name__, "ms": round((time.perf_counter() - started) * 1000, 1)}
    return {"ok": True, **detail, "ms": round((time.perf_counter() - started) * 1000, 1)}


def check_database() -> dict:
    with connections[HEALTH_DATABASE_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"backend": connections[HEALTH_DATABASE_ALIAS].vendor}


def check_cache() -> dict:
    cache = caches[HEALTH_CACHE_ALIAS]
    key, token = f"health:{uuid.uuid4().hex}", uuid.uuid4().hex
    cache.set(key, token, timeout=10)
    if cache.get(key) != token:
        raise RuntimeError("cache read-back mismatch")
    cache.delete(key)
    return {"backend": settings.CACHE_BACKEND_NAME}


def check_broker() -> dict:
    if settings.CELERY_TASK_ALWAYS_EAGER or settings.CELERY_BROKER_URL.startswith("memory://"):
        return {"backend": "inline"}
    from core.celery import app

    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT_SECONDS)
    return {"backend": app.conf.broker_url.split("://", 1)[0]}


@require_safe
def health(request: HttpRequest) -> JsonResponse:
    checks = {"database": _timed(check_database), "cache": _timed(check_cache), "broker": _timed(check_broker)}
    healthy = all(c["ok"] for c in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks}, status=200 if healthy else 503
    )


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


def ping(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"pong", content_type="text/plain")
