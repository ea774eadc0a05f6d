"""A local fake of the Gemini API (generativelanguage.googleapis.com) that speaks the real wire format.

The real google-genai SDK is pointed at it through settings.GEMINI_API_BASE_URL, so tests, reliability runs and
benchmarks exercise the same client code as production. It runs a ThreadingHTTPServer on 127.0.0.1 (port 0)
in a daemon thread and records every request.

Behaviour is scripted with `FakeAnswer` values built by the helpers below:

    with FakeGeminiServer() as server:
        server.enqueue(answer_json({"intent": "agendar", "confidence": 0.9, "entities": {}}))
        server.enqueue(answer_error(503), answer_error(503))   # the next two requests fail
        server.default = answer_json({...})                      # used when the queue is empty
        server.responder = lambda request: answer_json(...)      # or decide from the request itself

In pytest, use the `fake_gemini` fixture: `from tests.fakes.gemini_server import fake_gemini  # noqa: F401`
works, but ruff then flags every test parameter named fake_gemini (F811); binding it as a plain module name avoids
that: `from tests.fakes import gemini_server` and `fake_gemini = gemini_server.fake_gemini`.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

# SDK 3.4.0 (Gemini Developer API) posts to /v1beta/models/{model}:generateContent; /v1/ is accepted too.
_PATH_RE = re.compile(r"^/(?P<version>v1(?:beta|alpha)?)/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$")

FAKE_API_KEY = "fake-gemini-test-key"


@dataclass
class FakeAnswer:
    """One scripted response. `kind`: json | text | blocked | prompt_blocked | truncated | error."""

    kind: str = "json"
    data: dict | None = None
    text: str = ""
    status: int = 200
    finish_reason: str = "STOP"
    block_reason: str = ""
    retry_delay: str = ""
    delay: float = 0.0  # seconds to sleep before answering (for timeouts)
    output_tokens: int | None = None
    with_usage: bool = True  # False: no usageMetadata in the response (the caller must estimate)


def answer_json(
    data: dict, *, delay: float = 0.0, output_tokens: int | None = None, with_usage: bool = True
) -> FakeAnswer:
    return FakeAnswer(kind="json", data=data, delay=delay, output_tokens=output_tokens, with_usage=with_usage)


def answer_text(text: str, *, delay: float = 0.0) -> FakeAnswer:
    """A STOP answer whose text is returned verbatim (use it for malformed JSON)."""
    return FakeAnswer(kind="text", text=text, delay=delay)


def answer_blocked(*, finish_reason: str = "SAFETY", delay: float = 0.0) -> FakeAnswer:
    """The candidate was stopped by a safety filter: no content parts, finishReason SAFETY."""
    return FakeAnswer(kind="blocked", finish_reason=finish_reason, delay=delay)


def answer_prompt_blocked(*, block_reason: str = "SAFETY", delay: float = 0.0) -> FakeAnswer:
    """The prompt itself was blocked: no candidates, promptFeedback.blockReason set."""
    return FakeAnswer(kind="prompt_blocked", block_reason=block_reason, delay=delay)


def answer_truncated(*, text: str = '{"intent": "agen', delay: float = 0.0) -> FakeAnswer:
    """The answer hit maxOutputTokens: partial text, finishReason MAX_TOKENS."""
    return FakeAnswer(kind="truncated", text=text, finish_reason="MAX_TOKENS", delay=delay)


def answer_error(status: int, *, retry_delay: str = "7s", delay: float = 0.0) -> FakeAnswer:
    """An HTTP error with Google's error body (429 carries a RetryInfo detail)."""
    return FakeAnswer(kind="error", status=status, retry_delay=retry_delay, delay=delay)


def answer_slow(seconds: float, then: FakeAnswer | None = None) -> FakeAnswer:
    """`then` (a default JSON answer if omitted) delivered after `seconds`."""
    base = then or answer_json({"intent": "desconhecido", "confidence": 0.0, "entities": {}})
    return FakeAnswer(**{**base.__dict__, "delay": seconds})


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict
    model: str = ""
    action: str = ""
    api_version: str = ""

    @property
    def api_key(self) -> str:
        return self.headers.get("x-goog-api-key", "")

    def texts(self) -> list[str]:
        """Every text part of the request: system instruction first, then the contents in order."""
        found: list[str] = []
        system = self.body.get("systemInstruction") or self.body.get("system_instruction") or {}
        found.extend(part.get("text", "") for part in system.get("parts", []))
        for content in self.body.get("contents", []):
            found.extend(part.get("text", "") for part in content.get("parts", []))
        return found

    def inline_data(self) -> list[tuple[str, bytes]]:
        """(mime type, bytes) of every inline part (audio, images) of the contents."""
        import base64

        found = []
        for content in self.body.get("contents", []):
            for part in content.get("parts", []):
                blob = part.get("inlineData") or part.get("inline_data")
                if blob:
                    data = base64.urlsafe_b64decode(
                        blob["data"].replace("+", "-").replace("/", "_")
                    )  # the SDK sends urlsafe
                    found.append((blob.get("mimeType") or blob.get("mime_type", ""), data))
        return found

    @property
    def prompt_chars(self) -> int:
        return sum(len(text) for text in self.texts())

    @property
    def generation_config(self) -> dict:
        return self.body.get("generationConfig") or {}


