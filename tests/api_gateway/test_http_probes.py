"""The HTTP surface under odd requests found by a probe (ninth session): each case was a 500, a redirect that
loses a delivery, or a wrong status before its fix."""

import json
import time

import pytest
from django.test import Client

from api_gateway.models import ConversationMessage
from tests.fakes import graph_server
from tests.fakes.graph_server import signature_header, webhook_body

celery_inline = graph_server.celery_inline
fake_graph = graph_server.fake_graph

VERIFY = {"hub.mode": "subscribe", "hub.verify_token": "test-verify-token", "hub.challenge": "42"}


def _client() -> Client:
    return Client(raise_request_exception=False)  # a 500 is the answer under test, not an exception


def _delivery(*, phone_number_id: str = "100200300", obj: str = "whatsapp_business_account", mid: str = "wamid.P1"):
    message = {
        "from": "5511999990001",
        "id": mid,
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": "oi"},
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "5511900000000", "phone_number_id": phone_number_id},
        "contacts": [{"profile": {"name": "João Silva"}, "wa_id": "5511999990001"}],
        "messages": [message],
    }
    return {"object": obj, "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}]}


def _signed_post(body: bytes, *, path: str = "/webhook/whatsapp/", signature: str | None = None):
    signature = signature or signature_header(body, "test-app-secret")
    return _client().post(path, data=body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=signature)


@pytest.mark.django_db
def test_a_verify_token_with_accents_is_refused_not_a_500():
    response = _client().get("/webhook/whatsapp/", {**VERIFY, "hub.verify_token": "é"})
    assert response.status_code == 403


@pytest.mark.django_db
def test_an_accented_verify_token_configured_still_verifies(settings):
    settings.WHATSAPP_VERIFY_TOKEN = "senha-clínica"
    response = _client().get("/webhook/whatsapp/", {**VERIFY, "hub.verify_token": "senha-clínica"})
    assert (response.status_code, response.content) == (200, b"42")


@pytest.mark.django_db
def test_verification_without_a_challenge_is_a_400():
    response = _client().get("/webhook/whatsapp/", {k: v for k, v in VERIFY.items() if k != "hub.challenge"})
    assert response.status_code == 400
    assert b"hub.challenge" in response.content


@pytest.mark.django_db
def test_a_signature_header_with_non_ascii_characters_is_refused_not_a_500():
    response = _signed_post(webhook_body(_delivery()), signature="sha256=é")
    assert response.status_code == 403
    assert not ConversationMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_inline")
@pytest.mark.parametrize("path", ["/webhook/whatsapp", "/webhook/whatsapp/"])
def test_a_delivery_is_accepted_with_or_without_the_trailing_slash(clinic, fake_graph, path):
    response = _signed_post(webhook_body(_delivery()), path=path)  # was: a 301 Meta does not follow for a POST
    assert response.status_code == 200
    assert ConversationMessage.objects.filter(message_type="user").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/health/", "/metrics"])
def test_health_and_metrics_answer_head(path):
    assert _client().head(path).status_code in {200, 503}  # load balancers check with HEAD (was 405)


@pytest.mark.django_db
def test_a_rest_body_nested_too_deep_is_a_400_in_portuguese():
    body = '{"phone":' + "[" * 5000 + "]" * 5000 + ',"text":"oi"}'
    response = _client().post("/api/v1/messages/", data=body, content_type="application/json")
    assert response.status_code == 400  # was: a 500 (RecursionError in the JSON decoder)
    assert response.json()["error"]["message"] == "O corpo da requisição não é um JSON válido."


@pytest.mark.django_db
def test_a_rest_body_that_is_not_json_says_so_in_portuguese():
    response = _client().post("/api/v1/messages/", data="{phone: 1}", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "O corpo da requisição não é um JSON válido."


@pytest.mark.django_db
def test_invalid_fields_get_a_portuguese_summary():
    response = _client().post("/api/v1/messages/", data=json.dumps({"text": "oi"}), content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Requisição inválida."
    assert "phone" in response.json()["error"]["fields"]
