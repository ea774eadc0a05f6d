import time

import pytest
from django.core.cache import caches

from api_gateway.models import ConversationMessage, ConversationSession
from core import metrics
from tests.fakes import graph_server
from tests.fakes.graph_server import load_payload, post_webhook, webhook_body

celery_inline = graph_server.celery_inline
fake_graph = graph_server.fake_graph

PATIENT = "5511999990001"
Processing = ConversationMessage.Processing
Delivery = ConversationMessage.Delivery

# Real commits: the webhook enqueues processing with transaction.on_commit, as in production.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_inline")]


def _inbound():
    return ConversationMessage.objects.filter(message_type="user")


def _bots():
    return ConversationMessage.objects.filter(message_type="bot")


def _payload(name: str, *, now: float) -> dict:
    """The fixture, with the list reply pointing at the demo clinic's real Cardiologia row (ids vary per test)."""
    from rag_agent.models import Especialidade

    payload = load_payload(name, now=now)
    if name == "interactive_list_reply":
        specialty = Especialidade.objects.get(nome="Cardiologia")
        message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
        message["interactive"]["list_reply"]["id"] = f"specialty:{specialty.pk}"
    return payload


# --- Verification handshake -----------------------------------------------------------------------------
def test_verification_handshake_echoes_the_challenge(client):
    response = client.get(
        "/webhook/whatsapp/",
        {"hub.mode": "subscribe", "hub.verify_token": "test-verify-token", "hub.challenge": "1158201444"},
    )

    assert response.status_code == 200
    assert response.content == b"1158201444"
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "test-verify-token", "hub.challenge": "1"},
        {},
    ],
)
def test_verification_with_a_wrong_token_or_mode_is_forbidden(client, params):
    assert client.get("/webhook/whatsapp/", params).status_code == 403


