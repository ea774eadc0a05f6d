"""Typed records parsed from WhatsApp Cloud API webhook payloads, and the signature check.

Pure functions, no I/O. Every entry[], changes[], messages[] and statuses[] of a POST is read (Meta batches up to
1000 updates); one malformed item becomes a `ParseProblem` and never drops its neighbours.
"""

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass, field

SIGNATURE_PREFIX = "sha256="

MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})
# Recorded but never answered: a reaction is not a question, a system notice comes from WhatsApp itself.
SILENT_TYPES = frozenset({"reaction", "system"})
STATUS_VALUES = frozenset({"sent", "delivered", "read", "failed"})


# An E.164 number has at most 15 digits and a business-scoped user id is short: anything longer is not a WhatsApp
# sender (and would not fit ConversationSession.phone_number, so its session could not be opened).
SENDER_MAX_LENGTH = 64


@dataclass(frozen=True)
class InboundMessage:
    wamid: str
    # wa_id (digits), or the business-scoped user id when Meta withholds the number.
    sender: str
    kind: str  # WhatsApp message type: text, interactive, button, location, image, ..., reaction, system
    timestamp: dt.datetime
    text: str = ""  # body, caption, or the title of the chosen option
    option_id: str | None = None  # list_reply / button_reply id, or a template button payload
    media_id: str = ""
    # User-controlled: a hint for the name question, never an identity.
    profile_name: str = ""
    user_id: str = ""
    context_id: str = ""  # our message this one answers (interactive replies)
    error_code: int | None = None  # for "unsupported"
    business_number: str = ""  # metadata.display_phone_number of the number that received it

    @property
    def silent(self) -> bool:
        return self.kind in SILENT_TYPES


@dataclass(frozen=True)
class StatusUpdate:
    wamid: str
    status: str  # sent | delivered | read | failed
    timestamp: dt.datetime
    recipient: str = ""
    error_code: int | None = None
    error_title: str = ""


@dataclass(frozen=True)
class ParseProblem:
    where: str  # "entry[0].changes[1].messages[3]"
    reason: str


@dataclass
class ParsedWebhook:
    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    # value.errors[] Meta reports about the integration itself (no message attached).
    errors: list[dict] = field(default_factory=list)
    problems: list[ParseProblem] = field(default_factory=list)
    # Changes with a field we do not handle ("account_update", "templates", ...).
    ignored_fields: list[str] = field(default_factory=list)


class PayloadError(ValueError):
    """The body is JSON but not a WhatsApp webhook envelope."""


def signature_is_valid(*, body: bytes, header: str, secret: str) -> bool:
    """`X-Hub-Signature-256` is `sha256=` + hex HMAC-SHA256 of the raw body bytes keyed with the App Secret."""
    if not header.startswith(SIGNATURE_PREFIX) or not secret:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    # As bytes: compare_digest refuses non-ASCII str, and a forged header is a 403, not a 500.
    return hmac.compare_digest(expected.encode(), header[len(SIGNATURE_PREFIX) :].strip().lower().encode())


