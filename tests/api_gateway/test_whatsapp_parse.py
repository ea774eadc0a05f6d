import datetime as dt
import json

import pytest

from api_gateway.whatsapp import PayloadError, signature_for, signature_is_valid, webhook_parse
from tests.fakes.graph_server import load_payload, webhook_body

SECRET = "test-app-secret"
PATIENT = "5511999990001"


@pytest.mark.parametrize(
    ("fixture", "kind", "text", "option_id", "media_id"),
    [
        ("text", "text", "Olá, quero marcar uma consulta de cardiologia", None, ""),
        ("interactive_list_reply", "interactive", "Cardiologia", "specialty:1", ""),
        ("interactive_button_reply", "interactive", "Sim, confirmar", "confirm:yes", ""),
        ("button", "button", "Agendar consulta", "menu:agendar", ""),
        ("image_with_caption", "image", "Meu pedido médico", None, "1234567890123456"),
        ("audio", "audio", "", None, "2234567890123456"),
        ("video", "video", "", None, "6234567890123456"),
        ("document", "document", "Exames", None, "3234567890123456"),
        ("sticker", "sticker", "", None, "4234567890123456"),
        ("reaction", "reaction", "\U0001f44d", None, ""),
        ("unsupported", "unsupported", "", None, ""),
    ],
)
def test_each_message_type_parses_into_one_typed_record(fixture, kind, text, option_id, media_id):
    parsed = webhook_parse(load_payload(fixture))

    assert len(parsed.messages) == 1 and not parsed.problems
    message = parsed.messages[0]
    assert (message.kind, message.text, message.option_id, message.media_id) == (kind, text, option_id, media_id)
    assert message.sender == PATIENT
    assert message.timestamp == dt.datetime(2026, 11, 18, 11, 6, 40, tzinfo=dt.UTC)


def test_location_keeps_coordinates_and_place_as_text():
    message = webhook_parse(load_payload("location")).messages[0]

    assert message.kind == "location"
    assert message.text == "-23.5614,-46.6559 (Minha casa - Rua Augusta, 500)"


def test_interactive_reply_keeps_the_context_of_our_message_and_the_profile_name_as_a_hint():
    message = webhook_parse(load_payload("interactive_list_reply")).messages[0]

    assert message.context_id == "wamid.HBgOUT0001"
    assert message.profile_name == "João Silva"


def test_unsupported_message_keeps_metas_error_code():
    assert webhook_parse(load_payload("unsupported")).messages[0].error_code == 131051


def test_system_message_without_contacts_is_a_silent_record():
    message = webhook_parse(load_payload("system")).messages[0]

    assert message.kind == "system" and message.silent
    assert message.profile_name == ""


def test_patient_without_a_number_is_identified_by_the_business_scoped_user_id():
    message = webhook_parse(load_payload("user_id_without_wa_id")).messages[0]

    assert message.sender == "BR.1A2B3C4D5E6F"
    assert message.user_id == "BR.1A2B3C4D5E6F"


@pytest.mark.parametrize("status", ["sent", "delivered", "read"])
def test_statuses_parse_without_starting_anything(status):
    parsed = webhook_parse(load_payload(f"status_{status}"))

    assert parsed.messages == []
    assert [(s.wamid, s.status, s.error_code) for s in parsed.statuses] == [("wamid.OUT0001", status, None)]