def test_verification_is_refused_when_no_verify_token_is_configured(client, settings):
    settings.WHATSAPP_VERIFY_TOKEN = ""

    response = client.get("/webhook/whatsapp/", {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"})

    assert response.status_code == 403


# --- Signature and bad input ------------------------------------------------------------------------------
def test_signed_post_is_accepted_and_stored(client, clinic):
    response = post_webhook(client, load_payload("text", now=time.time()))

    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert _inbound().filter(whatsapp_message_id="wamid.TEXT0001").exists()


@pytest.mark.parametrize(("signature", "status"), [("", 401), ("sha256=" + "0" * 64, 403), ("garbage", 403)])
def test_missing_or_wrong_signature_is_refused_and_nothing_is_stored(client, clinic, signature, status):
    response = post_webhook(client, load_payload("text", now=time.time()), signature=signature)

    assert response.status_code == status
    assert response.json()["error"]["code"].startswith("signature")
    assert not ConversationMessage.objects.exists()
    assert not ConversationSession.objects.exists()


def test_signature_made_with_another_secret_is_refused(client, clinic):
    response = post_webhook(client, load_payload("text", now=time.time()), secret="not-our-secret")

    assert response.status_code == 403
    assert not ConversationMessage.objects.exists()


def test_malformed_json_is_a_400(client):
    response = post_webhook(client, b'{"object": "whatsapp_business_account", "entry": [')

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_body_over_the_limit_is_a_413_before_anything_else(client, settings):
    settings.WHATSAPP_MAX_BODY_BYTES = 1000

    response = post_webhook(client, b"{" + b" " * 2000 + b"}")

    assert response.status_code == 413


def test_other_methods_are_405(client):
    assert client.put("/webhook/whatsapp/", data=b"{}", content_type="application/json").status_code == 405
    assert client.delete("/webhook/whatsapp/").status_code == 405


def test_valid_json_of_a_kind_we_do_not_handle_is_acknowledged_and_ignored(client, caplog):
    response = post_webhook(client, {"object": "page", "something": "else"})

    assert response.status_code == 200
    assert response.json() == {"status": "ignored"}
    assert "ignored" in caplog.text
    assert not ConversationMessage.objects.exists()


def test_errors_only_value_is_acknowledged_and_logged(client, caplog):
    response = post_webhook(client, load_payload("errors_only", now=time.time()))

    assert response.status_code == 200
    assert "131000" in caplog.text
    assert not ConversationMessage.objects.exists()


# --- Every message type -----------------------------------------------------------------------------------
ANSWERED = [
    ("text", "wamid.TEXT0001", "text", "Olá, quero marcar uma consulta de cardiologia", ""),
    ("interactive_list_reply", "wamid.LIST0001", "interactive", "Cardiologia", ""),
    ("interactive_button_reply", "wamid.BTN0001", "interactive", "Sim, confirmar", ""),
    ("button", "wamid.TPLBTN0001", "button", "Agendar consulta", ""),
    ("location", "wamid.LOC0001", "location", "-23.5614,-46.6559 (Minha casa - Rua Augusta, 500)", ""),
    ("image_with_caption", "wamid.IMG0001", "image", "Meu pedido médico", "1234567890123456"),
    ("audio", "wamid.AUD0001", "audio", "", "2234567890123456"),
    ("video", "wamid.VID0001", "video", "", "6234567890123456"),
    ("document", "wamid.DOC0001", "document", "Exames", "3234567890123456"),
    ("sticker", "wamid.STK0001", "sticker", "", "4234567890123456"),
    ("unsupported", "wamid.UNSUP0001", "unsupported", "", ""),
]


@pytest.mark.parametrize(("fixture", "wamid", "channel_type", "content", "media_id"), ANSWERED)
def test_each_answerable_message_type_is_stored_processed_and_answered_once(
    client, clinic, fake_graph, fixture, wamid, channel_type, content, media_id
):
    response = post_webhook(client, _payload(fixture, now=time.time()))

    assert response.status_code == 200
    inbound = _inbound().get(whatsapp_message_id=wamid)
    assert (inbound.channel_type, inbound.content, inbound.media_id) == (channel_type, content, media_id)
    assert inbound.processing_status == Processing.PROCESSED
    assert inbound.attempts == 1
    assert inbound.replied_at is not None
    bot = _bots().get(reply_to=inbound)
    assert bot.delivery_status == Delivery.SENT
    assert [s.wamid for s in fake_graph.sends] == [bot.whatsapp_message_id]
    # Twice in a full CI run the mark-read timed out and never reached the fake; the message shows what did.
    assert [r.body["message_id"] for r in fake_graph.reads] == [wamid], fake_graph.requests


@pytest.mark.parametrize("fixture", ["sticker", "video"])  # no words with it (a caption is read: test_media_messages)
def test_media_without_words_gets_the_polite_only_text_answer(client, clinic, fake_graph, fixture):
    post_webhook(client, load_payload(fixture, now=time.time()))

    sent = fake_graph.sends[0].body
    assert sent["type"] == "text"
    assert "texto" in sent["text"]["body"].lower()


def test_list_reply_reaches_the_turn_as_the_option_id(client, clinic, fake_graph):
    post_webhook(client, load_payload("text", now=time.time()))  # opens the booking flow with specialties

    post_webhook(client, _payload("interactive_list_reply", now=time.time() + 1))

    inbound = _inbound().get(whatsapp_message_id="wamid.LIST0001")
    assert inbound.nlu_source == "option"
    assert inbound.processing_status == Processing.PROCESSED


@pytest.mark.parametrize(("fixture", "wamid"), [("reaction", "wamid.REACT0001"), ("system", "wamid.SYS0001")])
def test_reactions_and_system_notices_are_recorded_and_not_answered(client, clinic, fake_graph, fixture, wamid):
    response = post_webhook(client, load_payload(fixture, now=time.time()))

    assert response.status_code == 200
    inbound = _inbound().get(whatsapp_message_id=wamid)
    assert inbound.processing_status == Processing.IGNORED
    assert not _bots().exists()
    assert fake_graph.requests == []


def test_message_older_than_the_limit_is_recorded_as_too_old_and_not_answered(client, clinic, fake_graph, settings):
    settings.WHATSAPP_MAX_MESSAGE_AGE_HOURS = 24

    post_webhook(client, load_payload("text", now=time.time() - 25 * 3600))

    inbound = _inbound().get(whatsapp_message_id="wamid.TEXT0001")
    assert (inbound.processing_status, inbound.last_error) == (Processing.IGNORED, "too old")
    assert not _bots().exists()
    assert fake_graph.requests == []


def test_message_from_our_own_business_number_is_ignored(client, clinic, fake_graph):
    response = post_webhook(client, load_payload("own_number", now=time.time()))

    assert response.status_code == 200
    assert response.json()["ignored"] == 1
    assert not ConversationMessage.objects.exists()
    assert fake_graph.requests == []


def test_patient_without_a_number_gets_a_session_keyed_by_user_id(client, clinic):
    post_webhook(client, load_payload("user_id_without_wa_id", now=time.time()))

    inbound = _inbound().get(whatsapp_message_id="wamid.BSUID0001")
    assert inbound.session.phone_number == "BR.1A2B3C4D5E6F"
    assert inbound.processing_status == Processing.PROCESSED


def test_messages_over_the_per_minute_limit_are_recorded_but_not_answered(client, clinic, settings):
    settings.PATIENT_MAX_MESSAGES_PER_MINUTE = 2
    while time.time() % 60 > 58:  # the limit counts per clock minute: the three posts must fall in one
        time.sleep(0.1)
    now = time.time()
    for i in range(3):
        payload = load_payload("text", now=now + i)
        payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = f"wamid.RATE{i}"
        post_webhook(client, payload)

    statuses = dict(_inbound().values_list("whatsapp_message_id", "processing_status"))
    assert statuses == {"wamid.RATE0": "processed", "wamid.RATE1": "processed", "wamid.RATE2": "ignored"}
    assert _inbound().get(whatsapp_message_id="wamid.RATE2").last_error == "rate limited"
    assert _bots().count() == 2


def test_rate_limit_allows_messages_when_the_counter_cache_is_down(client, clinic, settings):
    settings.PATIENT_MAX_MESSAGES_PER_MINUTE = 0  # every message would be limited if the counter worked
    broken = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
    }
    settings.CACHES = {**settings.CACHES, "strict": broken}
    settings.REDIS_URL = ""  # keep the per-phone lock in-process for this test

    post_webhook(client, load_payload("text", now=time.time()))

    assert _inbound().get().processing_status == Processing.PROCESSED


# --- Batches ----------------------------------------------------------------------------------------------
def test_batch_stores_every_message_of_every_entry_and_one_bad_item_drops_nothing(client, clinic, fake_graph):
    response = post_webhook(client, load_payload("batch", now=time.time()))

    assert response.status_code == 200
    stored = set(_inbound().values_list("whatsapp_message_id", flat=True))
    assert stored == {f"wamid.BATCH000{i}" for i in range(1, 6)}
    assert set(_inbound().values_list("processing_status", flat=True)) == {Processing.PROCESSED}
    assert _bots().count() == 5
    assert len(fake_graph.sends) == 5
    second = ConversationSession.objects.get(phone_number="5511988880002")
    assert second.messages.filter(message_type="user").count() == 3


def test_duplicate_delivery_is_stored_once_and_answered_once(client, clinic, fake_graph):
    payload = load_payload("text", now=time.time())
    duplicates_before = metrics.WEBHOOK_DUPLICATES._value.get()

    first = post_webhook(client, payload)
    second = post_webhook(client, payload)

    assert first.json()["accepted"] == 1
    assert second.status_code == 200 and second.json()["duplicates"] == 1
    assert _inbound().count() == 1
    assert _bots().count() == 1
    assert len(fake_graph.sends) == 1
    assert metrics.WEBHOOK_DUPLICATES._value.get() - duplicates_before == 1


def test_duplicate_is_decided_by_the_database_even_after_a_cache_flush(client, clinic, fake_graph):
    payload = load_payload("text", now=time.time())
    post_webhook(client, payload)
    caches["default"].clear()

    post_webhook(client, payload)

    assert _inbound().count() == 1
    assert len(fake_graph.sends) == 1


# --- Statuses ---------------------------------------------------------------------------------------------
@pytest.fixture
def sent_reply(db, phone):
    session = ConversationSession.objects.create(phone_number=phone)
    return ConversationMessage.objects.create(
        session=session, message_type="bot", content="Olá", whatsapp_message_id="wamid.OUT0001", delivery_status="sent"
    )


@pytest.mark.parametrize(
    ("order", "final"),
    [
        (["delivered", "read"], "read"),
        (["read", "delivered"], "read"),
        (["read", "sent", "delivered"], "read"),
        (["delivered", "sent"], "delivered"),
        (["sent", "delivered", "delivered"], "delivered"),
    ],
)
def test_statuses_move_only_forward_whatever_order_they_arrive_in(client, sent_reply, order, final):
    for status in order:
        assert post_webhook(client, load_payload(f"status_{status}", now=time.time())).status_code == 200

    sent_reply.refresh_from_db()
    assert sent_reply.delivery_status == final


def test_failed_status_is_final_and_keeps_the_error_code(client, sent_reply):
    post_webhook(client, load_payload("status_failed", now=time.time()))
    post_webhook(client, load_payload("status_delivered", now=time.time()))

    sent_reply.refresh_from_db()
    assert (sent_reply.delivery_status, sent_reply.error_code) == ("failed", 131047)
    assert "131047" in sent_reply.last_error


def test_statuses_never_start_a_turn(client, sent_reply, fake_graph):
    for status in ("sent", "delivered", "read", "failed"):
        post_webhook(client, load_payload(f"status_{status}", now=time.time()))

    assert ConversationMessage.objects.count() == 1
    assert fake_graph.requests == []


def test_status_for_an_unknown_message_is_acknowledged(client, db):
    response = post_webhook(client, load_payload("status_read", now=time.time()))

    assert response.status_code == 200
    assert response.json()["statuses"] == 0


def test_request_id_is_echoed_on_webhook_responses(client):
    response = client.post(
        "/webhook/whatsapp/", data=webhook_body({}), content_type="application/json", HTTP_X_REQUEST_ID="abc-123"
    )

    assert response["X-Request-ID"] == "abc-123"


# --- One-statement ingest edge cases ----------------------------------------------------------------------
def _text_envelope(*messages: tuple[str, str, str], now: float) -> dict:
    """One POST carrying (wamid, phone, text) messages, as Meta batches them."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "WABA",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "5511900000000", "phone_number_id": "100200300"},
                            "contacts": [{"profile": {"name": "Paciente"}, "wa_id": p} for _, p, _ in messages],
                            "messages": [
                                {
                                    "from": p,
                                    "id": w,
                                    "timestamp": str(int(now) + i),
                                    "type": "text",
                                    "text": {"body": t},
                                }
                                for i, (w, p, t) in enumerate(messages)
                            ],
                        },
                    }
                ],
            }
        ],
    }


def test_the_same_id_twice_in_one_post_is_stored_and_answered_once(client, clinic, fake_graph):
    now = time.time()
    payload = _text_envelope(("wamid.TWICE", "5511977770001", "oi"), ("wamid.TWICE", "5511977770001", "oi"), now=now)

    response = post_webhook(client, payload)

    assert response.status_code == 200
    assert _inbound().filter(whatsapp_message_id="wamid.TWICE").count() == 1
    assert _bots().count() == 1
    assert len(fake_graph.sends) == 1


def test_a_first_time_sender_and_a_known_duplicate_in_one_post_are_both_handled(client, clinic, fake_graph):
    now = time.time()
    post_webhook(client, _text_envelope(("wamid.KNOWN", "5511977770002", "oi"), now=now))
    assert len(fake_graph.sends) == 1

    payload = _text_envelope(
        ("wamid.KNOWN", "5511977770002", "oi"),  # a retry of what is already stored
        ("wamid.NEWCOMER", "5511977770003", "qual o endereço?"),  # a phone never seen before
        now=now + 5,
    )
    response = post_webhook(client, payload)

    assert response.status_code == 200
    assert response.json()["duplicates"] == 1 and response.json()["accepted"] == 1
    newcomer = ConversationSession.objects.get(phone_number="5511977770003")
    assert newcomer.messages.filter(message_type="user", whatsapp_message_id="wamid.NEWCOMER").count() == 1
    assert _inbound().filter(whatsapp_message_id="wamid.KNOWN").count() == 1
    assert len(fake_graph.sends) == 2
