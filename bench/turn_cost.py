"""Cost of one conversation turn without the LLM: database queries, cache operations and time per turn.

    python -m bench.turn_cost [--small] [--json out.json] [--iterations N]

Runs `turn_handle` (the real engine, offline NLU: GEMINI_API_KEY is blanked) on a throw-away database seeded with
the demo clinic, in four scenarios:

  cold_question       a new phone asks "qual o endereço?"-like questions (no session anywhere yet)
  warm_question       a phone whose session is cached asks a question answered from the clinic's data
  warm_booking_step   a cached session in "selecting_doctor" picks "o segundo" and gets that doctor's free slots
  warm_booking_book   a cached session in "confirming" says "sim": the appointment is booked

each in three cache variants:

  cache               the normal path
  session_uncached    the session key is deleted before the timed turn, so the session is read from the database
                      (the clinic catalogue stays cached): what the session cache alone saves
  no_cache            the "default" alias is a DummyCache: session, catalogue and doctor entries all come from the
                      database every time (locks, token counter and rate limits stay on "strict")

Counts come from a few instrumented turns (CaptureQueriesContext + a counting proxy on both cache aliases); times
from the other, uninstrumented turns. Preparation turns (reaching the scenario's state) are never timed. The
cells run round-robin, one turn each in turn, so that load from other processes falls on all of them alike.
"""

from __future__ import annotations

import contextlib
import itertools
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

COUNTED_TURNS = 5
WARMUP_TURNS = 3
QUESTIONS = ["qual o endereço?", "quanto custa o hemograma?", "vocês aceitam unimed para cardiologia?"]
VARIANTS = ("cache", "session_uncached", "no_cache")
SCENARIOS = ("cold_question", "warm_question", "warm_booking_step", "warm_booking_book")
TARGET_WARM_MAX_WRITES = 3
TARGET_WARM_P50_MS = 10.0


@contextlib.contextmanager
def cache_variant(variant: str):
    """For no_cache, put a DummyCache in place of the "default" alias's backend for this thread, then put the
    original instance back (so its connection pool is reused, unlike override_settings, which rebuilds it)."""
    if variant != "no_cache":
        yield
        return
    from django.core.cache import caches
    from django.core.cache.backends.dummy import DummyCache

    from rag_agent import selectors

    original = caches["default"]
    # Without a cache every catalogue read rebuilds it, replacing this process's catalogue copy; keep the cached
    # variants' copy aside, as if no_cache ran in another process, so round-robin cells do not thrash it.
    memo = selectors._catalog_memo
    caches["default"] = DummyCache("bench", {})
    try:
        yield
    finally:
        caches["default"] = original
        selectors._catalog_memo = memo


class Scenario:
    """Prepares a phone in the scenario's state (untimed) and returns the text of the timed turn."""

    def __init__(self, name: str, variant: str, index: int):
        self.name, self.variant, self.index = name, variant, index
        self._counter = itertools.count()

    def phone(self, i: int) -> str:
        return f"55119{self.index}{VARIANTS.index(self.variant)}{i:07d}"

    def prepare(self, i: int) -> tuple[str, str, str]:
        """(phone, text of the timed turn, state expected after it)."""
        from api_gateway.services.conversation import turn_handle

        if self.name == "cold_question":
            return self.phone(i), QUESTIONS[i % len(QUESTIONS)], "idle"
        if self.name == "warm_question":
            phone = self.phone(0)  # one patient asking question after question
            if i == 0:
                turn_handle(phone=phone, text="oi")
            return phone, QUESTIONS[i % len(QUESTIONS)], "idle"
        phone = self.phone(i)
        if self.name == "warm_booking_step":
            result = turn_handle(phone=phone, text="quero marcar pediatria particular, meu nome é Rita Souza")
            _expect(result.state, "selecting_doctor", phone)
            return phone, "o segundo", "choosing_date"
        # warm_booking_book: Clínica Geral, first doctor, first free slot, then the timed "sim".
        for text, state in (
            ("quero marcar clínica geral particular, meu nome é Paula Lima", "selecting_doctor"),
            ("o primeiro", "choosing_date"),
            ("o primeiro", "confirming"),
        ):
            _expect(turn_handle(phone=phone, text=text).state, state, phone)
        return phone, "sim", "idle"


