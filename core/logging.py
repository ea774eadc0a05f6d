"""Logging helpers: request ids, LGPD masking of phone numbers and names, a JSON formatter."""

import contextvars
import json
import logging
import re

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

# A run of 10+ digits (optionally with +, spaces, dots, hyphens, parentheses) is treated as a phone number.
_PHONE_RE = re.compile(r"(?<![\w.])\+?\(?\d[\d\s().-]{8,}\d(?![\w])")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
# A WhatsApp message id is base64 of a record that starts with the patient's number: only its tail is logged.
_WAMID_RE = re.compile(r"wamid\.([A-Za-z0-9+/=_-]{13,})")


def mask_phone(value: object) -> str:
    """'5511999990001' -> '55*******0001'. Keeps the country code and last 4 digits for correlation."""
    digits = re.sub(r"\D", "", str(value or ""))
    if len(digits) <= 4:
        return "*" * len(digits)
    head = digits[:2] if len(digits) > 8 else ""
    return f"{head}{'*' * (len(digits) - len(head) - 4)}{digits[-4:]}"


def mask_name(value: object) -> str:
    """'João Silva' -> 'J*** S****'."""
    parts = str(value or "").split()
    return " ".join(p[0] + "*" * (len(p) - 1) for p in parts) if parts else ""


def mask_text(text: str) -> str:
    def _sub(match: re.Match) -> str:
        text = match.group(0)
        digits = re.sub(r"\D", "", text)
        return mask_phone(digits) if len(digits) >= 10 and not _DATE_RE.search(text) else text

    text = _WAMID_RE.sub(lambda m: f"wamid.…{m.group(1)[-10:]}", text)
    return _PHONE_RE.sub(_sub, text)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class MaskPersonalDataFilter(logging.Filter):
    """Last line of defence: masks phone-like digit runs in the rendered message."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not lose the log line
            message = str(record.msg)
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


_base_factory = logging.getLogRecordFactory()


def _masking_record_factory(*args, **kwargs) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    record.request_id = request_id_var.get()
    MaskPersonalDataFilter().filter(record)
    return record


def install_record_factory() -> None:
    """Mask at record creation, so every handler (test captures included) only ever sees masked text."""
    if logging.getLogRecordFactory() is not _masking_record_factory:
        logging.setLogRecordFactory(_masking_record_factory)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            payload["exc"] = mask_text(self.formatException(record.exc_info))
        return json.dumps(payload, ensure_ascii=False)
