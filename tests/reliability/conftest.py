"""Real processes for fault injection: a dedicated redis-server, a gunicorn live server, Celery workers.

Everything runs against the pytest-django test database (transactional tests, so rows are committed and the
subprocesses see them) and against fake Graph / Gemini servers running as threads in this process.
Every subprocess writes its log to a file; on stop the log is scanned for clear-text phone numbers and secrets.

Figures measured by the tests go through the `figures` fixture into one JSON file (RELIABILITY_REPORT, default
/tmp/reliability_report.json) that docs/reliability.md is written from.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.fakes.gemini_server import FAKE_API_KEY, FakeGeminiServer, fake_gemini  # noqa: F401 - a fixture
from tests.fakes.graph_server import FAKE_ACCESS_TOKEN, FakeGraphServer, signature_header, webhook_body

ROOT = Path(__file__).resolve().parents[2]
APP_SECRET = "reliability-app-secret-" + secrets.token_hex(8)
VERIFY_TOKEN = "reliability-verify-" + secrets.token_hex(8)
SECRET_KEY = secrets.token_urlsafe(60)
SECRETS = (APP_SECRET, VERIFY_TOKEN, SECRET_KEY, FAKE_ACCESS_TOKEN, FAKE_API_KEY)
# Patient numbers used by this suite all start like this; a clear one in a log line is a leak.
PHONE_PREFIX = "55119"
CLEAR_PHONE_RE = re.compile(r"(?<!\d)55119\d{7,8}(?!\d)")
REPORT_PATH = Path(os.environ.get("RELIABILITY_REPORT", "/tmp/reliability_report.json"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, *, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except Exception:  # the thing we wait for is not up yet
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(interval)


def leaks_in(text: str) -> list[str]:
    """Log lines holding a clear-text patient number or one of the suite's secrets."""
    found = []
    for line in text.splitlines():
        if CLEAR_PHONE_RE.search(line) or any(secret in line for secret in SECRETS):
            found.append(line[:300])
    return found


# --- figures for docs/reliability.md ----------------------------------------------------------------------------
_FIGURES: dict[str, dict] = {}


@pytest.fixture(scope="session")
def figures() -> Iterator[dict]:
    yield _FIGURES
    if _FIGURES:
        previous = {}
        if REPORT_PATH.exists():
            try:
                previous = json.loads(REPORT_PATH.read_text())
            except ValueError:
                previous = {}
        previous.update(_FIGURES)
        REPORT_PATH.write_text(json.dumps(previous, indent=2, ensure_ascii=False, sort_keys=True))
        print(f"\nreliability figures written to {REPORT_PATH}")  # noqa: T201


# --- log hygiene in this process ----------------------------------------------------------------------------------
class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = f"{record.levelname} {record.name} {record.getMessage()}"
        except Exception:
            line = f"{record.levelname} {record.name} {record.msg}"
        if record.exc_info:
            line += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(line)


@pytest.fixture(autouse=True)
def in_process_logs() -> Iterator[_Collector]:
    """Every log line this process writes during a reliability test: no clear phone number, no secret."""
    collector = _Collector()
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(collector)
    root.setLevel(logging.INFO)
    yield collector
    root.removeHandler(collector)
    root.setLevel(previous_level)
    leaks = leaks_in("\n".join(collector.lines))
    assert not leaks, f"personal data or secrets in this process's logs: {leaks[:5]}"


# --- fakes ----------------------------------------------------------------------------------------------------------
@pytest.fixture
def graph_fake() -> Iterator[FakeGraphServer]:
    with FakeGraphServer() as server:
        yield server


@pytest.fixture
def gemini_fake() -> Iterator[FakeGeminiServer]:
    with FakeGeminiServer() as server:
        yield server


