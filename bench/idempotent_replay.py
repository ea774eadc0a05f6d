"""Duplicate replay: a REST turn (POST /api/v1/messages/) the first time vs replayed with the same Idempotency-Key.

    python -m bench.idempotent_replay [--small] [--json out.json] [--requests N]

In-process, through Django's test Client: the full middleware stack, DRF parsing and validation, the idempotency
store and, for the first request, one real turn (offline NLU) on a warm session. No network and no HTTP server, so
the figures are the application's own cost (bench/webhook_load.py measures a real server). Every replay must
return 200, `Idempotent-Replayed: true` and the first response's body byte for byte, or the run fails.

Requests alternate first/replay over a pool of phones whose sessions and the clinic catalogue are already cached,
so "first" is a warm question turn. The pool is large enough that no phone reaches PATIENT_MAX_MESSAGES_PER_MINUTE
(a 429 would be an error, not a figure).
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

MIN_PHONES = 20
QUESTIONS = ["qual o endereço?", "quanto custa o hemograma?", "qual o telefone?"]
URL = "/api/v1/messages/"


def main(argv: list[str] | None = None) -> common.Report:
    parser = common.arg_parser(__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=None, help="first requests (each replayed once)")
    args = parser.parse_args(argv)
    common.bootstrap()
    report = common.Report(benchmark="idempotent_replay", small=args.small)
    requests = args.requests or (60 if args.small else 1000)

    with common.bench_database("idempotent_replay", migrate=not args.small), common.cache_cleanup():
        from django.conf import settings
        from django.test import Client

        from api_gateway.services.conversation import turn_handle
        from rag_agent.demo import seed_demo_clinic

        seed_demo_clinic()
        settings.API_KEYS = ["bench-api-key"]  # this process's own key for the REST client below
        warmup = 10
        per_phone = max(1, settings.PATIENT_MAX_MESSAGES_PER_MINUTE // 2)  # even if the run fits in one minute
        phones = [f"5511944{i:06d}" for i in range(max(MIN_PHONES, -(-(warmup + requests) // per_phone)))]
        for phone in phones:
            turn_handle(phone=phone, text="oi")
        client = Client(HTTP_AUTHORIZATION="Bearer bench-api-key")
        first: list[float] = []
        replay: list[float] = []
        for i in range(warmup + requests):
            body = json.dumps(
                {"phone": phones[i % len(phones)], "text": QUESTIONS[i % len(QUESTIONS)], "message_id": f"bench-{i}"}
            )
            headers = {"HTTP_IDEMPOTENCY_KEY": uuid.uuid4().hex}
            started = time.perf_counter()
            original = client.post(URL, data=body, content_type="application/json", **headers)
            first_s = time.perf_counter() - started
            started = time.perf_counter()
            replayed = client.post(URL, data=body, content_type="application/json", **headers)
            replay_s = time.perf_counter() - started
            if original.status_code != 200 or original.headers.get("Idempotent-Replayed"):
                report.errors.append(f"request {i}: first answered {original.status_code} {original.content[:120]!r}")
            elif (
                replayed.status_code != 200
                or replayed.headers.get("Idempotent-Replayed") != "true"
                or replayed.content != original.content
            ):
                report.errors.append(f"request {i}: replay answered {replayed.status_code}, not the stored response")
            if i >= warmup:
                first.append(first_s)
                replay.append(replay_s)

    stats = {"first": common.summarize_ms(first), "replay": common.summarize_ms(replay)}
    speedup = stats["first"]["median_ms"] / stats["replay"]["median_ms"]
    report.results = {"requests": requests, "stats": stats, "first_over_replay_p50": round(speedup, 2),
                      "client": "django.test.Client (in-process, no network)"}  # fmt: skip
    common.print_table(
        f"REST turn vs idempotent replay ({common.stack_label()}, django.test.Client), {requests} each",
        ["request", "median ms", "p95 ms", "p99 ms", "mean ms"],
        [[kind, s["median_ms"], s["p95_ms"], s["p99_ms"], s["mean_ms"]] for kind, s in stats.items()],
    )
    print(f"\n  a replay costs 1/{speedup:.1f} of the first request (median)")
    return report


if __name__ == "__main__":
    sys.exit(common.run(main))
