import datetime as dt
import io
import json

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from api_gateway.models import ConversationSession
from api_gateway.services.token_monitor import local_day_bounds, token_monitor, tokens_key

pytestmark = pytest.mark.django_db

# (days ago, input tokens, output tokens, nlu source)
SEED = [
    (0, 400, 100, "gemini"),
    (0, 0, 0, "offline"),
    (0, 350, 90, "gemini"),
    (1, 1000, 250, "gemini"),
    (2, 0, 0, "offline"),
    (9, 5000, 900, "gemini"),  # outside a 3-day window
]


def run_tokens(*args: str) -> str:
    out = io.StringIO()
    call_command("tokens", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def seeded(phone):
    session = ConversationSession.objects.create(phone_number=phone)
    today = timezone.localdate()
    for days_ago, i, o, source in SEED:
        start, _ = local_day_bounds(today - dt.timedelta(days=days_ago))
        session.messages.create(
            message_type="user",
            timestamp=start + dt.timedelta(hours=10),
            input_tokens=i,
            output_tokens=o,
            nlu_source=source,
        )
    return today


def expected_day(days_ago: int) -> dict:
    rows = [r for r in SEED if r[0] == days_ago]
    i, o = sum(r[1] for r in rows), sum(r[2] for r in rows)
    return {"input_tokens": i, "output_tokens": o, "total_tokens": i + o, "calls": sum(r[3] == "gemini" for r in rows)}


def test_tokens_reports_daily_totals_calls_and_cost_from_the_database(seeded):
    report = json.loads(run_tokens("--days", "3", "--json"))
    assert [d["date"] for d in report["days"]] == [(seeded - dt.timedelta(days=n)).isoformat() for n in (2, 1, 0)]
    for day, days_ago in zip(report["days"], (2, 1, 0), strict=True):
        expected = expected_day(days_ago)
        assert {k: day[k] for k in expected} == expected
        cost = token_monitor.estimate_cost(
            input_tokens=expected["input_tokens"], output_tokens=expected["output_tokens"]
        )
        assert day["estimated_cost_usd"] == pytest.approx(cost)
    assert report["totals"]["total_tokens"] == sum(expected_day(n)["total_tokens"] for n in (0, 1, 2))


def test_tokens_survive_a_cache_flush_because_they_come_from_the_messages(seeded):
    token_monitor.tokens_used_today()  # the counter exists...
    for alias in ("default", "strict"):
        caches[alias].clear()  # ...and is lost
    today = json.loads(run_tokens("--days", "1", "--json"))["today"]
    assert today["counter_cache"] is None
    assert today["used"] == today["used_database"] == expected_day(0)["total_tokens"]


def test_budget_left_follows_the_live_counter_when_it_is_ahead(seeded, settings):
    settings.GEMINI_DAILY_TOKEN_LIMIT = 10_000
    counter = expected_day(0)["total_tokens"] + 700  # tokens counted but their message not yet saved
    caches["strict"].set(tokens_key(seeded), counter, timeout=600)
    today = json.loads(run_tokens("--json"))["today"]
    assert today["counter_cache"] == counter and today["used"] == counter
    assert today["remaining"] == 10_000 - counter


def test_economy_mode_is_reported_when_the_budget_is_nearly_used(seeded, settings):
    settings.GEMINI_DAILY_TOKEN_LIMIT = expected_day(0)["total_tokens"] + 10
    settings.GEMINI_ECONOMY_THRESHOLD = 0.8
    text = run_tokens("--days", "2")
    assert "modo economia LIGADO" in text
    assert f"restam {settings.GEMINI_DAILY_TOKEN_LIMIT - expected_day(0)['total_tokens']}" in text


def test_an_exhausted_budget_is_reported_as_such(seeded, settings):
    settings.GEMINI_DAILY_TOKEN_LIMIT = 100
    report = json.loads(run_tokens("--json"))
    assert report["today"]["exhausted"] is True and report["today"]["remaining"] == 0
    assert "orçamento esgotado" in run_tokens()


def test_zero_days_is_a_usage_error():
    with pytest.raises(CommandError) as raised:
        run_tokens("--days", "0")
    assert raised.value.returncode == 2
