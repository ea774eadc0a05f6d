"""Session access: session_manager.get_or_start on a cache hit vs a cache miss vs a direct database read.

    python -m bench.session_access [--small] [--json out.json] [--operations N]

The cache is whichever the environment selects (LocMem without REDIS_URL, Redis with it); run it twice to compare
them (bench/README.md has both). Each operation is timed alone with perf_counter:

  hit       get_or_start(phone) with the session in the cache (one cache GET, no query)
  miss      get_or_start(phone) after the key was deleted (untimed): one cache GET, one SELECT, one cache SET
  database  ConversationSession.objects.get(phone_number=phone): the read the cache replaces
  raw_get   caches["default"].get(key) alone: the floor under "hit" (unpickling + one round-trip on Redis)

Operations rotate over a pool of phones (sessions created beforehand), interleaving the three kinds so that
background noise falls on all of them alike.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

PHONES = 200
TARGET_REDIS_HIT_MEDIAN_MS = 0.3


def main(argv: list[str] | None = None) -> common.Report:
    parser = common.arg_parser(__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=None, help="operations of each kind")
    args = parser.parse_args(argv)
    common.bootstrap()
    report = common.Report(benchmark="session_access", small=args.small)
    operations = args.operations or (300 if args.small else 5000)

    with common.bench_database("session_access", migrate=not args.small), common.cache_cleanup():
        from django.conf import settings
        from django.core.cache import caches

        from api_gateway.models import ConversationSession
        from api_gateway.services.session_cache import session_key, session_manager

        phones = [f"5511977{i:06d}" for i in range(PHONES)]
        for phone in phones:
            session_manager.get_or_start(phone=phone)
        cache = caches["default"]
        samples: dict[str, list[float]] = {"hit": [], "miss": [], "database": [], "raw_get": []}
        perf = time.perf_counter
        for i in range(operations + 50):
            phone = phones[i % PHONES]
            warm = i < 50  # first calls open connections and fill code caches
            started = perf()
            session = session_manager.get_or_start(phone=phone)
            hit = perf() - started
            started = perf()
            raw = cache.get(session_key(phone))
            raw_get = perf() - started
            session_manager.invalidate(phone=phone)
            started = perf()
            missed = session_manager.get_or_start(phone=phone)
            miss = perf() - started
            started = perf()
            from_db = ConversationSession.objects.get(phone_number=phone)
            database = perf() - started
            if raw is None or not (session.pk == missed.pk == from_db.pk):
                report.errors.append(f"operation {i}: inconsistent session read for phone …{phone[-4:]}")
            if not warm:
                samples["hit"].append(hit)
                samples["raw_get"].append(raw_get)
                samples["miss"].append(miss)
                samples["database"].append(database)

        stats = {kind: common.summarize_ms(values) for kind, values in samples.items()}
        backend = settings.CACHE_BACKEND_NAME
        report.results = {"cache_backend": backend, "operations": operations, "stats": stats}
        hit_median = stats["hit"]["median_ms"]
        report.results["miss_over_hit"] = round(stats["miss"]["median_ms"] / hit_median, 2)
        report.results["database_over_hit"] = round(stats["database"]["median_ms"] / hit_median, 2)
        common.print_table(
            f"Session access ({common.stack_label()}), {operations} operations each",
            ["operation", "median ms", "p99 ms", "mean ms", "x hit (median)"],
            [
                [kind, s["median_ms"], s["p99_ms"], s["mean_ms"], round(s["median_ms"] / hit_median, 2)]
                for kind, s in stats.items()
            ],
        )
        report.target(
            "Redis hit median",
            goal=f"< {TARGET_REDIS_HIT_MEDIAN_MS} ms",
            value=f"{hit_median:.4f} ms ({backend})",
            met=(hit_median < TARGET_REDIS_HIT_MEDIAN_MS) if backend == "redis" else None,
        )
    return report


if __name__ == "__main__":
    sys.exit(common.run(main))
