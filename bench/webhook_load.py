"""Webhook acknowledgement under load, on the production path, beside a trivial view on the same server.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python -m bench.webhook_load [--small] [--json out.json]
        [--requests N] [--levels 1,8,32] [--workers 2] [--threads 4] [--worker-class gthread]

What runs:
- gunicorn serving core.wsgi (default: 2 gthread workers x 4 threads, keep-alive; the machine this was written on
  has 2 cores) on a socket bound to 127.0.0.1 port 0 by this script and handed over as fd://N, against a
  throw-away PostgreSQL database `bench_webhook_<pid>` and Redis (cache under a `bench<pid>` prefix; Celery broker
  = REDIS_URL, as in production). No Celery worker runs: the acknowledgement is what is measured, and the queued
  tasks are counted, then removed from the head of the queue, exactly as many as this run added.
- A load generator in this process: asyncio, raw HTTP/1.1 keep-alive connections (lighter than an HTTP library,
  so the generator steals less CPU from the server on a small machine), at 1, 8 and 32 concurrent connections.
  Each webhook POST is a compact Meta envelope with one text message, a unique wamid, a sender from a pool of
  phones (sessions created in a warm-up pass) and a valid X-Hub-Signature-256. Bodies are built and signed before
  the clock starts.
- At each level, GET /ping/ (a trivial Django view through the same middleware) first, then the webhook.

A request is an error unless it answers 200 and, for the webhook, `"accepted": 1` (a duplicate, rate-limited or
refused message is an error). After the run the database must hold every accepted message and the broker one
task per message, or the run fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

HOST = "127.0.0.1"
READY_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 30.0
TARGET_RATIO = 0.40
TARGET_P99_MS = 25.0
OPEN_LOOP_FRACTION = 0.5
BROKER_QUEUE = "celery"  # Celery's default queue: one Redis list, LPUSHed by kombu


# --- load generator --------------------------------------------------------------------------------------------
class Connection:
    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, body


async def drive(port: int, requests: list[bytes], concurrency: int, expect: bytes | None, rate: float = 0.0) -> dict:
    """Send every request over `concurrency` keep-alive connections; latencies per request, errors counted.

    Closed loop (rate 0): each connection sends its next request as soon as the previous answer arrives, so the
    server is saturated and latency is measured from the send. Open loop (rate > 0): request i is due at
    start + i / rate whatever happened to the others; latency counts from the due time, so waiting for a free
    connection (the server falling behind) is in the figure: no coordinated omission."""
    latencies: list[float] = []
    errors: list[str] = []
    pending = iter(enumerate(requests))
    started = time.perf_counter() + (0.05 if rate else 0.0)

    async def worker() -> None:
        connection = Connection(port)
        try:
            for i, raw in pending:
                due = started + i / rate if rate else time.perf_counter()
                if due > time.perf_counter():
                    await asyncio.sleep(due - time.perf_counter())
                try:
                    status, body = await asyncio.wait_for(connection.request(raw), REQUEST_TIMEOUT_S)
                except Exception as exc:  # noqa: BLE001 - counted as an error; reconnect and go on
                    errors.append(f"{type(exc).__name__}: {exc}")
                    await connection.close()
                    continue
                latencies.append(time.perf_counter() - due)
                if status != 200 or (expect is not None and expect not in body):
                    errors.append(f"HTTP {status}: {body[:160]!r}")
        finally:
            await connection.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    return {
        "requests": len(requests),
        "concurrency": concurrency,
        **({"offered_rps": round(rate, 1)} if rate else {}),
        "seconds": round(wall, 3),
        "throughput_rps": round(len(requests) / wall, 1),
        **common.summarize_ms(latencies),
        "errors": len(errors),
        "error_samples": errors[:5],
    }


# --- CPU per request, by process --------------------------------------------------------------------------------
class CpuMeter:
    """CPU seconds (user + system) of the processes that serve a request, read from /proc: gunicorn (master and
    workers), every PostgreSQL process (backends, WAL writer, checkpointer), Redis, and this load generator. Divided
    by the requests of a phase it says what one request costs the machine, which depends much less on how busy
    the machine is than throughput does. Linux only; elsewhere it measures nothing."""

    def __init__(self, server_pid: int):
        self.server_pid = server_pid
        self.available = Path("/proc/self/stat").exists()
        self.ticks = os.sysconf("SC_CLK_TCK") if self.available else 1

    def _processes(self) -> list[tuple[int, int, str, float]]:
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            cpu = (int(fields[11]) + int(fields[12])) / self.ticks
            found.append((int(entry), int(fields[1]), name, cpu))
        return found

    def snapshot(self) -> dict[str, float]:
        if not self.available:
            return {}
        totals = {"gunicorn": 0.0, "postgresql": 0.0, "redis": 0.0, "load generator": 0.0}
        for pid, ppid, name, cpu in self._processes():
            if pid == self.server_pid or ppid == self.server_pid:
                totals["gunicorn"] += cpu
            elif name == "postgres":
                totals["postgresql"] += cpu
            elif name == "redis-server":
                totals["redis"] += cpu
            elif pid == os.getpid():
                totals["load generator"] += cpu
        return totals

    @staticmethod
    def per_request_ms(before: dict[str, float], after: dict[str, float], requests: int) -> dict[str, float]:
        if not before or not requests:
            return {}
        per = {k: round((after[k] - before[k]) / requests * 1000, 3) for k in before}
        per["total"] = round(sum(per.values()), 3)
        return per


def measured(meter: CpuMeter, load) -> dict:
    """Run one load phase (a `drive` coroutine) and add its CPU per request."""
    before = meter.snapshot()
    result = asyncio.run(load)
    result["cpu_ms_per_request"] = CpuMeter.per_request_ms(before, meter.snapshot(), result["requests"])
    return result


# --- requests --------------------------------------------------------------------------------------------------
def ping_request() -> bytes:
    return f"GET /ping/ HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()


def webhook_request(*, wamid: str, sender: str, secret: str, text: str = "qual o endereço?") -> bytes:
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "5511900000000", "phone_number_id": "100200300"},
                            "contacts": [{"profile": {"name": "Paciente Bench"}, "wa_id": sender}],
                            "messages": [
                                {
                                    "from": sender,
                                    "id": wamid,
                                    "timestamp": str(int(time.time())),
                                    "type": "text",
                                    "text": {"body": text},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    # Meta's own encoding: compact, non-ASCII escaped; the signature covers these exact bytes.
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    head = (
        f"POST /webhook/whatsapp/ HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-Hub-Signature-256: sha256={signature}\r\n\r\n"
    )
    return head.encode() + body


# --- the server ------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def gunicorn_server(*, database_url: str, workers: int, threads: int, worker_class: str):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, 0))
    listener.listen(2048)
    listener.set_inheritable(True)
    port = listener.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        sys.executable, "-m", "gunicorn", "core.wsgi:application",
        "--bind", f"fd://{listener.fileno()}",
        "--workers", str(workers), "--worker-class", worker_class, "--threads", str(threads),
        "--keep-alive", "75", "--log-level", "warning", "--graceful-timeout", "5",
    ]  # fmt: skip
    log = tempfile.NamedTemporaryFile(prefix="bench_gunicorn_", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        command, cwd=common.REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, pass_fds=(listener.fileno(),)
    )
    listener.close()  # gunicorn holds its own copy
    try:
        wait_ready(port, process, log.name)
        yield port, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        with contextlib.suppress(OSError):
            os.unlink(log.name)


def _log_tail(path: str) -> str:
    with contextlib.suppress(OSError):
        return Path(path).read_text(errors="replace")[-2000:]
    return ""


def wait_ready(port: int, process: subprocess.Popen, log_path: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise common.CannotMeasure(f"gunicorn exited with {process.returncode}:\n{_log_tail(log_path)}")
        try:
            with socket.create_connection((HOST, port), timeout=1) as sock:
                sock.sendall(ping_request() + b"")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise common.CannotMeasure(f"gunicorn did not answer /ping/ within {READY_TIMEOUT_S:.0f} s:\n{_log_tail(log_path)}")


# --- main ------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> common.Report:
    parser = common.arg_parser(__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=None, help="requests per endpoint and level")
    parser.add_argument("--levels", default="1,8,32", help="concurrent connections, comma-separated")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--worker-class", default="gthread")
    parser.add_argument(
        "--open-rate",
        type=float,
        default=0.0,
        help="open-loop phase: offered req/s (default: half the webhook's saturated throughput)",
    )
    parser.add_argument(
        "--open-fraction",
        type=float,
        default=OPEN_LOOP_FRACTION,
        help="open-loop rate as a fraction of the saturated webhook throughput, when no --open-rate",
    )
    args = parser.parse_args(argv)
    common.bootstrap()
    report = common.Report(benchmark="webhook_load", small=args.small)
    from django.conf import settings

    if not (settings.IS_POSTGRES and settings.REDIS_URL):
        raise common.CannotMeasure(
            "the production path needs PostgreSQL and Redis: set DATABASE_URL=postgres://... and REDIS_URL=redis://..."
        )
    if settings.CELERY_TASK_ALWAYS_EAGER:
        raise common.CannotMeasure("CELERY_TASK_ALWAYS_EAGER is on: the webhook would run turns inline")
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    per_level = args.requests or (200 if args.small else 2000)
    open_requests = per_level
    webhook_total = per_level * len(levels) + open_requests
    phones = [f"5511933{i:06d}" for i in range(max(50, webhook_total // 15))]  # < 20 messages a minute each
    secret = settings.WHATSAPP_APP_SECRET
    import redis

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)

    with common.bench_database("webhook", migrate=not args.small) as db, common.cache_cleanup():
        from api_gateway.models import ConversationMessage

        queued_before = broker.llen(BROKER_QUEUE)
        server = gunicorn_server(
            database_url=db.url, workers=args.workers, threads=args.threads, worker_class=args.worker_class
        )
        run_id = f"{os.getpid()}.{int(time.time())}"
        results: dict[int, dict] = {}
        with server as (port, process):
            meter = CpuMeter(process.pid)
            print(
                f"webhook_load: gunicorn {args.workers} x {args.worker_class}({args.threads} threads) on port {port}, "
                f"{per_level} requests per endpoint and level, {len(phones)} patient phones"
            )
            warmup = [webhook_request(wamid=f"wamid.bench.{run_id}.w{i}", sender=p, secret=secret)
                      for i, p in enumerate(phones)]  # fmt: skip
            warm = asyncio.run(drive(port, warmup, 8, b'"accepted": 1'))
            asyncio.run(drive(port, [ping_request()] * 200, 8, b"pong"))
            if warm["errors"]:
                report.errors.append(f"warm-up: {warm['errors']} errors, e.g. {warm['error_samples'][:2]}")
            sent = len(warmup)
            for level in levels:
                bodies = [
                    webhook_request(wamid=f"wamid.bench.{run_id}.{level}.{i}", sender=phones[i % len(phones)],
                                    secret=secret)
                    for i in range(per_level)
                ]  # fmt: skip
                ping = measured(meter, drive(port, [ping_request()] * per_level, level, b"pong"))
                hook = measured(meter, drive(port, bodies, level, b'"accepted": 1'))
                sent += len(bodies)
                results[level] = {"ping": ping, "webhook": hook}
                for name, r in (("ping", ping), ("webhook", hook)):
                    if r["errors"]:
                        report.errors.append(f"{name} at {level}: {r['errors']} errors, e.g. {r['error_samples'][:2]}")
            # Open loop at the top level: a steady arrival rate the server can sustain, as Meta delivers.
            top = max(levels)
            rate = args.open_rate or max(1.0, round(results[top]["webhook"]["throughput_rps"] * args.open_fraction))
            bodies = [webhook_request(wamid=f"wamid.bench.{run_id}.open.{i}", sender=phones[i % len(phones)],
                                      secret=secret) for i in range(open_requests)]  # fmt: skip
            open_ping = measured(meter, drive(port, [ping_request()] * open_requests, top, b"pong", rate=rate))
            open_hook = measured(meter, drive(port, bodies, top, b'"accepted": 1', rate=rate))
            sent += len(bodies)
            for name, r in (("ping", open_ping), ("webhook", open_hook)):
                if r["errors"]:
                    report.errors.append(f"open-loop {name}: {r['errors']} errors, e.g. {r['error_samples'][:2]}")
        stored = ConversationMessage.objects.filter(whatsapp_message_id__startswith=f"wamid.bench.{run_id}.").count()
        queued = broker.llen(BROKER_QUEUE) - queued_before
        if queued > 0:
            broker.ltrim(BROKER_QUEUE, queued, -1)  # kombu LPUSHes: our tasks are the newest, at the head
    if stored != sent:
        report.errors.append(f"{sent} messages sent, {stored} stored")
    if queued != sent:
        report.errors.append(f"{sent} messages accepted, {queued} tasks enqueued on the broker")

    rows = []
    for level, r in results.items():
        ratio = r["webhook"]["throughput_rps"] / r["ping"]["throughput_rps"]
        r["webhook_over_ping"] = round(ratio, 3)
        for name in ("ping", "webhook"):
            x = r[name]
            rows.append([level, name, x["throughput_rps"], x["median_ms"], x["p99_ms"], x["errors"],
                         f"{ratio:.0%}" if name == "webhook" else "", _cpu_cell(x)])  # fmt: skip
    common.print_table(
        f"Webhook acknowledgement vs /ping/, closed loop (gunicorn {args.workers}x{args.worker_class}/{args.threads}, "
        f"{common.stack_label()})",
        ["conns", "endpoint", "req/s", "p50 ms", "p99 ms", "errors", "of ping", "CPU ms/request"],
        rows,
    )
    chosen = "--open-rate" if args.open_rate else f"{args.open_fraction:.0%} of the saturated webhook throughput"
    common.print_table(
        f"Open loop: {top} connections, {rate:.0f} req/s offered ({chosen}); latency from each request's due time",
        ["endpoint", "achieved req/s", "p50 ms", "p99 ms", "max ms", "errors", "CPU ms/request"],
        [[name, r["throughput_rps"], r["median_ms"], r["p99_ms"], r["max_ms"], r["errors"], _cpu_cell(r)]
         for name, r in (("ping", open_ping), ("webhook", open_hook))],
    )  # fmt: skip
    split = results[top]["webhook"].get("cpu_ms_per_request") or {}
    if split:
        print(f"\n  webhook CPU per request at {top} connections: "
              + ", ".join(f"{k} {v:.2f} ms" for k, v in split.items() if k != "total"))  # fmt: skip
    print(f"\n  stored {stored} inbound messages, {queued} tasks enqueued (removed again from '{BROKER_QUEUE}')")
    report.results = {
        "levels": {str(k): v for k, v in results.items()},
        "open_loop": {"connections": top, "offered_rps": rate, "ping": open_ping, "webhook": open_hook},
        "server": {"workers": args.workers, "worker_class": args.worker_class, "threads": args.threads},
        "messages_stored": stored,
        "tasks_enqueued": queued,
        "celery_worker": "none (acknowledgement only)",
    }
    worst_ratio = min(r["webhook_over_ping"] for r in results.values())
    report.target("webhook throughput vs /ping/ (every level)", goal=f">= {TARGET_RATIO:.0%}",
                  value=f"worst {worst_ratio:.0%}", met=worst_ratio >= TARGET_RATIO)  # fmt: skip
    p99 = results[top]["webhook"]["p99_ms"]
    report.target(f"webhook p99 at {top} connections, saturated (closed loop)", goal=f"< {TARGET_P99_MS} ms",
                  value=f"{p99:.1f} ms (/ping/ itself: {results[top]['ping']['p99_ms']:.1f} ms)",
                  met=p99 < TARGET_P99_MS)  # fmt: skip
    open_p99 = open_hook["p99_ms"]
    report.target(f"webhook p99 at {top} connections, {rate:.0f} req/s offered (open loop)",
                  goal=f"< {TARGET_P99_MS} ms", value=f"{open_p99:.1f} ms", met=open_p99 < TARGET_P99_MS)  # fmt: skip
    total_errors = sum(r[n]["errors"] for r in results.values() for n in ("ping", "webhook"))
    total_errors += open_ping["errors"] + open_hook["errors"]
    report.target("errors", goal="0", value=total_errors, met=total_errors == 0)
    return report


def _cpu_cell(result: dict) -> str:
    cpu = result.get("cpu_ms_per_request") or {}
    return f"{cpu['total']:.2f}" if cpu else "n/a"


if __name__ == "__main__":
    sys.exit(common.run(main))