def _expect(state: str, expected: str, phone: str) -> None:
    if state != expected:
        raise common.CannotMeasure(f"preparation reached state {state!r}, expected {expected!r} (phone …{phone[-4:]})")


class Cell:
    """One scenario in one cache variant: its samples and counts."""

    def __init__(self, name: str, variant: str, iterations: int):
        self.name, self.variant, self.iterations = name, variant, iterations
        self.scenario = Scenario(name, variant, SCENARIOS.index(name))
        self.samples: list[float] = []
        self.counts: list[dict] = []

    def turn(self, i: int, report: common.Report, *, warmup: int, counted: int) -> None:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from api_gateway.services.conversation import turn_handle
        from api_gateway.services.session_cache import session_manager

        with cache_variant(self.variant):
            phone, text, expected_state = self.scenario.prepare(i)
            if self.variant == "session_uncached":
                session_manager.invalidate(phone=phone)
            try:
                if warmup <= i < warmup + counted:
                    with CaptureQueriesContext(connection) as ctx, common.CacheOpCounter() as ops:
                        result = turn_handle(phone=phone, text=text)
                    kinds = common.query_kinds(ctx.captured_queries)
                    self.counts.append({**kinds, "cache_ops": ops.total, "cache_by_op": dict(ops.counts)})
                else:
                    started = time.perf_counter()
                    result = turn_handle(phone=phone, text=text)
                    elapsed = time.perf_counter() - started
                    if i >= warmup:
                        self.samples.append(elapsed)
            except Exception as exc:  # noqa: BLE001 - counted and reported; the run exits non-zero
                report.errors.append(f"{self.name}/{self.variant} turn {i}: {type(exc).__name__}: {exc}")
                return
        if result.state != expected_state:
            report.errors.append(
                f"{self.name}/{self.variant} turn {i}: state {result.state!r}, expected {expected_state!r}"
            )

    def summary(self) -> dict:
        if not self.counts or not self.samples:
            raise common.CannotMeasure(f"{self.name}/{self.variant}: no successful turns to measure")
        counts = self.counts
        # Counts are identical turn to turn in a cell; the max is reported so an odd extra query is not hidden.
        merged_ops: dict[str, int] = {}
        for c in counts:
            for op, n in c["cache_by_op"].items():
                merged_ops[op] = max(merged_ops.get(op, 0), n)
        return {
            "db_reads": max(c["read"] for c in counts),
            "db_writes": max(c["write"] for c in counts),
            "db_tx_statements": max(c["tx"] for c in counts),
            "cache_ops": max(c["cache_ops"] for c in counts),
            "cache_ops_by_kind": merged_ops,
            "counts_min_max_equal": len({(c["read"], c["write"], c["cache_ops"]) for c in counts}) == 1,
            "time": common.summarize_ms(self.samples),
        }


def run_cells(cells: list[Cell], report: common.Report, *, warmup: int, counted: int) -> None:
    """Round-robin over the cells, one turn each, so that background load falls on every cell alike."""
    longest = max(cell.iterations for cell in cells)
    for i in range(warmup + counted + longest):
        for cell in cells:
            if i < warmup + counted + cell.iterations:
                cell.turn(i, report, warmup=warmup, counted=counted)


