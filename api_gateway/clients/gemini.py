"""The Gemini wire: the only module that imports google-genai.

- The SDK is imported lazily (it costs ~0.4 s and ~50 MB) and one `genai.Client` is kept per process and per
  (key, base URL, timeout, attempts), so its connection pool is reused across turns.
- The SDK has no timeout and no retry by default; both are set here from settings. Its retry (tenacity)
  covers 429/5xx and httpx2 timeouts/refused connections, with exponential backoff and jitter; it ignores the
  429 RetryInfo delay, which is fine: after the bounded attempts the caller falls back to the offline NLU.
- A blocked, truncated or malformed answer does not raise in the SDK: it comes back in `GeminiResult` and the
  caller decides. Every transport or HTTP failure is one exception, `GeminiUnavailable(reason)`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from core import metrics

logger = logging.getLogger(__name__)

RETRY_STATUS_CODES = [429, 500, 502, 503, 504]
# Short delays: a patient is waiting, and the offline NLU is a fine answer when Gemini is struggling.
RETRY_INITIAL_DELAY_SECONDS = 0.5
RETRY_MAX_DELAY_SECONDS = 2.0
RETRY_JITTER_SECONDS = 0.25
# Gemini 3 models take a thinking level (not a token budget); classification needs no deliberate thinking, and
# thinking tokens are billed as output.
THINKING_LEVEL = "MINIMAL"

FINISH_OK = "STOP"
FINISH_TRUNCATED = "MAX_TOKENS"


class GeminiUnavailable(Exception):
    """Gemini could not be reached or refused the call. `reason`: timeout | connect | rate_limited |
    server_error | client_error."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"Gemini unavailable: {reason}" + (f" ({detail})" if detail else ""))
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class GeminiResult:
    parsed: dict | None
    text: str | None
    finish_reason: str  # "STOP" when complete; "SAFETY", "MAX_TOKENS", ... otherwise; "" when no candidate
    block_reason: str  # prompt_feedback.block_reason ("" when the prompt was not blocked)
    input_tokens: int
    output_tokens: int
    latency_s: float
    model: str = ""
    usage_reported: bool = True  # False when the response carried no usage_metadata

    @property
    def outcome(self) -> str:
        """ok | blocked | truncated | malformed."""
        if self.block_reason:
            return "blocked"
        if self.finish_reason == FINISH_TRUNCATED:
            return "truncated"
        # SAFETY, RECITATION, PROHIBITED_CONTENT, SPII, OTHER...: the model refused to finish.
        if self.finish_reason not in (FINISH_OK, ""):
            return "blocked"
        return "ok" if self.parsed is not None else "malformed"


_clients: dict[tuple, Any] = {}
_clients_lock = threading.Lock()


def gemini_client_reset() -> None:
    """Forget the cached SDK clients (tests that repoint the base URL; key rotation)."""
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        try:
            client.close()
        except Exception:  # noqa: BLE001 - closing a pool must never break the caller
            logger.debug("closing a Gemini client failed", exc_info=True)


def _timeout_ms() -> int:
    return max(1, int(settings.GEMINI_TIMEOUT_SECONDS * 1000))


def _retry_options(types, attempts: int):
    return types.HttpRetryOptions(
        attempts=max(1, attempts),
        initial_delay=RETRY_INITIAL_DELAY_SECONDS,
        max_delay=RETRY_MAX_DELAY_SECONDS,
        jitter=RETRY_JITTER_SECONDS,
        http_status_codes=RETRY_STATUS_CODES,
    )


def _call_options(types, timeout_seconds: float | None, attempts: int | None):
    """Per-call HTTP options on top of the client's (None: the client's own)."""
    if timeout_seconds is None and attempts is None:
        return None
    return types.HttpOptions(
        timeout=max(1, int(timeout_seconds * 1000)) if timeout_seconds is not None else None,
        retry_options=_retry_options(types, attempts) if attempts is not None else None,
    )


