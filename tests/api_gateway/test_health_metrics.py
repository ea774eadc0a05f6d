import pytest

from core import views as core_views

BROKEN_REDIS = {
    "BACKEND": "django_redis.cache.RedisCache",
    "LOCATION": "redis://127.0.0.1:1/0",
    "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.1, "SOCKET_TIMEOUT": 0.1},
}


@pytest.mark.django_db
def test_health_is_200_with_each_check_detailed(client):
    response = client.get("/health/")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "broker"}
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["database"]["backend"] in {"sqlite", "postgresql"}


@pytest.mark.django_db
def test_health_is_503_naming_the_cache_when_it_fails(client, settings):
    settings.CACHES = {**settings.CACHES, "strict": BROKEN_REDIS}

    response = client.get("/health/")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["cache"] == {"ok": False, "error": "ConnectionError", "ms": body["checks"]["cache"]["ms"]}
    assert body["checks"]["database"]["ok"] is True
    assert "127.0.0.1:1" not in response.content.decode()


@pytest.mark.django_db
def test_health_is_503_when_the_database_check_fails(client, monkeypatch):
    monkeypatch.setattr(core_views, "HEALTH_DATABASE_ALIAS", "no-such-database")

    response = client.get("/health/")

    assert response.status_code == 503
    assert response.json()["checks"]["database"]["ok"] is False


def test_health_rejects_other_methods(client):
    assert client.post("/health/").status_code == 405


def test_metrics_expose_the_prometheus_families(client):
    response = client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    for name in (
        "http_request_duration_seconds",
        "webhook_messages_total",
        "webhook_duplicates_total",
        "cache_events_total",
        "gemini_calls_total",
        "gemini_latency_seconds",
        "llm_tokens_total",
        "llm_estimated_cost_usd_total",
        "bookings_total",
        "handoffs_total",
        "whatsapp_outbound_total",
        "sweeper_messages_total",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name


def test_http_duration_is_recorded_by_route_pattern(client):
    from core.metrics import HTTP_DURATION

    before = HTTP_DURATION.labels("ping/", "GET", "200")._sum.get()
    count = _count(HTTP_DURATION, "ping/")

    client.get("/ping/")

    assert _count(HTTP_DURATION, "ping/") == count + 1
    assert HTTP_DURATION.labels("ping/", "GET", "200")._sum.get() > before


def _count(histogram, route: str) -> float:
    for metric in histogram.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels.get("route") == route:
                return sample.value
    return 0.0


def test_ping_is_a_trivial_200_with_a_request_id(client):
    response = client.get("/ping/", HTTP_X_REQUEST_ID="bench-1")

    assert response.status_code == 200
    assert response.content == b"pong"
    assert response["X-Request-ID"] == "bench-1"
