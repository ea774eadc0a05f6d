import json
import threading
import time

import pytest
from django.conf import settings as django_settings
from django.db import connections
from django.test import Client, override_settings

from api_gateway.models import ConversationMessage, ConversationSession
from api_gateway.services import idempotency
from api_gateway.services.session_cache import session_manager

URL = "/api/v1/messages/"
AUTH = {"HTTP_AUTHORIZATION": "Bearer test-api-key"}  # the key tests/conftest.py configures
PHONE = "5511999990001"
BROKEN_REDIS = {
    "BACKEND": "django_redis.cache.RedisCache",
    "LOCATION": "redis://127.0.0.1:1/0",
    "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.1, "SOCKET_TIMEOUT": 0.1},
}
HEALTHY_CACHES = django_settings.CACHES  # as configured, before a test breaks Redis


def _post(client, body, **headers):
    return client.post(URL, data=json.dumps(body), content_type="application/json", **AUTH, **headers)


@pytest.fixture(autouse=True)
def _forget_in_process_results():
    """The in-process fallback outlives a test's cache flush. This teardown runs before `settings` is restored
    (conftest's autouse fixtures take it first), so it names the configured caches itself."""
    yield
    with override_settings(CACHES=HEALTHY_CACHES):
        idempotency.idempotency_clear()


def _bot_count() -> int:
    return ConversationMessage.objects.filter(message_type="bot").count()


@pytest.mark.django_db
def test_a_turn_answers_with_reply_state_key_options_and_nlu_source(client, clinic):
    response = _post(client, {"phone": PHONE, "text": "Quero marcar uma consulta", "message_id": "m-1"})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"reply", "state", "idempotency_key", "options", "nlu_source"}
    session = ConversationSession.objects.get(phone_number=PHONE)
    assert body["state"] == session.current_state != "idle"
    bot = ConversationMessage.objects.get(message_type="bot")
    assert body["reply"].startswith(bot.content)
    assert body["options"] == bot.entities["reply"]["options"]
    assert body["nlu_source"] == ConversationMessage.objects.get(message_type="user").nlu_source
    assert body["idempotency_key"] == idempotency.idempotency_key_derive(message_id="m-1", phone=PHONE, timestamp="")
    assert response["Idempotency-Key"] == body["idempotency_key"]
    assert "Idempotent-Replayed" not in response


@pytest.mark.django_db
def test_retry_with_the_same_key_replays_the_identical_body_without_a_second_turn(client, clinic, caplog):
    request = {"phone": PHONE, "text": "Quero marcar uma consulta"}
    first = _post(client, request, HTTP_IDEMPOTENCY_KEY="key-123")
    bots_after_first = _bot_count()

    second = _post(client, request, HTTP_IDEMPOTENCY_KEY="key-123")

    assert second.status_code == 200
    assert second.content == first.content
    assert second["Idempotent-Replayed"] == "true"
    assert _bot_count() == bots_after_first == 1
    assert "[CACHE MISS]" in caplog.text and "[CACHE SAVE]" in caplog.text and "[CACHE HIT]" in caplog.text
    assert PHONE not in caplog.text


@pytest.mark.django_db
def test_same_message_id_without_a_header_is_replayed(client, clinic):
    request = {"phone": PHONE, "text": "oi", "message_id": "client-42"}

    _post(client, request)
    replay = _post(client, request)

    assert replay["Idempotent-Replayed"] == "true"
    assert _bot_count() == 1


@pytest.mark.django_db
def test_requests_without_key_or_message_id_are_each_a_new_turn(client, clinic):
    _post(client, {"phone": PHONE, "text": "oi"})
    second = _post(client, {"phone": PHONE, "text": "oi"})

    assert "Idempotent-Replayed" not in second
    assert _bot_count() == 2


@pytest.mark.django_db
def test_same_key_with_a_different_payload_is_422(client, clinic):
    _post(client, {"phone": PHONE, "text": "oi"}, HTTP_IDEMPOTENCY_KEY="key-1")

    response = _post(client, {"phone": PHONE, "text": "tchau"}, HTTP_IDEMPOTENCY_KEY="key-1")

    assert response.status_code == 422
    assert response.json() == {"error": {"code": "unprocessable", "message": idempotency.ERROR_KEY_REUSED}}
    assert _bot_count() == 1


