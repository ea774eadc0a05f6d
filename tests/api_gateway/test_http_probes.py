"""The HTTP surface under odd requests found by a probe (ninth session): each case was a 500, a redirect that
loses a delivery, or a wrong status before its fix."""

import json
import time

import pytest
from django.test import Client

from api_gateway.models import ConversationMessage
from tests.api_gateway.test_rest_api import AUTH
from tests.fakes import graph_server
from tests.fakes.graph_server import signature_header, webhook_body

celery_inline = graph_server.celery_inline
fake_graph = graph_server.fake_graph

VERIFY = {"hub.mode": "subscribe", "hub.verify_token": "test-verify-token", "hub.challenge": "42"}


def _client() -> Client:
    return Client(raise_request_exception=False, **AUTH)  # a 500 is the answer under test, not an exception


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


# --- the REST API acts as the patient it names: it needs a key, and it has the webhook's per-patient limit -------


def _rest(body: dict, **headers):
    return Client().post("/api/v1/messages/", data=json.dumps(body), content_type="application/json", **headers)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({}, 401, "Envie a chave de API no cabeçalho Authorization: Bearer <chave>."),
        ({"HTTP_AUTHORIZATION": "Bearer wrong"}, 401, "Chave de API inválida."),
        ({"HTTP_AUTHORIZATION": "Bearer é"}, 401, "Chave de API inválida."),
    ],
)
def test_a_rest_turn_without_the_right_key_is_refused_and_runs_nothing(clinic, headers, status, message):
    response = _rest({"phone": "5511977776666", "text": "minhas consultas"}, **headers)  # was: 200, the list
    assert response.status_code == status
    assert response.json()["error"]["message"] == message
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not ConversationMessage.objects.exists()


@pytest.mark.django_db
def test_without_configured_keys_the_rest_api_is_off_in_production(clinic, settings):
    settings.API_KEYS, settings.DEBUG = [], False
    response = _rest({"phone": "5511977776666", "text": "oi"}, **AUTH)
    assert response.status_code == 403
    assert "defina API_KEYS" in response.json()["error"]["message"]


@pytest.mark.django_db
def test_without_configured_keys_debug_keeps_the_rest_api_open_for_local_use(clinic, settings):
    settings.API_KEYS, settings.DEBUG = [], True
    assert _rest({"phone": "5511977776666", "text": "oi"}).status_code == 200


@pytest.mark.django_db
def test_any_of_several_keys_is_accepted(clinic, settings):
    settings.API_KEYS = ["first-key", "second-key"]
    assert _rest({"phone": "5511977776666", "text": "oi"}, HTTP_AUTHORIZATION="Bearer second-key").status_code == 200


@pytest.mark.django_db
def test_rest_turns_over_the_per_patient_limit_are_429_and_replays_do_not_count(clinic, settings):
    settings.PATIENT_MAX_MESSAGES_PER_MINUTE = 3
    codes = [_rest({"phone": "5511922221111", "text": f"oi {i}"}, **AUTH).status_code for i in range(4)]
    assert codes == [200, 200, 200, 429]  # was: no limit (40 calls in 3 s all ran turns)
    body = _rest({"phone": "5511922221111", "text": "de novo"}, **AUTH).json()
    assert body["error"]["message"] == "Muitas mensagens deste paciente neste minuto. Tente novamente em instantes."
    assert _rest({"phone": "5511922221112", "text": "oi"}, **AUTH).status_code == 200  # another patient is free


@pytest.mark.django_db
def test_derived_keys_of_two_phones_do_not_collide(clinic):
    first = _rest({"phone": "5511999990001", "text": "oi", "message_id": "x1"}, **AUTH)
    second = _rest({"phone": "511999990001", "text": "oi", "message_id": "x15"}, **AUTH)
    assert (first.status_code, second.status_code) == (200, 200)  # was: 422, "chave já usada com outro conteúdo"
    assert first.json()["idempotency_key"] != second.json()["idempotency_key"]


@pytest.mark.django_db
def test_the_same_key_with_another_timestamp_is_another_payload(clinic):
    headers = {**AUTH, "HTTP_IDEMPOTENCY_KEY": "k-1"}
    assert _rest({"phone": "5511999990001", "text": "oi", "timestamp": "1795000000"}, **headers).status_code == 200
    again = _rest({"phone": "5511999990001", "text": "oi", "timestamp": "1795000999"}, **headers)
    assert again.status_code == 422  # was: replayed as if the same request


# --- deliveries that are not ours, or not quite well formed ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_inline")
def test_a_message_to_another_number_of_the_account_is_not_answered_from_ours(clinic, fake_graph):
    response = _signed_post(webhook_body(_delivery(phone_number_id="999888777")))
    assert response.status_code == 200  # acknowledged, so Meta stops retrying
    assert fake_graph.sends == []  # was: answered through our number
    assert not ConversationMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_inline")
def test_an_envelope_of_another_product_is_ignored(clinic, fake_graph):
    response = _signed_post(webhook_body(_delivery(obj="instagram")))
    assert response.json()["status"] == "ignored"
    assert not ConversationMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_inline")
def test_items_that_could_not_be_read_are_counted_and_odd_but_readable_ones_are_kept(clinic, fake_graph):
    payload = _delivery()
    good = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    payload["entry"][0]["changes"][0]["value"]["messages"] = [
        {**good, "id": "wamid.SURROGATE", "text": {"body": "oi \ud800 tudo bem"}},  # was: lost at INSERT
        {**good, "id": "wamid.FRACTION", "timestamp": f"{int(time.time())}.5"},  # was: dropped
        {**good, "id": "wamid.NOTEXT", "text": None},
    ]
    body = json.dumps(payload).encode()  # json escapes the lone surrogate as Meta would send it
    response = _signed_post(body)
    assert response.json()["errors"] == 1  # was: not reported at all
    stored = set(ConversationMessage.objects.filter(message_type="user").values_list("whatsapp_message_id", flat=True))
    assert stored == {"wamid.SURROGATE", "wamid.FRACTION"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_inline")
@pytest.mark.parametrize("kind", ["contacts", "order", "request_welcome", "some_future_type"])
def test_message_types_without_words_get_the_only_text_answer(clinic, fake_graph, kind):
    payload = _delivery()
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message.pop("text")
    message["type"] = kind
    message[kind] = {}
    _signed_post(webhook_body(payload))
    assert fake_graph.sends, "no reply"
    assert "só consigo entender mensagens de texto" in fake_graph.sends[0].body["text"]["body"]  # was: "não entendi"


def test_whatsapp_message_ids_are_shortened_in_logs():
    from core.logging import mask_text

    wamid = "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"  # Meta's example: it holds 16505076520
    masked = mask_text(f"inbound {wamid} is a duplicate delivery")
    assert "HBgLMTY1MDUwNzY1MjAV" not in masked
    assert masked == "inbound wamid.…Q2RTY3RTcA is a duplicate delivery"
