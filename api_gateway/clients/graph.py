"""WhatsApp Cloud API (Meta Graph API) over httpx: the only module that knows its wire format.

Knows nothing of our models. Shapes a Reply into a text, list or reply-button message within WhatsApp's limits
(falling back to numbered text when the options do not fit), and turns error bodies into `GraphError`.
"""

import logging
import threading
from urllib.parse import quote

import httpx
from django.conf import settings

from api_gateway.services.replies import Option, Reply

logger = logging.getLogger(__name__)

# WhatsApp limits (REFERENCE.md).
TEXT_BODY_MAX = 4096
BUTTONS_BODY_MAX = 1024
LIST_ROWS_MAX = 10
LIST_ROW_TITLE_MAX = 24
LIST_ROW_DESCRIPTION_MAX = 72
LIST_ROW_ID_MAX = 200
LIST_BUTTON_LABEL_MAX = 20
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
BUTTON_ID_MAX = 256
TEMPLATE_PARAMETER_MAX = 1024  # a body parameter may not hold line breaks or tabs either (collapsed by _cut)

TRANSIENT_CODES = frozenset({1, 2, 131000, 131016})
RATE_LIMIT_CODES = frozenset({130429, 131056, 4, 80007})
PERMANENT_CODES = frozenset({131047, 131026, 131051, 190, 368, 131031})


class GraphError(Exception):
    def __init__(
        self,
        *,
        code: int | None,
        message: str,
        subcode: int | None = None,
        http_status: int | None = None,
        transient: bool = False,
        rate_limited: bool = False,
    ):
        super().__init__(f"Graph API error {code}: {message}")
        self.code = code
        self.subcode = subcode
        self.message = message
        self.http_status = http_status
        self.transient = transient
        self.rate_limited = rate_limited

    @property
    def retryable(self) -> bool:
        return self.transient or self.rate_limited


def graph_error_from_response(response: httpx.Response) -> GraphError:
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    subcode = error.get("error_subcode") if isinstance(error.get("error_subcode"), int) else None
    message = str(error.get("message") or response.reason_phrase or "unknown error")
    details = (error.get("error_data") or {}).get("details") if isinstance(error.get("error_data"), dict) else None
    if details:
        message = f"{message} ({details})"
    rate_limited = code in RATE_LIMIT_CODES or (code is None and response.status_code == 429)
    transient = not rate_limited and (
        code in TRANSIENT_CODES or (code not in PERMANENT_CODES and response.status_code >= 500)
    )
    return GraphError(
        code=code,
        subcode=subcode,
        message=message,
        http_status=response.status_code,
        transient=transient,
        rate_limited=rate_limited,
    )


# --- Shaping (pure) ---------------------------------------------------------------------------------------
def _cut(value: str, limit: int) -> str:
    value = " ".join(str(value).split())
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def _base(to: str) -> dict:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}


def text_payload(*, to: str, body: str) -> dict:
    return {**_base(to), "type": "text", "text": {"body": _cut_body(body, TEXT_BODY_MAX), "preview_url": False}}


def _cut_body(body: str, limit: int) -> str:
    # Keep line breaks (numbered options); only the length is limited.
    return body if len(body) <= limit else body[: limit - 1].rstrip() + "…"


def list_payload(*, to: str, body: str, button_label: str, options: list[Option]) -> dict | None:
    """None when the options cannot be a list (too many rows, body too long, duplicate ids)."""
    if not options or len(options) > LIST_ROWS_MAX or len(body) > TEXT_BODY_MAX:
        return None
    ids = [o.id[:LIST_ROW_ID_MAX] for o in options]
    if len(set(ids)) != len(ids):
        return None
    rows = []
    for row_id, option in zip(ids, options, strict=True):
        title = _cut(option.title, LIST_ROW_TITLE_MAX)
        description = option.description
        if title != " ".join(option.title.split()) and not description:
            # The full name moves to the description, where there is room for 72 characters.
            description = option.title
        row = {"id": row_id, "title": title}
        if description:
            row["description"] = _cut(description, LIST_ROW_DESCRIPTION_MAX)
        rows.append(row)
    return {
        **_base(to),
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": {"text": body},
            "action": {
                "button": _cut(button_label or "Ver opções", LIST_BUTTON_LABEL_MAX),
                "sections": [{"rows": rows}],
            },
        },
    }


def buttons_payload(*, to: str, body: str, options: list[Option]) -> dict | None:
    """None when the options cannot be reply buttons (more than 3, titles not unique once cut, body too long)."""
    if not options or len(options) > BUTTONS_MAX or len(body) > BUTTONS_BODY_MAX:
        return None
    titles = [_cut(o.title, BUTTON_TITLE_MAX) for o in options]
    ids = [o.id[:BUTTON_ID_MAX] for o in options]
    if len(set(titles)) != len(titles) or len(set(ids)) != len(ids):
        return None
    buttons = [{"type": "reply", "reply": {"id": i, "title": t}} for i, t in zip(ids, titles, strict=True)]
    return {
        **_base(to),
        "type": "interactive",
        "interactive": {"type": "button", "body": {"text": body}, "action": {"buttons": buttons}},
    }


def reply_payload(*, to: str, reply: Reply) -> dict:
    """The richest form the reply fits in: buttons → list → numbered text."""
    if reply.options:
        if reply.kind == "buttons":
            payload = buttons_payload(to=to, body=reply.text, options=reply.options)
            if payload is None:
                payload = list_payload(to=to, body=reply.text, button_label=reply.button_label, options=reply.options)
            if payload is not None:
                return payload
        elif reply.kind == "list":
            payload = list_payload(to=to, body=reply.text, button_label=reply.button_label, options=reply.options)
            if payload is not None:
                return payload
    return text_payload(to=to, body=reply.as_text())


