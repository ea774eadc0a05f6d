"""Shared plumbing for the benchmark scripts: isolated database and cache, counters, statistics, output.

Every script calls `bootstrap()` before touching Django. It forces the things a benchmark must never share with
a developer's data or reach outside the machine:

- a database of its own (`bench_<name>_<pid>` on PostgreSQL, a temporary file on SQLite), created with Django's
  test-database utilities (so migrations run) and dropped at the end, whatever happens;
- a cache key prefix of its own (`bench<pid>`), so on Redis only our keys are written and deleted (no FLUSHDB);
- blank Gemini and WhatsApp credentials (offline NLU, replies stored and not sent) unless a script points Gemini
  at the local fake server.

The stack (SQLite + LocMem or PostgreSQL + Redis) is chosen by DATABASE_URL / REDIS_URL, exactly like the app.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

EXIT_OK = 0
EXIT_ERRORS = 1  # the benchmark ran but operations failed: its figures cannot be trusted
EXIT_CANNOT_MEASURE = 2  # a server did not start, the stack is not the one required, setup failed


class CannotMeasure(Exception):
    """The benchmark could not produce trustworthy figures; the message says why."""


def bootstrap(*, gemini_allowed: bool = False) -> None:
    """Environment defaults for a benchmark process, then django.setup()."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-insecure-secret-key")
    os.environ.setdefault("WHATSAPP_APP_SECRET", "bench-app-secret")
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    os.environ["SECURE_SSL_REDIRECT"] = "0"  # plain HTTP on loopback
    os.environ["AXES_ENABLED"] = "0"
    os.environ["CACHE_KEY_PREFIX"] = f"bench{os.getpid()}"
    os.environ["WHATSAPP_ACCESS_TOKEN"] = ""  # replies are stored as "not sent", never posted to Meta
    if not gemini_allowed:
        os.environ["GEMINI_API_KEY"] = ""  # offline NLU: the turn's own cost, without the LLM
    import django

    django.setup()


# --- isolated database ---------------------------------------------------------------------------------------
@dataclass
class BenchDatabase:
    name: str
    vendor: str
    url: str = ""  # for subprocesses (gunicorn): DATABASE_URL of the benchmark database


@contextlib.contextmanager
def bench_database(name: str, *, migrate: bool = True) -> Iterator[BenchDatabase]:
    """Create (and migrate) a throw-away database for this run; drop it on exit.

    migrate=False builds the tables straight from the models (Django's TEST MIGRATE=False): the same schema,
    about a second faster, used by --small runs.
    """
    from django.conf import settings
    from django.db import connection

    settings_dict = connection.settings_dict
    original_name = settings_dict["NAME"]
    tmpdir = None
    if connection.vendor == "sqlite":
        tmpdir = tempfile.mkdtemp(prefix=f"bench_{name}_")
        test_name = str(Path(tmpdir) / f"bench_{name}.sqlite3")
    else:
        test_name = f"bench_{name}_{os.getpid()}"
    for target in (settings_dict, settings.DATABASES["default"]):
        target.setdefault("TEST", {}).update({"NAME": test_name, "MIGRATE": migrate})
    created = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)
    url = ""
    if connection.vendor == "postgresql":
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(settings.DATABASE_URL)
        url = urlunsplit(parts._replace(path="/" + created))
    else:
        url = f"sqlite:///{created}"
    try:
        yield BenchDatabase(name=created, vendor=connection.vendor, url=url)
    finally:
        # Described while the database exists: afterwards the settings name the developer's database again.
        _stack_snapshot.update(stack_info())
        connection.creation.destroy_test_db(original_name, verbosity=0, keepdb=False)
        if tmpdir:
            with contextlib.suppress(OSError):
                for leftover in Path(tmpdir).iterdir():
                    leftover.unlink()
                Path(tmpdir).rmdir()


# --- our cache keys only -------------------------------------------------------------------------------------
def cache_clear_ours() -> None:
    """Delete this run's keys. On Redis only keys under our prefix (never FLUSHDB on a shared database)."""
    from django.conf import settings
    from django.core.cache import caches

    cache = caches["default"]
    if settings.REDIS_URL:
        cache.delete_pattern("*")  # django-redis applies KEY_PREFIX to the pattern
    else:
        cache.clear()  # LocMem is private to this process