@pytest.mark.parametrize("bad_id", ["wamid.\x00OUT", "", 42])
def test_a_status_whose_id_no_message_can_have_is_a_problem_not_an_update(bad_id):
    """Found by the webhook fuzzer on PostgreSQL: an id with NUL made the status UPDATE itself fail."""
    payload = load_payload("status_read")
    payload["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = bad_id
    parsed = webhook_parse(payload)

    assert parsed.statuses == []
    assert [p.where for p in parsed.problems] == ["entry[0].changes[0].statuses[0]"]


def test_failed_status_carries_the_error_code_and_title():
    update = webhook_parse(load_payload("status_failed")).statuses[0]

    assert (update.status, update.error_code, update.error_title) == ("failed", 131047, "Re-engagement message")


def test_batch_reads_every_entry_change_message_and_status_and_reports_the_bad_item():
    parsed = webhook_parse(load_payload("batch"))

    assert [m.wamid for m in parsed.messages] == [
        "wamid.BATCH0001",
        "wamid.BATCH0002",
        "wamid.BATCH0003",
        "wamid.BATCH0004",
        "wamid.BATCH0005",
    ]
    assert [s.wamid for s in parsed.statuses] == ["wamid.OUT0001", "wamid.OUT0002"]
    assert len(parsed.problems) == 1
    assert parsed.problems[0].where == "entry[0].changes[0].messages[2]"
    assert {m.sender for m in parsed.messages} == {PATIENT, "5511988880002"}


def test_a_sender_id_too_long_to_be_whatsapps_is_a_reported_problem_and_the_other_messages_stay():
    payload = load_payload("batch")
    messages = payload["entry"][0]["changes"][0]["value"]["messages"]
    messages[0]["from"] = "5" * 65

    parsed = webhook_parse(payload)

    assert [p.where for p in parsed.problems] == ["entry[0].changes[0].messages[0]", "entry[0].changes[0].messages[2]"]
    assert "longer than 64" in parsed.problems[0].reason
    assert [m.wamid for m in parsed.messages] == [
        "wamid.BATCH0002",
        "wamid.BATCH0003",
        "wamid.BATCH0004",
        "wamid.BATCH0005",
    ]


@pytest.mark.parametrize("timestamp", ["9" * 30, str(2**63), "-" + "9" * 20])
def test_a_timestamp_out_of_range_is_a_reported_problem_not_a_crash(timestamp):
    payload = load_payload("batch")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = timestamp
    payload["entry"][0]["changes"][0]["value"]["statuses"][0]["timestamp"] = timestamp

    parsed = webhook_parse(payload)

    assert "entry[0].changes[0].messages[0]" in [p.where for p in parsed.problems]
    assert any("out of range" in p.reason for p in parsed.problems)
    assert len(parsed.messages) == 4 and len(parsed.statuses) == 1


def test_errors_only_value_is_reported_without_messages():
    parsed = webhook_parse(load_payload("errors_only"))

    assert parsed.messages == [] and parsed.statuses == []
    assert parsed.errors[0]["code"] == 131000


def test_change_with_another_field_is_listed_as_ignored():
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"changes": [{"field": "account_update", "value": {}}]}],
    }

    assert webhook_parse(payload).ignored_fields == ["account_update"]


@pytest.mark.parametrize("payload", [[], {"object": "page"}, {"entry": "x"}, "text"])
def test_json_that_is_not_an_envelope_raises_payload_error(payload):
    with pytest.raises(PayloadError):
        webhook_parse(payload)


def test_signature_is_checked_on_the_raw_bytes_with_escaped_accents():
    body = webhook_body(load_payload("text"))
    assert b"\\u00e1" in body or b"\\u00c1" in body or b"Ol\\u00e1" in body

    assert signature_is_valid(body=body, header=signature_for(body=body, secret=SECRET), secret=SECRET)
    reserialised = json.dumps(json.loads(body), ensure_ascii=False).encode()
    assert not signature_is_valid(body=reserialised, header=signature_for(body=body, secret=SECRET), secret=SECRET)


@pytest.mark.parametrize(
    "header",
    ["", "sha256=", "sha256=deadbeef", "md5=abc", signature_for(body=b"{}", secret="another-secret")],
)
def test_wrong_or_malformed_signatures_are_refused(header):
    assert not signature_is_valid(body=b"{}", header=header, secret=SECRET)


def test_no_secret_never_validates():
    assert not signature_is_valid(body=b"{}", header=signature_for(body=b"{}", secret=""), secret="")