def template_payload(*, to: str, template: dict) -> dict:
    """An approved message template (the only kind Meta delivers outside the 24-hour window).

    `template` is what we store on the message: {"name", "language", "body": [texts], "buttons": [payloads]};
    each body text fills a {{n}} of the template body and each payload rides on its quick-reply button n."""
    components = []
    if template.get("body"):
        parameters = [{"type": "text", "text": _cut(text, TEMPLATE_PARAMETER_MAX)} for text in template["body"]]
        components.append({"type": "body", "parameters": parameters})
    for index, payload in enumerate(template.get("buttons") or []):
        components.append(
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": str(index),
                "parameters": [{"type": "payload", "payload": payload[:BUTTON_ID_MAX]}],
            }
        )
    return {
        **_base(to),
        "type": "template",
        "template": {
            "name": template["name"],
            "language": {"code": template.get("language") or "pt_BR"},
            "components": components,
        },
    }


def mark_read_payload(*, message_id: str, typing: bool = True) -> dict:
    payload = {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}
    if typing:
        payload["typing_indicator"] = {"type": "text"}
    return payload


# --- Transport --------------------------------------------------------------------------------------------
_clients: dict[tuple[str, float], httpx.Client] = {}
_clients_guard = threading.Lock()


def _client() -> httpx.Client:
    """One pooled client per base URL and timeout (settings are read per call, so tests can point elsewhere)."""
    key = (settings.WHATSAPP_API_BASE_URL.rstrip("/"), float(settings.WHATSAPP_TIMEOUT_SECONDS))
    with _clients_guard:
        client = _clients.get(key)
        if client is None:
            client = httpx.Client(base_url=key[0], timeout=key[1])
            _clients[key] = client
        return client


def _auth_headers() -> dict:
    return {"Authorization": f"Bearer {settings.WHATSAPP_ACCESS_TOKEN}"}


def _messages_path() -> str:
    return f"/{settings.WHATSAPP_API_VERSION}/{settings.WHATSAPP_PHONE_NUMBER_ID}/messages"


def graph_post(*, payload: dict) -> dict:
    """POST to /messages. Raises GraphError (API errors) or httpx.TransportError (timeouts, refused)."""
    response = _client().post(
        _messages_path(),
        json=payload,
        headers=_auth_headers(),
    )
    if response.status_code >= 400:
        raise graph_error_from_response(response)
    try:
        return response.json()
    except ValueError as exc:
        raise GraphError(code=None, message="invalid JSON in a success response", transient=True) from exc


def _wamid(data: dict) -> str:
    messages = data.get("messages") or [{}]
    return str(messages[0].get("id", ""))


def graph_send_payload(*, payload: dict) -> str:
    """Sends a prepared message payload; returns the outbound WhatsApp message id."""
    return _wamid(graph_post(payload=payload))


def graph_send_text(*, to: str, body: str) -> str:
    return graph_send_payload(payload=text_payload(to=to, body=body))


def graph_send_list(*, to: str, body: str, options: list[Option], button_label: str = "Ver opções") -> str:
    payload = list_payload(to=to, body=body, button_label=button_label, options=options)
    if payload is None:
        payload = text_payload(to=to, body=Reply(text=body, options=options).as_text())
    return graph_send_payload(payload=payload)


def graph_send_buttons(*, to: str, body: str, options: list[Option]) -> str:
    return graph_send_payload(payload=reply_payload(to=to, reply=Reply(text=body, options=options, kind="buttons")))


def graph_mark_read(*, message_id: str, typing: bool = True) -> None:
    graph_post(payload=mark_read_payload(message_id=message_id, typing=typing))


# --- Media the patient sent -----------------------------------------------------------------------------------
class MediaTooLarge(Exception):
    def __init__(self, size: int, limit: int):
        super().__init__(f"media of {size} bytes is over the {limit}-byte limit")
        self.size = size
        self.limit = limit


def graph_media_info(*, media_id: str) -> dict:
    """GET /{version}/{media-id}: {"url", "mime_type", "sha256", "file_size" (a string), "id"}. The URL is
    short-lived (minutes) and needs the same bearer token. Raises GraphError or httpx.TransportError."""
    params = {"phone_number_id": settings.WHATSAPP_PHONE_NUMBER_ID} if settings.WHATSAPP_PHONE_NUMBER_ID else None
    response = _client().get(
        f"/{settings.WHATSAPP_API_VERSION}/{quote(media_id, safe='')}", params=params, headers=_auth_headers()
    )
    if response.status_code >= 400:
        raise graph_error_from_response(response)
    try:
        info = response.json()
    except ValueError as exc:
        raise GraphError(code=None, message="invalid JSON in a media response", transient=True) from exc
    if not isinstance(info, dict) or not isinstance(info.get("url"), str) or not info["url"]:
        raise GraphError(code=None, message="media response without a download URL")
    return info


def graph_media_download(*, url: str, max_bytes: int) -> bytes:
    """The media's bytes, streamed and cut off past `max_bytes` (MediaTooLarge), whatever size was announced."""
    chunks, size = [], 0
    with _client().stream("GET", url, headers=_auth_headers(), follow_redirects=True) as response:
        if response.status_code >= 300:  # a redirect left unfollowed is no audio either
            response.read()
            raise graph_error_from_response(response)
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise MediaTooLarge(size, max_bytes)
            chunks.append(chunk)
    return b"".join(chunks)
