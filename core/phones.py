"""Phone numbers as WhatsApp knows them (the wa_id: country code and number, digits only)."""

import re


def whatsapp_number(phone: str) -> str | None:
    """The WhatsApp id for a phone as people write it ("(11) 98765-4321", "+55 11 98765-4321"): digits, with
    Brazil's 55 added to a bare area code + number. None when it cannot be a phone number."""
    digits = re.sub(r"\D", "", phone or "")
    if len(digits) in (10, 11):
        digits = "55" + digits
    return digits if 12 <= len(digits) <= 15 else None