def main(argv: list[str] | None = None) -> common.Report:
    parser = common.arg_parser(__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=None, help="timed turns per scenario and variant")
    args = parser.parse_args(argv)
    common.bootstrap()
    report = common.Report(benchmark="turn_cost", small=args.small)
    iterations = args.iterations or (5 if args.small else 300)
    book_iterations = 3 if args.small else max(3, min(60, iterations))
    warmup, counted = (1, 2) if args.small else (WARMUP_TURNS, COUNTED_TURNS)

    with common.bench_database("turn_cost", migrate=not args.small), common.cache_cleanup():
        from rag_agent.demo import seed_demo_clinic

        seed_demo_clinic()
        print(f"turn_cost on {common.stack_label()}: {iterations} timed turns per cell ({book_iterations} for booking)")
        cells = [
            Cell(name, variant, book_iterations if name == "warm_booking_book" else iterations)
            for name in SCENARIOS
            for variant in VARIANTS
            # a new phone has nothing cached: "session_uncached" would be identical to "cache"
            if not (name == "cold_question" and variant == "session_uncached")
        ]
        run_cells(cells, report, warmup=warmup, counted=counted)
        results: dict[str, dict] = {}
        for cell in cells:
            results.setdefault(cell.name, {})[cell.variant] = cell.summary()
    report.results = {"scenarios": results, "iterations": iterations, "book_iterations": book_iterations}

    rows = []
    for name, variants in results.items():
        for variant, r in variants.items():
            t = r["time"]
            rows.append(
                [name, variant, r["db_reads"], r["db_writes"], r["cache_ops"], t["median_ms"], t["p95_ms"], t["n"]]
            )
    common.print_table(
        f"Cost of one turn, offline NLU ({common.stack_label()})",
        ["scenario", "variant", "db reads", "db writes", "cache ops", "p50 ms", "p95 ms", "n"],
        rows,
    )
    ops_rows = [
        [name, variant, " ".join(f"{k}={v}" for k, v in sorted(r["cache_ops_by_kind"].items()))]
        for name, variants in results.items()
        for variant, r in variants.items()
    ]
    common.print_table("Cache operations per turn, by kind (both aliases)", ["scenario", "variant", "ops"], ops_rows)

    warm = results["warm_question"]["cache"]
    report.target(
        "warm non-booking turn: database reads",
        goal="0",
        value=warm["db_reads"],
        met=warm["db_reads"] == 0,
    )
    report.target(
        "warm non-booking turn: database writes",
        goal=f"<= {TARGET_WARM_MAX_WRITES}",
        value=warm["db_writes"],
        met=warm["db_writes"] <= TARGET_WARM_MAX_WRITES,
    )
    from django.conf import settings

    on_production_stack = settings.IS_POSTGRES and bool(settings.REDIS_URL)
    report.target(
        "warm non-booking turn p50 (PostgreSQL + Redis)",
        goal=f"< {TARGET_WARM_P50_MS} ms",
        value=f"{warm['time']['median_ms']:.2f} ms on {common.stack_label()}",
        met=(warm["time"]["median_ms"] < TARGET_WARM_P50_MS) if on_production_stack else None,
    )
    for name in ("warm_question", "warm_booking_step"):
        cells = results[name]
        cached = cells["cache"]["time"]["median_ms"]
        speedups = {v: round(cells[v]["time"]["median_ms"] / cached, 2) for v in cells if v != "cache"}
        report.results.setdefault("speedup_vs_cache_p50", {})[name] = speedups
        report.notes.append(f"{name}: p50 without the cache is " + ", ".join(f"{k} {v}x" for k, v in speedups.items()))
    reads_saved = {
        name: {v: cells[v]["db_reads"] for v in cells} for name, cells in results.items() if "no_cache" in cells
    }
    report.results["db_reads_by_variant"] = reads_saved
    report.notes.append(
        "cache ops include the per-phone lock (lock_acquire/lock_release) on Redis; LocMem uses a process lock"
    )
    med = statistics.median([r["time"]["median_ms"] for v in results.values() for r in v.values()])
    report.results["median_of_medians_ms"] = round(med, 3)
    return report


if __name__ == "__main__":
    sys.exit(common.run(main))