@contextlib.contextmanager
def cache_cleanup() -> Iterator[None]:
    cache_clear_ours()
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            cache_clear_ours()


# --- counting cache operations -------------------------------------------------------------------------------
COUNTED_CACHE_METHODS = (
    "get",
    "set",
    "add",
    "incr",
    "decr",
    "delete",
    "get_many",
    "set_many",
    "delete_many",
    "get_or_set",
    "has_key",
    "touch",
    "ttl",
)


class CacheOpCounter:
    """Counts calls on the cache backends of the given aliases by wrapping the instances' methods.

    Only the outermost call is counted (Django's base get_many calls get, for instance), so a count is one call
    our code made, which on Redis is one round-trip. A django-redis lock counts its acquire and release.
    """

    def __init__(self, aliases: tuple[str, ...] = ("default", "strict")):
        self.aliases = aliases
        self.counts: dict[str, int] = {}
        self._installed: list[tuple[object, str]] = []
        self._depth = 0

    def reset(self) -> None:
        self.counts = {}

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def _bump(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def _wrap(self, alias: str, method_name: str, method: Callable) -> Callable:
        def counted(*args, **kwargs):
            if self._depth == 0:
                self._bump(method_name)
            self._depth += 1
            try:
                return method(*args, **kwargs)
            finally:
                self._depth -= 1

        return counted

    def _wrap_lock(self, method: Callable) -> Callable:
        counter = self

        def counted_lock(*args, **kwargs):
            lock = method(*args, **kwargs)
            acquire, release = lock.acquire, lock.release

            def counted_acquire(*a, **kw):
                counter._bump("lock_acquire")
                return acquire(*a, **kw)

            def counted_release(*a, **kw):
                counter._bump("lock_release")
                return release(*a, **kw)

            lock.acquire, lock.release = counted_acquire, counted_release
            return lock

        return counted_lock

    def install(self) -> CacheOpCounter:
        from django.core.cache import caches

        for alias in self.aliases:
            backend = caches[alias]
            for method_name in COUNTED_CACHE_METHODS:
                method = getattr(backend, method_name, None)
                if method is None:
                    continue
                setattr(backend, method_name, self._wrap(alias, method_name, method))
                self._installed.append((backend, method_name))
            if hasattr(backend, "lock"):
                backend.lock = self._wrap_lock(backend.lock)
                self._installed.append((backend, "lock"))
        return self

    def uninstall(self) -> None:
        for backend, method_name in self._installed:
            with contextlib.suppress(AttributeError):
                delattr(backend, method_name)  # the class's method shows through again
        self._installed = []

    def __enter__(self) -> CacheOpCounter:
        return self.install()

    def __exit__(self, *exc) -> None:
        self.uninstall()


def query_kinds(captured: list[dict]) -> dict[str, int]:
    """{'read': SELECTs, 'write': INSERT/UPDATE/DELETE, 'tx': BEGIN/SAVEPOINT/RELEASE/COMMIT/...}."""
    counts = {"read": 0, "write": 0, "tx": 0}
    for query in captured:
        verb = query["sql"].lstrip().split(" ", 1)[0].upper()
        if verb == "SELECT":
            counts["read"] += 1
        elif verb in {"INSERT", "UPDATE", "DELETE"}:
            counts["write"] += 1
        else:
            counts["tx"] += 1
    return counts


# --- statistics ----------------------------------------------------------------------------------------------
def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summarize_ms(samples_s: list[float]) -> dict:
    """Seconds in, milliseconds out: n, median, p95, p99, mean, min, max."""
    ms = [s * 1000 for s in samples_s]
    if not ms:
        return {"n": 0}
    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 4),
        "p95_ms": round(percentile(ms, 95), 4),
        "p99_ms": round(percentile(ms, 99), 4),
        "mean_ms": round(statistics.fmean(ms), 4),
        "min_ms": round(min(ms), 4),
        "max_ms": round(max(ms), 4),
    }


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


# --- environment description ---------------------------------------------------------------------------------
_stack_snapshot: dict = {}