@pytest.mark.django_db(transaction=True)
def test_same_key_while_the_first_request_is_still_running_is_409(clinic):
    request = {"phone": PHONE, "text": "Quero marcar uma consulta"}
    first_status: list[int] = []

    def first() -> None:
        try:
            first_status.append(_post(Client(), request, HTTP_IDEMPOTENCY_KEY="slow-key").status_code)
        finally:
            connections.close_all()

    with session_manager.lock(PHONE):  # another turn of this patient holds the lock: the first request waits
        thread = threading.Thread(target=first)
        thread.start()
        _wait_for_running_marker("slow-key")
        second = _post(Client(), request, HTTP_IDEMPOTENCY_KEY="slow-key")
    thread.join(timeout=60)

    assert second.status_code == 409
    assert second.json()["error"]["message"] == idempotency.ERROR_KEY_RUNNING
    assert first_status == [200]
    assert _bot_count() == 1


def _wait_for_running_marker(key: str) -> None:
    from django.core.cache import caches

    deadline = time.monotonic() + 10
    while (caches["default"].get(idempotency.cache_key(key)) or {}).get("status") != "running":
        assert time.monotonic() < deadline, "the first request never started"
        time.sleep(0.01)


@pytest.mark.django_db
@pytest.mark.skipif(django_settings.IS_POSTGRES, reason="on PostgreSQL the turn runs under a database lock instead")
def test_a_redis_outage_during_the_turn_is_a_503_and_does_not_poison_the_key(client, clinic, settings):
    request = {"phone": PHONE, "text": "oi"}
    healthy_caches = settings.CACHES
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # the per-phone lock lives on Redis, which is down
    settings.CACHES = {"default": healthy_caches["default"], "strict": BROKEN_REDIS}

    refused = _post(client, request, HTTP_IDEMPOTENCY_KEY="k-outage")
    settings.REDIS_URL, settings.CACHES = "", healthy_caches
    retry = _post(client, request, HTTP_IDEMPOTENCY_KEY="k-outage")

    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "unavailable"
    assert retry.status_code == 200
    assert "Idempotent-Replayed" not in retry
    assert _bot_count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_on_postgres_a_redis_outage_during_the_turn_still_answers_under_a_database_lock(client, clinic, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # the per-phone lock lives on Redis, which is down
    settings.CACHES = {"default": {**BROKEN_REDIS, "OPTIONS": {**BROKEN_REDIS["OPTIONS"], "IGNORE_EXCEPTIONS": True}},
                       "strict": BROKEN_REDIS}  # fmt: skip

    answered = _post(client, {"phone": PHONE, "text": "quanto custa o hemograma?"}, HTTP_IDEMPOTENCY_KEY="k-db-lock")

    assert answered.status_code == 200
    assert "R$ 35,00" in answered.json()["reply"]
    assert _bot_count() == 1


@pytest.mark.django_db
def test_idempotency_falls_back_to_process_memory_when_the_cache_is_unreachable(client, clinic, settings, caplog):
    broken = BROKEN_REDIS
    settings.CACHES = {
        "default": {**broken, "OPTIONS": {**broken["OPTIONS"], "IGNORE_EXCEPTIONS": True}},
        "strict": broken,
    }
    settings.REDIS_URL = ""  # the session lock stays in-process
    request = {"phone": PHONE, "text": "oi"}

    first = _post(client, request, HTTP_IDEMPOTENCY_KEY="k-outage")
    second = _post(client, request, HTTP_IDEMPOTENCY_KEY="k-outage")

    assert first.status_code == 200
    assert second["Idempotent-Replayed"] == "true"
    assert second.content == first.content
    assert "in-process memory" in caplog.text


@pytest.mark.django_db
def test_clearing_one_patients_keys_leaves_the_others(client, clinic, caplog):
    _post(client, {"phone": PHONE, "text": "oi"}, HTTP_IDEMPOTENCY_KEY="a")
    _post(client, {"phone": "5511988880002", "text": "oi"}, HTTP_IDEMPOTENCY_KEY="b")

    removed = idempotency.idempotency_clear(phones={PHONE})

    assert removed == [idempotency.cache_key("a")]
    assert "[CACHE CLEARED]" in caplog.text
    assert "Idempotent-Replayed" not in _post(client, {"phone": PHONE, "text": "oi"}, HTTP_IDEMPOTENCY_KEY="a")
    other = _post(client, {"phone": "5511988880002", "text": "oi"}, HTTP_IDEMPOTENCY_KEY="b")
    assert other["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_an_entry_older_than_the_ttl_is_logged_as_expired_and_run_again(client, clinic, settings, caplog):
    _post(client, {"phone": PHONE, "text": "oi"}, HTTP_IDEMPOTENCY_KEY="old")
    settings.CACHE_TTL_HOURS = 0  # everything stored is now older than the TTL

    again = _post(client, {"phone": PHONE, "text": "oi"}, HTTP_IDEMPOTENCY_KEY="old")

    assert "Idempotent-Replayed" not in again
    assert "[CACHE EXPIRED]" in caplog.text


# --- Validation: clear 4xx bodies, never a 500 ----------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone": "11 9999-0001", "text": "oi"}, "phone"),
        ({"phone": "0551199999", "text": "oi"}, "phone"),
        ({"phone": "5511999990001"}, "text"),
        ({"phone": "5511999990001", "text": "   "}, "text"),
        ({"phone": "5511999990001", "text": "x" * 4097}, "text"),
        ({"text": "oi"}, "phone"),
    ],
)
def test_invalid_fields_are_a_400_naming_the_field(client, body, field):
    response = _post(client, body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"]


@pytest.mark.django_db
def test_leading_plus_is_accepted_and_normalised(client, clinic):
    response = _post(client, {"phone": "+5511999990001", "text": "oi"})

    assert response.status_code == 200
    assert ConversationMessage.objects.filter(session__phone_number=PHONE).exists()


def test_malformed_json_is_a_400(client):
    response = client.post(URL, data=b'{"phone": ', content_type="application/json", **AUTH)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_non_json_content_type_is_a_415(client):
    response = client.post(URL, data="phone=1&text=oi", content_type="application/x-www-form-urlencoded", **AUTH)

    assert response.status_code == 415


def test_wrong_method_is_a_405(client):
    assert client.get(URL, **AUTH).status_code == 405


def test_body_over_64_kib_is_a_413(client):
    response = client.post(URL, data=json.dumps({"text": "x" * 70000}), content_type="application/json", **AUTH)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_too_long_idempotency_key_is_a_400(client):
    response = _post(client, {"phone": PHONE, "text": "oi"}, HTTP_IDEMPOTENCY_KEY="k" * 300)

    assert response.status_code == 400


# --- OpenAPI --------------------------------------------------------------------------------------------------
def test_schema_describes_the_real_request_response_and_error_bodies(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    schema = json.loads(response.content)
    operation = schema["paths"]["/api/v1/messages/"]["post"]
    assert set(operation["responses"]) >= {"200", "400", "409", "413", "415", "422"}
    components = schema["components"]["schemas"]
    assert set(components["MessageRequest"]["required"]) == {"phone", "text"}
    assert components["MessageRequest"]["properties"]["text"]["maxLength"] == 4096
    assert set(components["MessageResponse"]["properties"]) == {
        "reply",
        "state",
        "idempotency_key",
        "options",
        "nlu_source",
    }
    assert components["Error"]["properties"]["error"]["$ref"].endswith("/ErrorDetail")
    assert set(components["ErrorDetail"]["properties"]) == {"code", "message", "fields"}
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in operation["parameters"])


def test_swagger_ui_is_served_offline_from_the_sidecar(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    assert b"swagger-ui" in response.content
    assert b"cdn.jsdelivr" not in response.content
