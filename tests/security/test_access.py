"""Who may see what: the admin needs a staff login; the webhook and the API show nothing beyond the bot's replies."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from api_gateway.models import ConversationMessage
from tests.api_gateway.test_rest_api import AUTH

pytestmark = pytest.mark.django_db

ADMIN_PAGES = [
    "/admin/",
    "/admin/rag_agent/agendamento/",
    "/admin/rag_agent/medico/",
    "/admin/api_gateway/conversationsession/",
    "/admin/api_gateway/conversationmessage/",
]


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_redirect_anonymous_visitors_to_the_login(client, clinic, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_a_logged_in_user_who_is_not_staff_cannot_open_the_admin(client, clinic):
    get_user_model().objects.create_user("paciente", password="uma-senha-longa-123")
    assert client.login(username="paciente", password="uma-senha-longa-123")
    response = client.get("/admin/rag_agent/agendamento/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_staff_can_open_the_admin(client, clinic):
    get_user_model().objects.create_superuser("recepcao", password="uma-senha-longa-123")
    assert client.login(username="recepcao", password="uma-senha-longa-123")
    assert client.get("/admin/rag_agent/agendamento/").status_code == 200


@pytest.mark.parametrize(
    "query",
    ["", "?hub.mode=subscribe&hub.challenge=123", "?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=123"],
)
def test_webhook_get_without_the_verify_token_is_forbidden_and_echoes_nothing(client, query):
    response = client.get("/webhook/whatsapp/" + query)
    assert response.status_code == 403
    assert b"123" not in response.content


def test_webhook_get_with_the_verify_token_echoes_only_the_challenge(client):
    response = client.get("/webhook/whatsapp/?hub.mode=subscribe&hub.verify_token=test-verify-token&hub.challenge=42")
    assert response.status_code == 200
    assert response.content == b"42"


def test_the_messages_api_has_no_listing_and_returns_only_the_callers_own_turn(clinic):
    client = Client(**AUTH)
    assert client.get("/api/v1/messages/").status_code == 405
    first = client.post("/api/v1/messages/", {"phone": "5511988000001", "text": "meu nome é Maria Oliveira, quero "
                        "marcar cardiologia"}, content_type="application/json")  # fmt: skip
    assert first.status_code == 200
    second = client.post("/api/v1/messages/", {"phone": "5511988000002", "text": "qual é o meu nome?"},
                         content_type="application/json")  # fmt: skip
    assert second.status_code == 200
    # The idempotency key is a random-looking hex digest that may hold "0001" by chance: it is not a leak.
    leaked = json.dumps({k: v for k, v in second.json().items() if k != "idempotency_key"}, ensure_ascii=False)
    assert "Maria" not in leaked and "5511988000001" not in leaked and "0001" not in leaked
    assert ConversationMessage.objects.filter(session__phone_number="5511988000001").exists()


def test_metrics_and_health_expose_no_phone_number_and_no_secret(client, clinic, settings):
    Client(**AUTH).post("/api/v1/messages/", {"phone": "5511988000003", "text": "oi"}, content_type="application/json")
    for path in ("/metrics", "/health/"):
        body = client.get(path).content.decode()
        assert "5511988000003" not in body
        for secret in (settings.SECRET_KEY, settings.WHATSAPP_APP_SECRET, settings.WHATSAPP_VERIFY_TOKEN):
            assert secret not in body