def stack_info() -> dict:
    if _stack_snapshot:
        return {**_stack_snapshot, "loadavg_1m": round(os.getloadavg()[0], 2)}
    import django
    from django.conf import settings
    from django.db import connection

    info = {
        "database": connection.vendor,
        "cache": settings.CACHE_BACKEND_NAME,
        "python": platform.python_version(),
        "django": django.get_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        # Other processes compete for the same cores; a high load average inflates every time below.
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }
    with contextlib.suppress(Exception):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SHOW server_version")
                info["postgresql"] = cursor.fetchone()[0]
        else:
            import sqlite3

            info["sqlite"] = sqlite3.sqlite_version
    if settings.REDIS_URL:
        with contextlib.suppress(Exception):
            from django_redis import get_redis_connection

            info["redis"] = get_redis_connection("default").info("server")["redis_version"]
    return info


def stack_label() -> str:
    from django.conf import settings
    from django.db import connection

    return f"{connection.vendor} + {settings.CACHE_BACKEND_NAME}"


# --- targets and output --------------------------------------------------------------------------------------
@dataclass
class Report:
    benchmark: str
    small: bool
    results: dict = field(default_factory=dict)
    targets: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    loadavg_at_start: float = field(default_factory=lambda: round(os.getloadavg()[0], 2))

    def target(self, name: str, *, goal: str, value: object, met: bool | None) -> None:
        """met=None: not applicable on this stack (the reason goes in `value`)."""
        self.targets.append({"name": name, "goal": goal, "value": value, "met": met})

    def as_dict(self) -> dict:
        return {
            "benchmark": self.benchmark,
            "mode": "small" if self.small else "full",
            "stack": {**stack_info(), "loadavg_1m_at_start": self.loadavg_at_start},
            "results": self.results,
            "targets": self.targets,
            "notes": self.notes,
            "errors": self.errors,
        }

    def print_targets(self) -> None:
        if not self.targets:
            return
        print("\nTargets:")
        for t in self.targets:
            verdict = {True: "MET", False: "MISSED", None: "n/a"}[t["met"]]
            print(f"  [{verdict:6}] {t['name']}: {t['value']} (goal: {t['goal']})")
        for note in self.notes:
            print(f"  note: {note}")