def signature_for(*, body: bytes, secret: str) -> str:
    """The header value Meta would send (used by tests and the local simulator)."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_parse(payload: object, *, own_number_id: str = "") -> ParsedWebhook:
    """The messages and statuses of a delivery. With `own_number_id` (our WHATSAPP_PHONE_NUMBER_ID), changes for
    another number of the same business account are skipped: they are not ours to answer."""
    if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
        raise PayloadError("not a WhatsApp webhook envelope (no entry[])")
    if payload.get("object", "whatsapp_business_account") != "whatsapp_business_account":
        raise PayloadError(f"object {str(payload.get('object'))[:40]!r} is not whatsapp_business_account")
    parsed = ParsedWebhook()
    for e, entry in enumerate(payload["entry"]):
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            parsed.problems.append(ParseProblem(f"entry[{e}]", "no changes[]"))
            continue
        for c, change in enumerate(changes):
            where = f"entry[{e}].changes[{c}]"
            if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
                parsed.problems.append(ParseProblem(where, "no value"))
                continue
            if change.get("field", "messages") != "messages":
                parsed.ignored_fields.append(str(change.get("field")))
                continue
            metadata = change["value"].get("metadata")
            number_id = str(metadata.get("phone_number_id") or "") if isinstance(metadata, dict) else ""
            if own_number_id and number_id and number_id != own_number_id:
                parsed.ignored_fields.append("messages for another phone_number_id")
                continue
            _parse_value(change["value"], where, parsed)
    return parsed


def _list_field(value: dict, name: str, where: str, parsed: ParsedWebhook) -> list:
    items = value.get(name) or []
    if not isinstance(items, list):
        parsed.problems.append(ParseProblem(f"{where}.{name}", f"not a list: {type(items).__name__}"))
        return []
    return items


def _parse_value(value: dict, where: str, parsed: ParsedWebhook) -> None:
    metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
    business_number = _digits(metadata.get("display_phone_number", ""))
    contacts = [c for c in _list_field(value, "contacts", where, parsed) if isinstance(c, dict)]
    for m, raw in enumerate(_list_field(value, "messages", where, parsed)):
        try:
            parsed.messages.append(_parse_message(raw, contacts, business_number))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            parsed.problems.append(ParseProblem(f"{where}.messages[{m}]", f"{type(exc).__name__}: {exc}"))
    for s, raw in enumerate(_list_field(value, "statuses", where, parsed)):
        try:
            parsed.statuses.append(_parse_status(raw))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            parsed.problems.append(ParseProblem(f"{where}.statuses[{s}]", f"{type(exc).__name__}: {exc}"))
    for error in _list_field(value, "errors", where, parsed):
        parsed.errors.append(error if isinstance(error, dict) else {"raw": error})


def _parse_message(raw: dict, contacts: list[dict], business_number: str) -> InboundMessage:
    wamid = raw["id"]
    if not isinstance(wamid, str) or not wamid:
        raise ValueError("empty message id")
    kind = raw["type"]
    contact = _contact_for(raw, contacts)
    user_id = str(raw.get("from_user_id") or raw.get("user_id") or contact.get("user_id") or "")
    sender = _digits(raw.get("from") or contact.get("wa_id") or "") or user_id
    if not sender:
        raise ValueError("no sender: neither wa_id nor user_id")
    if len(sender) > SENDER_MAX_LENGTH:
        raise ValueError(f"sender id longer than {SENDER_MAX_LENGTH} characters")
    body = raw.get(kind) if isinstance(raw.get(kind), dict) else {}
    text, option_id, media_id, error_code = "", None, "", None
    if kind == "text":
        text = body["body"]
    elif kind == "interactive":
        reply = body.get(body.get("type", "")) or body.get("list_reply") or body.get("button_reply") or {}
        option_id, text = reply.get("id"), reply.get("title", "")
    elif kind == "button":
        option_id, text = body.get("payload"), body.get("text", "")
    elif kind in MEDIA_TYPES:
        media_id, text = body.get("id", ""), body.get("caption", "")
    elif kind == "location":
        place = " - ".join(p for p in (body.get("name"), body.get("address")) if p)
        text = f"{body.get('latitude')},{body.get('longitude')}" + (f" ({place})" if place else "")
    elif kind == "reaction":
        text = body.get("emoji", "")
    elif kind == "system":
        text = body.get("body", "")
    elif kind == "unsupported":
        errors = raw.get("errors") or []
        error_code = errors[0].get("code") if errors and isinstance(errors[0], dict) else None
    profile = contact.get("profile") or {}
    context = raw.get("context") if isinstance(raw.get("context"), dict) else {}
    return InboundMessage(
        wamid=_clean(wamid),
        sender=_clean(sender),
        kind=kind,
        timestamp=_timestamp(raw["timestamp"]),
        text=_clean(text),
        option_id=_clean(option_id) if option_id else None,
        media_id=_clean(media_id),
        profile_name=_clean(profile.get("name", "")) if isinstance(profile, dict) else "",
        user_id=_clean(user_id),
        context_id=_clean(context.get("id", "")),
        error_code=error_code,
        business_number=business_number,
    )


def _parse_status(raw: dict) -> StatusUpdate:
    wamid = raw["id"]
    if not isinstance(wamid, str) or not wamid or "\x00" in wamid:
        # No message of ours has such an id (PostgreSQL could not even compare it: NUL is refused in text).
        raise ValueError("status id is not a WhatsApp message id")
    status = raw["status"]
    if status not in STATUS_VALUES:
        raise ValueError(f"unknown status {status!r}")
    errors = raw.get("errors") or []
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    return StatusUpdate(
        wamid=wamid,
        status=status,
        timestamp=_timestamp(raw["timestamp"]),
        recipient=_digits(raw.get("recipient_id", "")) or str(raw.get("recipient_user_id", "")),
        error_code=_int_or_none(first.get("code")),  # a null or odd code still records the failure
        error_title=str(first.get("title") or first.get("message") or ""),
    )


def _contact_for(raw: dict, contacts: list[dict]) -> dict:
    sender = _digits(raw.get("from", ""))
    for contact in contacts:
        if sender and _digits(contact.get("wa_id", "")) == sender:
            return contact
    return contacts[0] if len(contacts) == 1 else {}


def _clean(value: object) -> str:
    """Text as we can store it: PostgreSQL refuses NUL characters and no database takes a lone surrogate ("\\ud800"
    in the JSON), either of which would lose the whole message."""
    return str(value or "").replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _int_or_none(value: object) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _timestamp(value: object) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(int(float(value)), tz=dt.UTC)  # "1795000000.5" too
    except (OverflowError, OSError) as exc:  # beyond what the platform's time_t (or datetime) can hold
        raise ValueError(f"timestamp out of range: {str(value)[:20]}") from exc


def _digits(value: object) -> str:
    return re.sub(r"\D", "", str(value or ""))
