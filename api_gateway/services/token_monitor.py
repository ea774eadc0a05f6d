"""TokenMonitor: today's Gemini token use, the daily budget and economy mode.

The fast counter is `gemini_tokens_{YYYY-MM-DD}` (clinic-local date) on the strict cache, incremented
atomically. The durable record is the per-message token columns: a missing counter (flush, restart) is rebuilt
from today's messages, so a cache loss never resets the budget.
"""

import datetime as dt
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.db.models import Sum
from django.utils import timezone

from core import metrics

logger = logging.getLogger(__name__)

TOKENS_KEY_PREFIX = "gemini_tokens_"
MIN_CACHE_TIMEOUT = 15 * 60
MAX_CACHE_TIMEOUT = 60 * 60
TIMEOUT_MEMO_SECONDS = 30


def tokens_key(day: dt.date) -> str:
    return f"{TOKENS_KEY_PREFIX}{day:%Y-%m-%d}"


def local_day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_default_timezone()
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    return start, dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz)


@dataclass(frozen=True)
class BudgetStatus:
    used: int
    limit: int

    @property
    def ratio(self) -> float:
        return self.used / self.limit if self.limit > 0 else 1.0

    @property
    def economy(self) -> bool:
        return self.ratio >= settings.GEMINI_ECONOMY_THRESHOLD

    @property
    def exhausted(self) -> bool:
        return self.ratio >= 1.0

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


class TokenMonitor:
    def __init__(self, cache_alias: str = "strict"):
        self.cache_alias = cache_alias
        self._timeout_memo: tuple[float, int] = (0.0, MIN_CACHE_TIMEOUT)

    @property
    def cache(self):
        return caches[self.cache_alias]

    def tokens_from_database(self, day: dt.date) -> int:
        from api_gateway.models import ConversationMessage

        start, end = local_day_bounds(day)
        totals = ConversationMessage.objects.filter(timestamp__gte=start, timestamp__lt=end).aggregate(
            i=Sum("input_tokens"), o=Sum("output_tokens")
        )
        return (totals["i"] or 0) + (totals["o"] or 0)

    def _seconds_to_local_midnight(self) -> int:
        now = timezone.localtime()
        _, end = local_day_bounds(now.date())
        return max(1, int((end - now).total_seconds()))

    def _ensure_counter(self, day: dt.date) -> int:
        """Return today's counter, rebuilding it from the database when the cache lost it."""
        key = tokens_key(day)
        value = self.cache.get(key)
        if value is None:
            rebuilt = self.tokens_from_database(day)
            self.cache.add(key, rebuilt, timeout=self._seconds_to_local_midnight())  # NX: a racing rebuild wins
            value = self.cache.get(key, rebuilt)
            logger.info("token counter for %s rebuilt from the database: %d", day, value)
        return int(value)

    def tokens_used_today(self) -> int:
        day = timezone.localdate()
        try:
            return self._ensure_counter(day)
        except Exception:  # noqa: BLE001 - strict cache down: the database is the durable record
            logger.warning("token counter unavailable (cache error); reading today's total from the database")
            return self.tokens_from_database(day)

    def record_usage(self, *, input_tokens: int, output_tokens: int) -> None:
        total = max(0, input_tokens) + max(0, output_tokens)
        metrics.TOKENS.labels("input").inc(max(0, input_tokens))
        metrics.TOKENS.labels("output").inc(max(0, output_tokens))
        metrics.COST.inc(self.estimate_cost(input_tokens=input_tokens, output_tokens=output_tokens))
        if total == 0:
            return
        day = timezone.localdate()
        try:
            self._ensure_counter(day)
            self.cache.incr(tokens_key(day), total)
        except ValueError:  # expired between the two calls: rebuild on the next read
            logger.info("token counter expired during increment; it will be rebuilt")
        except Exception:  # noqa: BLE001 - the per-message columns still record these tokens
            logger.warning("token counter increment failed (cache error); the database keeps the record")

    def status(self) -> BudgetStatus:
        return BudgetStatus(used=self.tokens_used_today(), limit=settings.GEMINI_DAILY_TOKEN_LIMIT)

    def is_economy_mode(self) -> bool:
        return self.status().economy

    def get_cache_timeout(self, status: BudgetStatus | None = None) -> int:
        """Cache timeout in seconds: 15 minutes at the start of the day, growing to 60 as the budget is used.

        The closer the clinic is to its budget, the longer sessions and clinic facts stay cached, so a busy day
        rebuilds less. Without an explicit status the answer is reused for TIMEOUT_MEMO_SECONDS: it only picks an
        expiry, and every session save asks for it, so it must not cost a cache round trip each time.
        """
        if status is None:
            expires, value = self._timeout_memo
            if time.monotonic() < expires:
                return value
        value = self._timeout_for(status or self.status())
        if status is None:
            self._timeout_memo = (time.monotonic() + TIMEOUT_MEMO_SECONDS, value)
        return value

    @staticmethod
    def _timeout_for(status: BudgetStatus) -> int:
        share = min(1.0, status.ratio / max(settings.GEMINI_ECONOMY_THRESHOLD, 0.01))
        return int(MIN_CACHE_TIMEOUT + (MAX_CACHE_TIMEOUT - MIN_CACHE_TIMEOUT) * share)

    @staticmethod
    def estimate_cost(*, input_tokens: int, output_tokens: int) -> float:
        return (
            input_tokens * settings.GEMINI_PRICE_INPUT_PER_MTOK + output_tokens * settings.GEMINI_PRICE_OUTPUT_PER_MTOK
        ) / 1_000_000


token_monitor = TokenMonitor()