def print_table(title: str, headers: list[str], rows: list[list[object]]) -> None:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
        return str(value)

    text_rows = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text_rows)) if text_rows else len(h) for i, h in enumerate(headers)]
    print(f"\n{title}")
    print("  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  " + "  ".join("-" * w for w in widths))
    for row in text_rows:
        print("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def arg_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    parser.add_argument("--small", action="store_true", help="a few hundred operations (seconds), for CI")
    return parser


def run(main: Callable[[list[str] | None], Report], argv: list[str] | None = None) -> int:
    """Run a benchmark's main, write its JSON, and map failures to exit codes (targets never fail the run)."""
    args = arg_parser("").parse_known_args(argv)[0]
    try:
        report = main(argv)
    except CannotMeasure as exc:
        print(f"\nCOULD NOT MEASURE: {exc}", file=sys.stderr)
        return EXIT_CANNOT_MEASURE
    except Exception:  # noqa: BLE001 - any crash means no figures; say so with the traceback
        traceback.print_exc()
        print("\nCOULD NOT MEASURE: the benchmark crashed (traceback above)", file=sys.stderr)
        return EXIT_CANNOT_MEASURE
    report.print_targets()
    if args.json:
        Path(args.json).write_text(json.dumps(report.as_dict(), indent=2, ensure_ascii=False, default=str) + "\n")
        print(f"\nJSON written to {args.json}")
    if report.errors:
        print(f"\nERRORS ({len(report.errors)}): the figures above are not trustworthy", file=sys.stderr)
        for error in report.errors[:20]:
            print(f"  {error}", file=sys.stderr)
        return EXIT_ERRORS
    return EXIT_OK


# --- Gemini through the real SDK, against the local fake server ---------------------------------------------
@contextlib.contextmanager
def fake_gemini_started() -> Iterator[object]:
    """Start tests/fakes/gemini_server.py and point GEMINI_* at it. Call before bootstrap(gemini_allowed=True).

    The fake reports usageMetadata.promptTokenCount = ceil(prompt characters / 4), computed from the request the
    SDK actually sent (system instruction + contents), the same ratio as prompt.CHARS_PER_TOKEN.
    """
    from tests.fakes.gemini_server import FAKE_API_KEY, FakeGeminiServer

    server = FakeGeminiServer().start()
    os.environ["GEMINI_API_KEY"] = FAKE_API_KEY
    os.environ["GEMINI_API_BASE_URL"] = server.base_url
    os.environ["GEMINI_TIMEOUT_SECONDS"] = "10"
    os.environ["GEMINI_MAX_ATTEMPTS"] = "1"
    # Never economy mode during a benchmark: the budget is not what is measured.
    os.environ["GEMINI_DAILY_TOKEN_LIMIT"] = str(10**12)
    try:
        yield server
    finally:
        server.stop()


def gemini_path_forced() -> None:
    """Send every turn to Gemini: no offline reading counts as certain (the worst case for tokens)."""
    from api_gateway.services.nlu import router

    router.OFFLINE_CERTAIN = 2.0


def catalogue_full_text() -> str:
    """The whole clinic catalogue as plain text: what a naive prompt would paste in every turn."""
    from rag_agent.selectors import clinic_catalog, doctor_detail

    catalog = clinic_catalog()
    info = catalog["clinica"]
    specialties = {s["id"]: s["nome"] for s in catalog["especialidades"]}
    plans = {c["id"]: c["nome"] for c in catalog["convenios"]}
    lines = [
        f"Clínica: {info['nome']}. Endereço: {info['endereco']}. Telefone: {info['telefone']}. "
        f"E-mail: {info['email']}. Funcionamento: {info['horario_funcionamento']}. Políticas: {info['politicas']}",
        "Especialidades:",
        *(f"- {s['nome']}: {s['descricao']}" for s in catalog["especialidades"]),
        "Convênios: " + ", ".join(plans.values()),
        "Médicos:",
    ]
    for doctor in catalog["medicos"]:
        detail = doctor_detail(doctor["id"]) or {"horarios": []}
        hours = "; ".join(f"dia {h['dia_semana']} {h['inicio']}-{h['fim']}" for h in detail["horarios"])
        lines.append(
            f"- {doctor['nome']} ({doctor['crm']}), "
            f"{', '.join(specialties.get(i, '?') for i in doctor['especialidade_ids'])}; "
            f"convênios: {', '.join(plans.get(i, '?') for i in doctor['convenio_ids']) or 'nenhum'}; "
            f"consulta R$ {doctor['preco_consulta']}, {doctor['duracao_consulta_minutos']} min; "
            f"horários: {hours}. {doctor['bio']}"
        )
    lines.append("Exames:")
    lines.extend(f"- {x['nome']}: R$ {x['preco']}. Preparo: {x['preparo']} {x['descricao']}" for x in catalog["exames"])
    return "\n".join(lines)


def naive_prompt_tokens(*, text: str, session, history: list[dict], catalogue: str, now=None) -> int:
    """Prompt tokens of the naive full-history + whole-catalogue prompt, counted by the fake through the SDK."""
    from django.conf import settings

    from api_gateway.clients.gemini import gemini_generate
    from api_gateway.services.nlu.gemini import NLU_RESPONSE_SCHEMA
    from api_gateway.services.nlu.prompt import prompt_naive_full_history

    prompt = prompt_naive_full_history(text=text, session=session, history=history, catalogue=catalogue, now=now)
    result = gemini_generate(
        model=settings.GEMINI_MODEL,
        system_instruction=prompt.system_instruction,
        contents=prompt.contents,
        response_schema=NLU_RESPONSE_SCHEMA,
        max_output_tokens=settings.GEMINI_MAX_OUTPUT_TOKENS,
    )
    if not result.usage_reported:
        raise CannotMeasure("the fake Gemini answer carried no usage_metadata")
    return result.input_tokens


def session_history(session_id: int) -> list[dict]:
    """Every message of a session so far, oldest first, as the prompt's history items."""
    from api_gateway.models import ConversationMessage

    rows = ConversationMessage.objects.filter(session_id=session_id).order_by("timestamp", "id")
    return [{"role": "user" if m.message_type == "user" else "bot", "text": m.content} for m in rows]