# --- a dedicated redis-server -------------------------------------------------------------------------------------
class RedisProcess:
    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.log_path = log_dir / f"redis-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1, socket_connect_timeout=1)

    def start(self) -> RedisProcess:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--daemonize", "no"]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: self.client().ping(), timeout=10, what="redis-server")
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def pause(self) -> None:
        """SIGSTOP: the port still accepts connections but nothing answers (a hung Redis)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def keys(self, pattern: str = "*") -> list[str]:
        return [k.decode() for k in self.client().keys(pattern)]


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path).start()
    yield server
    if server.proc and server.proc.poll() is None:
        server.resume()
    server.kill()


# --- gunicorn and celery ------------------------------------------------------------------------------------------
def subprocess_database_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class Stack:
    """The environment every subprocess of one test shares, and the processes started with it."""

    def __init__(self, *, log_dir: Path, redis_server: RedisProcess, graph: FakeGraphServer) -> None:
        self.log_dir = log_dir
        self.redis = redis_server
        self.graph = graph
        self.env_overrides: dict[str, str] = {
            "DATABASE_URL": subprocess_database_url(),
            "REDIS_URL": redis_server.url,
            "SECRET_KEY": SECRET_KEY,
            "DEBUG": "0",
            "SECURE_SSL_REDIRECT": "0",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
            "WHATSAPP_ACCESS_TOKEN": FAKE_ACCESS_TOKEN,
            "WHATSAPP_API_BASE_URL": graph.base_url,
            "WHATSAPP_PHONE_NUMBER_ID": "100200300",
            "WHATSAPP_BUSINESS_NUMBER": "5511900000000",
            "WHATSAPP_TIMEOUT_SECONDS": "2",
            "GEMINI_API_KEY": "",
            "CELERY_TASK_ALWAYS_EAGER": "1",
            "SWEEP_AFTER_MINUTES": "0",
            "AXES_ENABLED": "0",
            "LOG_LEVEL": "INFO",
            "DB_POOL_MAX_SIZE": "10",
        }
        self.procs: list[tuple[str, subprocess.Popen, Path]] = []
        self.base_url = ""

    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DATABASE_URL", "REDIS_URL"))}
        return {**base, **self.env_overrides, "PYTHONUNBUFFERED": "1"}

    def use_gemini(self, server: FakeGeminiServer, *, timeout: float = 1.0) -> None:
        self.env_overrides.update(
            {
                "GEMINI_API_KEY": FAKE_API_KEY,
                "GEMINI_API_BASE_URL": server.base_url,
                "GEMINI_TIMEOUT_SECONDS": str(timeout),
            }  # fmt: skip
        )

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        log_path = self.log_dir / f"{name}-{len(self.procs)}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(command, cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        self.procs.append((name, proc, log_path))
        return proc

    def start_web(self, *, workers: int = 2, threads: int = 8) -> str:
        port = free_port()
        command = [sys.executable, "-m", "gunicorn", "core.wsgi:application", "-b", f"127.0.0.1:{port}",
                   "-k", "gthread", "-w", str(workers), "--threads", str(threads), "--timeout", "60",
                   "--graceful-timeout", "3", "--error-logfile", "-"]  # fmt: skip
        self._spawn("gunicorn", command)
        self.base_url = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(f"{self.base_url}/ping/", timeout=1).status_code == 200, timeout=30,
                 what="gunicorn")  # fmt: skip
        return self.base_url

    def start_worker(self) -> subprocess.Popen:
        command = [sys.executable, "-m", "celery", "-A", "core", "worker", "--pool=solo", "-c", "1", "-l", "INFO",
                   "-n", f"w{len(self.procs)}@%h", "--without-gossip", "--without-mingle",
                   "--without-heartbeat"]  # fmt: skip
        proc = self._spawn("celery", command)
        log_path = self.procs[-1][2]
        wait_for(lambda: b"ready" in log_path.read_bytes(), timeout=30, what="celery worker")
        return proc

    def manage(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(  # noqa: PLW1510
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env(), capture_output=True, timeout=timeout
        )

    def stop_all(self) -> None:
        for _, proc, _ in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for _, proc, _ in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace") for _, _, path in self.procs if path.exists())

    # --- webhook traffic ----------------------------------------------------------------------------------------
    def post_webhook(self, body: bytes, *, timeout: float = 30.0, request_id: str = "") -> tuple[int, float]:
        started = time.perf_counter()
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature_header(body, APP_SECRET)}
        if request_id:
            headers["X-Request-ID"] = request_id
        try:
            response = httpx.post(f"{self.base_url}/webhook/whatsapp/", content=body, headers=headers, timeout=timeout)
            status = response.status_code
        except httpx.HTTPError:
            status = 0
        return status, time.perf_counter() - started


@pytest.fixture
def stack(transactional_db, tmp_path, redis_server, graph_fake) -> Iterator[Stack]:
    """Processes are stopped before the transactional test flushes the tables (fixture order)."""
    stack = Stack(log_dir=tmp_path, redis_server=redis_server, graph=graph_fake)
    yield stack
    stack.stop_all()
    # The web server and workers are stopped: their database connections are closed before the flush.
    leaks = leaks_in(stack.logs())
    assert not leaks, f"personal data or secrets in subprocess logs: {leaks[:5]}"


# --- payloads -----------------------------------------------------------------------------------------------------
def text_message(*, phone: str, wamid: str, text: str, timestamp: float, name: str = "Paciente Teste") -> bytes:
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "5511900000000", "phone_number_id": "100200300"},
            "contacts": [{"profile": {"name": name}, "wa_id": phone}],
            "messages": [{"from": phone, "id": wamid, "timestamp": str(int(timestamp)), "type": "text",
                          "text": {"body": text}}],
        }}]}],
    }  # fmt: skip
    return webhook_body(payload)


def patient_phone(n: int) -> str:
    return f"{PHONE_PREFIX}88{n:06d}"
