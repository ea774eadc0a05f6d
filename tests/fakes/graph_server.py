"""A local fake of the WhatsApp Cloud API (Meta Graph API) `/messages` endpoint, speaking the real wire format.

The real httpx client (api_gateway/clients/graph.py) is pointed at it through settings.WHATSAPP_API_BASE_URL.
ThreadingHTTPServer on 127.0.0.1 (port 0) in a daemon thread; every request is recorded.

    with FakeGraphServer() as server:
        server.enqueue(graph_error(500), graph_error(131000, status=400))  # the next two requests fail
        server.enqueue(graph_ok(delay=2.0))                                 # then a slow success
        server.default = graph_ok()                                         # when the queue is empty
        server.sends   # recorded message POSTs (mark-read requests are in server.reads)
        server.add_media("123", b"OggS...", "audio/ogg; codecs=opus")  # GET /{version}/123 and its download URL
        server.media_requests                                           # recorded GETs (media info, download)

In pytest, use the `fake_graph` fixture (`from tests.fakes.graph_server import fake_graph  # noqa: F401`): it
starts a server and points the settings (base URL, token, phone number id, timeout and retry waits) at it.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

FAKE_ACCESS_TOKEN = "fake-graph-test-token"
_PATH_RE = re.compile(r"^/(?P<version>v[\d.]+)/(?P<phone_number_id>[^/]+)/messages$")
_MEDIA_RE = re.compile(r"^/(?P<version>v[\d.]+)/(?P<media_id>[^/?]+)(?:\?.*)?$")
_DOWNLOAD_RE = re.compile(r"^/whatsapp_business/attachments/\?mid=(?P<media_id>[^&]+)")

# Error titles per code, as Meta words them (only used to make bodies realistic).
_TITLES = {
    1: "API Unknown",
    2: "API Service",
    131000: "Something went wrong",
    131016: "Service unavailable",
    130429: "Rate limit hit",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    131047: "Re-engagement message",
    131026: "Message Undeliverable",
    131051: "Unsupported message type",
    100: "Invalid parameter",
    190: "Access token has expired",
    368: "Temporarily blocked for policies violations",
    132001: "Template name does not exist in the translation",
}


@dataclass
class GraphAnswer:
    status: int = 200
    code: int | None = None  # Graph error code; None for a success
    delay: float = 0.0
    raw: bytes | None = None  # a body sent verbatim (e.g. an HTML 502 page)


def graph_ok(*, delay: float = 0.0) -> GraphAnswer:
    return GraphAnswer(delay=delay)


def graph_error(code: int, *, status: int | None = None, delay: float = 0.0) -> GraphAnswer:
    """A Graph error body. A bare HTTP status (500, 502, 503) is accepted as `code` for server errors."""
    if code >= 500 and code < 600 and status is None:
        return GraphAnswer(status=code, raw=b"<html>Bad Gateway</html>", delay=delay)
    default_status = 429 if code in {130429, 131056} else 401 if code == 190 else 400
    return GraphAnswer(status=status or default_status, code=code, delay=delay)


@dataclass
class RecordedRequest:
    path: str
    headers: dict
    body: dict
    answered_status: int = 0
    wamid: str = ""


@dataclass
class FakeGraphServer:
    default: GraphAnswer = field(default_factory=graph_ok)
    responder: Callable[[RecordedRequest], GraphAnswer] | None = None

    def __post_init__(self):
        self.requests: list[RecordedRequest] = []
        self.media_requests: list[RecordedRequest] = []
        self.media: dict[str, tuple[bytes, str, int]] = {}
        self.media_errors: deque[GraphAnswer] = deque()  # answers for the next media GETs, before any media
        self._queue: deque[GraphAnswer] = deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    # --- scripting --------------------------------------------------------------------------------------
    def enqueue(self, *answers: GraphAnswer) -> None:
        with self._lock:
            self._queue.extend(answers)

    def add_media(self, media_id: str, data: bytes, mime_type: str, *, file_size: int | None = None) -> None:
        """Media a patient sent; `file_size` is what the info response announces (default: the real size)."""
        self.media[media_id] = (data, mime_type, len(data) if file_size is None else file_size)

    def _next_answer(self, request: RecordedRequest) -> GraphAnswer:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return self.responder(request) if self.responder else self.default

    # --- inspection -------------------------------------------------------------------------------------
    @property
    def sends(self) -> list[RecordedRequest]:
        """Message sends (text / interactive), excluding mark-read calls."""
        return [r for r in self.requests if r.body.get("status") != "read"]

    @property
    def reads(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.body.get("status") == "read"]

    # --- lifecycle --------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeGraphServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):  # noqa: N802 - http.server's naming
                request = RecordedRequest(path=self.path, headers=dict(self.headers.items()), body={})
                with server._lock:
                    server.media_requests.append(request)
                    answer = server.media_errors.popleft() if server.media_errors else None
                if self.headers.get("Authorization") != f"Bearer {FAKE_ACCESS_TOKEN}":
                    return self._send(401, _error_body(190))
                if answer is not None:
                    request.answered_status = answer.status
                    if answer.delay:
                        time.sleep(answer.delay)
                    if answer.raw is not None:
                        return self._send_raw(answer.status, answer.raw, "text/html")
                    return self._send(answer.status, _error_body(answer.code))
                download = _DOWNLOAD_RE.match(self.path)
                info = _MEDIA_RE.match(self.path)
                media_id = (download or info)["media_id"] if (download or info) else ""
                if media_id not in server.media:
                    request.answered_status = 400
                    return self._send(400, _error_body(100))
                data, mime_type, file_size = server.media[media_id]
                request.answered_status = 200
                if download:
                    return self._send_raw(200, data, mime_type)
                return self._send(
                    200,
                    {
                        "messaging_product": "whatsapp",
                        "url": f"{server.base_url}/whatsapp_business/attachments/?mid={media_id}&ext=1&hash=x",
                        "mime_type": mime_type,
                        "sha256": __import__("hashlib").sha256(data).hexdigest(),
                        "file_size": str(file_size),
                        "id": media_id,
                    },
                )

            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_unparsable": raw.decode(errors="replace")}
                request = RecordedRequest(path=self.path, headers=dict(self.headers.items()), body=body)
                with server._lock:
                    server.requests.append(request)
                if not _PATH_RE.match(self.path):
                    return self._send(404, {"error": {"message": "Unknown path", "code": 100}})
                if self.headers.get("Authorization") != f"Bearer {FAKE_ACCESS_TOKEN}":
                    return self._send(401, _error_body(190))
                answer = server._next_answer(request)
                if answer.delay:
                    time.sleep(answer.delay)
                request.answered_status = answer.status
                if answer.raw is not None:
                    return self._send_raw(answer.status, answer.raw, "text/html")
                if answer.code is not None:
                    return self._send(answer.status, _error_body(answer.code))
                if body.get("status") == "read":
                    return self._send(200, {"success": True})
                request.wamid = f"wamid.fake{next(server._ids):06d}"
                return self._send(
                    200,
                    {
                        "messaging_product": "whatsapp",
                        "contacts": [{"input": body.get("to", ""), "wa_id": body.get("to", "")}],
                        "messages": [{"id": request.wamid}],
                    },
                )

            def _send(self, status: int, data: dict) -> None:
                self._send_raw(status, json.dumps(data).encode(), "application/json")

            def _send_raw(self, status: int, raw: bytes, content_type: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeGraphServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _error_body(code: int) -> dict:
    return {
        "error": {
            "message": f"({code}) {_TITLES.get(code, 'Error')}",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": _TITLES.get(code, "Error")},
            "error_subcode": 2494010 if code == 131047 else None,
            "fbtrace_id": "AbCdEfGhIjK",
        }
    }


@pytest.fixture
def fake_graph(settings) -> Iterator[FakeGraphServer]:
    """A running fake Graph API with the settings pointed at it (token set, fast retries). The timeout is 5 s,
    not the production 10 s: long enough that a loopback round trip on a loaded CI machine never times out (1 s
    once failed the best-effort mark-read of a full run), short enough that a test of a hang sets its own."""
    with FakeGraphServer() as server:
        settings.WHATSAPP_API_BASE_URL = server.base_url
        settings.WHATSAPP_ACCESS_TOKEN = FAKE_ACCESS_TOKEN
        settings.WHATSAPP_TIMEOUT_SECONDS = 5.0
        settings.WHATSAPP_RETRY_BASE_SECONDS = 0.01
        yield server


# --- The other direction: webhooks as Meta sends them ---------------------------------------------------------
FIXTURES_DIR = __import__("pathlib").Path(__file__).resolve().parent.parent / "fixtures" / "whatsapp"


def load_payload(name: str, *, now: float | None = None, shift: float = 0.0) -> dict:
    """A payload file from tests/fixtures/whatsapp/. With `now` (unix seconds) every `timestamp` is rewritten to
    now + shift + (its offset from the file's earliest timestamp), so relative order survives and nothing looks
    older than WHATSAPP_MAX_MESSAGE_AGE_HOURS."""
    data = json.loads((FIXTURES_DIR / f"{name}.json").read_text(encoding="utf-8"))
    if now is None:
        return data
    stamps = [int(s) for s in _timestamps(data)]
    base = min(stamps) if stamps else 0
    _rewrite(data, lambda ts: str(int(now + shift + int(ts) - base)))
    return data


def _timestamps(node) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "timestamp" and isinstance(value, str):
                yield value
            else:
                yield from _timestamps(value)
    elif isinstance(node, list):
        for item in node:
            yield from _timestamps(item)


def _rewrite(node, fn) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "timestamp" and isinstance(value, str):
                node[key] = fn(value)
            else:
                _rewrite(value, fn)
    elif isinstance(node, list):
        for item in node:
            _rewrite(item, fn)


def webhook_body(payload: dict) -> bytes:
    """Compact JSON with non-ASCII escaped, as Meta sends it (the signature covers exactly these bytes)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode()


def signature_header(body: bytes, secret: str) -> str:
    import hashlib
    import hmac

    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_webhook(
    client,
    payload: dict | bytes,
    *,
    secret: str = "test-app-secret",  # noqa: S107 - the conftest test secret
    signature: str | None = None,
):
    """POST a payload to the webhook with a valid signature (or the given one; "" sends none)."""
    body = payload if isinstance(payload, bytes) else webhook_body(payload)
    headers = {}
    sig = signature_header(body, secret) if signature is None else signature
    if sig:
        headers["HTTP_X_HUB_SIGNATURE_256"] = sig
    return client.post("/webhook/whatsapp/", data=body, content_type="application/json", **headers)


@pytest.fixture
def celery_inline() -> Iterator[None]:
    """Tasks run inline (Celery's eager mode, the embedded default) on every stack: with REDIS_URL set the app would
    otherwise publish to a broker no test worker consumes."""
    from core import broker
    from core.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    broker.reset()
    try:
        yield
    finally:
        app.conf.task_always_eager = previous
        broker.reset()
