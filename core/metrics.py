"""Prometheus metrics, defined once here and incremented where things happen."""

from prometheus_client import Counter, Gauge, Histogram

HTTP_DURATION = Histogram(
    "http_request_duration_seconds", "HTTP request duration by route", ["route", "method", "status"]
)
WEBHOOK_MESSAGES = Counter("webhook_messages_total", "Inbound WhatsApp items by type and outcome", ["type", "outcome"])
WEBHOOK_DUPLICATES = Counter("webhook_duplicates_total", "Inbound WhatsApp messages skipped as duplicates")
CACHE_EVENTS = Counter("cache_events_total", "Cache hits and misses", ["cache", "backend", "event"])
CACHE_SIZE = Gauge("cache_keys", "Keys per cache family (sampled on scrape)", ["family", "backend"])
GEMINI_CALLS = Counter("gemini_calls_total", "Gemini calls by outcome", ["model", "outcome"])
VOICE_NOTES = Counter("voice_notes_total", "Voice notes by outcome (transcribed, or why not)", ["outcome"])
GEMINI_LATENCY = Histogram("gemini_latency_seconds", "Gemini call latency", ["model"])
TOKENS = Counter("llm_tokens_total", "LLM tokens by type", ["type"])
COST = Counter("llm_estimated_cost_usd_total", "Estimated LLM cost in US dollars")
BOOKINGS = Counter("bookings_total", "Appointments by action and outcome", ["action", "outcome"])
HANDOFFS = Counter("handoffs_total", "Sessions handed to a human")
EMERGENCY_WARNINGS = Counter("emergency_warnings_total", "Replies that warned of an emergency", ["kind"])
TURNS = Counter("turns_total", "Conversation turns by NLU source", ["nlu"])
OUTBOUND = Counter("whatsapp_outbound_total", "Outbound WhatsApp sends by outcome", ["outcome"])
REDIS_BREAKER_TRIPS = Counter("redis_breaker_trips_total", "Times a Redis breaker opened", ["server"])
SWEEPER = Counter("sweeper_messages_total", "Messages the sweeper re-enqueued or failed", ["outcome"])

# Process-local hit/miss tallies, for `cache stats` and the admin cache page (Prometheus has the same).
_cache_tally: dict[tuple[str, str], int] = {}


def cache_event(family: str, event: str) -> None:
    """Count a cache 'hit' or 'miss' for a key family ('session', 'clinic', 'doctor', 'idempotency')."""
    from django.conf import settings

    CACHE_EVENTS.labels(family, settings.CACHE_BACKEND_NAME, event).inc()
    _cache_tally[(family, event)] = _cache_tally.get((family, event), 0) + 1


def cache_tally() -> dict[tuple[str, str], int]:
    return dict(_cache_tally)
