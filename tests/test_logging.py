import logging

from core.logging import mask_name, mask_phone, mask_text


def test_phone_numbers_are_masked_keeping_country_code_and_last_digits():
    assert mask_phone("5511999990001") == "55*******0001"
    assert mask_phone("+55 (11) 99999-0001") == "55*******0001"


def test_names_are_reduced_to_initials():
    assert mask_name("João Silva") == "J*** S****"


def test_free_text_masks_phones_but_not_dates_or_small_numbers():
    text = "from 5511999990001 at 2026-11-23 10:38:08 ref 12345 +55 11 98888-7777"
    masked = mask_text(text)
    assert "5511999990001" not in masked and "98888-7777" not in masked
    assert "2026-11-23 10:38:08" in masked and "12345" in masked


def test_every_log_record_is_masked_at_creation(caplog):
    with caplog.at_level(logging.INFO):
        logging.getLogger("anything").info("patient %s wrote", "5511999990001")
    assert "5511999990001" not in caplog.text
    assert "55*******0001" in caplog.text
