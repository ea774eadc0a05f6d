"""Phone numbers as WhatsApp knows them (the wa_id: country code and number, digits only)."""

import re


def whatsapp_number(phone: str) -> str | None:
    """The WhatsApp id for a phone as people write it ("(11) 98765-4321", "+55 11 98765-4321"): digits, with
    Brazil's 55 added to a bare area code + number. None when it cannot be a phone number."""
    phone = (phone or "").strip()
    digits = re.sub(r"\D", "", phone)
    if phone.startswith("+"):  # an explicit country code ("+1 415 555 0100"): kept as written
        return digits if 8 <= len(digits) <= 15 else None
    if len(digits) in (11, 12) and digits.startswith("0"):  # "(011) 98765-4321": the long-distance 0
        digits = digits[1:]
    if len(digits) in (10, 11):
        digits = "55" + digits
    return digits if 12 <= len(digits) <= 15 else None


def phone_forms(phone: str) -> list[str]:
    """The phone as given, plus the same Brazilian mobile with/without the ninth digit.

    WhatsApp's wa_id may omit the 9 that Brazilian mobiles gained after the area code (REFERENCE.md), so a number
    the staff typed with it and the id the patient writes from name the same line. Landlines (first digit 2–5
    after the area code) have no other form."""
    forms = [phone]
    if phone.isdigit() and phone.startswith("55"):
        if len(phone) == 13 and phone[4] == "9":
            forms.append(phone[:4] + phone[5:])
        elif len(phone) == 12 and phone[4] in "6789":
            forms.append(phone[:4] + "9" + phone[4:])
    return forms