def gemini_client():
    """The process-wide SDK client for the current settings."""
    key = (settings.GEMINI_API_KEY, settings.GEMINI_API_BASE_URL, _timeout_ms(), settings.GEMINI_MAX_ATTEMPTS)
    client = _clients.get(key)
    if client is not None:
        return client
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            from google import genai
            from google.genai import types

            client = genai.Client(
                api_key=settings.GEMINI_API_KEY,
                http_options=types.HttpOptions(
                    base_url=settings.GEMINI_API_BASE_URL,
                    timeout=_timeout_ms(),
                    retry_options=_retry_options(types, settings.GEMINI_MAX_ATTEMPTS),
                ),
            )
            _clients[key] = client
    return client


def _transport_errors() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(timeout classes, other transport classes) of httpx2 and, if the SDK was told to use it, httpx."""
    timeouts: list[type] = []
    transport: list[type] = []
    for name in ("httpx2", "httpx"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        timeouts.append(module.TimeoutException)
        transport.append(module.TransportError)
    return tuple(timeouts), tuple(transport)


def _api_error_reason(code: int | None) -> str:
    if code == 429:
        return "rate_limited"
    if code is not None and code >= 500:
        return "server_error"
    return "client_error"


def _enum_name(value: Any) -> str:
    if value is None:
        return ""
    return str(getattr(value, "value", value))


def gemini_generate(
    *,
    model: str,
    system_instruction: str,
    contents: list,
    response_schema: dict,
    max_output_tokens: int,
    timeout_seconds: float | None = None,
    attempts: int | None = None,
) -> GeminiResult:
    """One structured-output call (JSON against `response_schema`, a JSON Schema dict). `contents` are dicts in
    the SDK's shape; a part may carry `inline_data` ({"mime_type", "data": bytes}) such as a voice note.
    `timeout_seconds` and `attempts` override GEMINI_TIMEOUT_SECONDS and GEMINI_MAX_ATTEMPTS for this call (audio
    takes longer than text, and its caller would rather ask the patient to write than retry).

    Raises GeminiUnavailable for timeouts, refused connections and HTTP errors (after the SDK's bounded retries).
    """
    from google.genai import errors, types

    client = gemini_client()
    config = types.GenerateContentConfig(
        system_instruction=system_instruction,
        max_output_tokens=max_output_tokens,
        response_mime_type="application/json",
        response_json_schema=response_schema,
        thinking_config=types.ThinkingConfig(thinking_level=THINKING_LEVEL),
        http_options=_call_options(types, timeout_seconds, attempts),
    )
    timeout_errors, transport_errors = _transport_errors()
    started = time.monotonic()
    try:
        response = client.models.generate_content(model=model, contents=contents, config=config)
    except errors.APIError as exc:
        reason = _api_error_reason(exc.code)
        _observe(model, reason, started)
        raise GeminiUnavailable(reason, f"HTTP {exc.code} {exc.status or ''}".strip()) from exc
    except timeout_errors as exc:
        _observe(model, "timeout", started)
        raise GeminiUnavailable("timeout", type(exc).__name__) from exc
    except transport_errors as exc:
        _observe(model, "connect", started)
        raise GeminiUnavailable("connect", type(exc).__name__) from exc
    latency = time.monotonic() - started

    candidate = response.candidates[0] if response.candidates else None
    feedback = response.prompt_feedback
    usage = response.usage_metadata
    parsed = response.parsed if isinstance(response.parsed, dict) else None
    try:
        text = response.text
    except ValueError:  # the SDK raises on some multi-part shapes; the parsed dict is what matters
        text = None
    result = GeminiResult(
        parsed=parsed,
        text=text,
        finish_reason=_enum_name(candidate.finish_reason) if candidate else "",
        block_reason=_enum_name(feedback.block_reason) if feedback else "",
        input_tokens=(usage.prompt_token_count or 0) if usage else 0,
        output_tokens=((usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)) if usage else 0,
        latency_s=latency,
        model=model,
        usage_reported=usage is not None,
    )
    metrics.GEMINI_CALLS.labels(model, result.outcome).inc()
    metrics.GEMINI_LATENCY.labels(model).observe(latency)
    return result


def _observe(model: str, outcome: str, started: float) -> None:
    metrics.GEMINI_CALLS.labels(model, outcome).inc()
    metrics.GEMINI_LATENCY.labels(model).observe(time.monotonic() - started)
