import datetime as dt

import pytest
from django.core.cache import caches
from django.utils import timezone

from api_gateway.models import ConversationMessage, ConversationSession
from api_gateway.services.token_monitor import (
    MAX_CACHE_TIMEOUT,
    MIN_CACHE_TIMEOUT,
    BudgetStatus,
    TokenMonitor,
    tokens_key,
)

pytestmark = pytest.mark.django_db


def _message_with_tokens(phone: str, input_tokens: int, output_tokens: int, when=None) -> None:
    session, _ = ConversationSession.objects.get_or_create(phone_number=phone)
    ConversationMessage.objects.create(
        session=session,
        message_type="bot",
        content="x",
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        timestamp=when or timezone.now(),
    )


def test_usage_is_counted_atomically_under_todays_local_date_key():
    monitor = TokenMonitor()
    monitor.record_usage(input_tokens=100, output_tokens=20)
    monitor.record_usage(input_tokens=5, output_tokens=5)
    assert monitor.tokens_used_today() == 130
    assert caches["strict"].get(tokens_key(timezone.localdate())) == 130


def test_counter_is_rebuilt_from_todays_messages_after_a_flush(phone):
    _message_with_tokens(phone, 1000, 200)
    _message_with_tokens(phone, 300, 0, when=timezone.now() - dt.timedelta(days=2))  # not today
    monitor = TokenMonitor()
    assert monitor.tokens_used_today() == 1200
    caches["strict"].clear()
    _message_with_tokens(phone, 50, 50)
    assert monitor.tokens_used_today() == 1300  # rebuilt, not reset to zero


def test_economy_mode_and_exhaustion_follow_the_configured_limit(settings):
    settings.GEMINI_DAILY_TOKEN_LIMIT = 1000
    settings.GEMINI_ECONOMY_THRESHOLD = 0.8
    monitor = TokenMonitor()
    monitor.record_usage(input_tokens=799, output_tokens=0)
    assert not monitor.status().economy
    monitor.record_usage(input_tokens=1, output_tokens=0)
    assert monitor.status().economy and not monitor.status().exhausted
    monitor.record_usage(input_tokens=200, output_tokens=0)
    assert monitor.status().exhausted
    assert monitor.status().remaining == 0


def test_cache_timeout_adapts_between_15_and_60_minutes(settings):
    settings.GEMINI_ECONOMY_THRESHOLD = 0.8
    monitor = TokenMonitor()
    assert monitor.get_cache_timeout(BudgetStatus(used=0, limit=1000)) == MIN_CACHE_TIMEOUT == 900
    middle = monitor.get_cache_timeout(BudgetStatus(used=400, limit=1000))
    assert MIN_CACHE_TIMEOUT < middle < MAX_CACHE_TIMEOUT
    assert monitor.get_cache_timeout(BudgetStatus(used=950, limit=1000)) == MAX_CACHE_TIMEOUT == 3600


def test_cost_estimate_uses_configured_prices(settings):
    settings.GEMINI_PRICE_INPUT_PER_MTOK = 1.0
    settings.GEMINI_PRICE_OUTPUT_PER_MTOK = 2.0
    assert TokenMonitor.estimate_cost(input_tokens=1_000_000, output_tokens=500_000) == pytest.approx(2.0)


def test_cache_timeout_is_reused_briefly_instead_of_read_on_every_save(settings):
    settings.GEMINI_DAILY_TOKEN_LIMIT = 1000
    settings.GEMINI_ECONOMY_THRESHOLD = 0.8
    monitor = TokenMonitor()
    assert monitor.get_cache_timeout() == MIN_CACHE_TIMEOUT
    monitor.record_usage(input_tokens=900, output_tokens=0)
    assert monitor.get_cache_timeout() == MIN_CACHE_TIMEOUT  # memoised for a few seconds
    monitor._timeout_memo = (0.0, 0)  # the memo expired
    assert monitor.get_cache_timeout() == MAX_CACHE_TIMEOUT