def estimate_tokens(chars: int) -> int:
    """Gemini averages ~4 characters per token for Portuguese/English text; good enough for a fake."""
    return max(1, (chars + 3) // 4)


_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class FakeGeminiServer:
    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.default: FakeAnswer = answer_json({"intent": "desconhecido", "confidence": 0.0, "entities": {}})
        self.responder: Callable[[RecordedRequest], FakeAnswer | None] | None = None
        self.model_version = "fake-gemini"
        self._queue: deque[FakeAnswer] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> FakeGeminiServer:
        handler = _make_handler(self)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-gemini", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a slow answer
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeGeminiServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "the fake Gemini server is not running"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # --- scripting ------------------------------------------------------------------------------------
    def enqueue(self, *answers: FakeAnswer) -> None:
        with self._lock:
            self._queue.extend(answers)

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()

    @property
    def generate_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.action == "generateContent"]

    def _record_and_choose(self, request: RecordedRequest) -> FakeAnswer:
        with self._lock:
            self.requests.append(request)
            if self._queue:
                return self._queue.popleft()
        if self.responder is not None:
            chosen = self.responder(request)
            if chosen is not None:
                return chosen
        return self.default

    # --- wire format ----------------------------------------------------------------------------------
    def build_response(self, request: RecordedRequest, answer: FakeAnswer) -> tuple[int, dict]:
        # Audio: 32 tokens a second, as Gemini bills it; ~2 kB a second for a WhatsApp (Opus) voice note.
        audio_bytes = sum(len(data) for mime, data in request.inline_data() if mime.startswith("audio/"))
        prompt_tokens = estimate_tokens(request.prompt_chars) + audio_bytes * 32 // 2000
        if answer.kind == "error":
            return answer.status, self._error_body(answer)
        if answer.kind == "prompt_blocked":
            return 200, {
                "promptFeedback": {"blockReason": answer.block_reason},
                "usageMetadata": {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens},
                "modelVersion": self.model_version,
            }
        if answer.kind == "blocked":
            candidate = {
                "finishReason": answer.finish_reason,
                "safetyRatings": [
                    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
                ],
            }
            output_text = ""
        else:
            if answer.kind == "json":
                output_text = json.dumps(answer.data or {}, ensure_ascii=False)
            else:
                output_text = answer.text
            candidate = {
                "content": {"parts": [{"text": output_text}], "role": "model"},
                "finishReason": answer.finish_reason,
            }
        output_tokens = answer.output_tokens if answer.output_tokens is not None else estimate_tokens(len(output_text))
        if answer.kind == "blocked":
            output_tokens = 0
        payload: dict = {"candidates": [candidate], "modelVersion": self.model_version}
        if answer.with_usage:
            payload["usageMetadata"] = {
                "promptTokenCount": prompt_tokens,
                "candidatesTokenCount": output_tokens,
                "totalTokenCount": prompt_tokens + output_tokens,
            }
        return 200, payload

    @staticmethod
    def _error_body(answer: FakeAnswer) -> dict:
        status_name = _STATUS_NAMES.get(answer.status, "UNKNOWN")
        error: dict = {"code": answer.status, "message": f"fake error {answer.status}", "status": status_name}
        if answer.status == 429:
            error["message"] = "You exceeded your current quota, please check your plan and billing details."
            error["details"] = [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": answer.retry_delay or "7s"}
            ]
        return {"error": error}

    def count_tokens_response(self, request: RecordedRequest) -> dict:
        return {"totalTokens": estimate_tokens(request.prompt_chars)}

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)


def _make_handler(server: FakeGeminiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; without this, Nagle + delayed ACK add ~40 ms per keep-alive call.
        disable_nagle_algorithm = True

        def log_message(self, format, *args):  # noqa: A002 - keep test output quiet
            return

        def do_POST(self):  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                body = {"_raw": raw.decode("utf-8", "replace")}
            path = self.path.split("?", 1)[0]
            match = _PATH_RE.match(path)
            request = RecordedRequest(
                method="POST",
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body if isinstance(body, dict) else {"_raw": body},
                model=match["model"] if match else "",
                action=match["method"] if match else "",
                api_version=match["version"] if match else "",
            )
            if match is None or request.action not in {"generateContent", "countTokens"}:
                with server._lock:
                    server.requests.append(request)
                self._send(404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})
                return
            if request.action == "countTokens":
                with server._lock:
                    server.requests.append(request)
                self._send(200, server.count_tokens_response(request))
                return
            answer = server._record_and_choose(request)
            server.sleep(answer.delay)
            status, payload = server.build_response(request, answer)
            self._send(status, payload)

        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload, ensure_ascii=False).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout): nothing to answer

    return Handler


@pytest.fixture
def fake_gemini(settings) -> Iterator[FakeGeminiServer]:
    """A running fake Gemini with the settings pointed at it (key set, 1 s timeout) and a fresh SDK client."""
    from api_gateway.clients.gemini import gemini_client_reset

    with FakeGeminiServer() as server:
        settings.GEMINI_API_KEY = FAKE_API_KEY
        settings.GEMINI_API_BASE_URL = server.base_url
        settings.GEMINI_TIMEOUT_SECONDS = 1.0
        gemini_client_reset()
        yield server
    gemini_client_reset()


__all__ = [
    "FAKE_API_KEY",
    "FakeAnswer",
    "FakeGeminiServer",
    "RecordedRequest",
    "answer_blocked",
    "answer_error",
    "answer_json",
    "answer_prompt_blocked",
    "answer_slow",
    "answer_text",
    "answer_truncated",
    "estimate_tokens",
    "fake_gemini",
]
