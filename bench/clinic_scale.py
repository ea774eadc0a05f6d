"""Clinic scale: prompt tokens and turn time with the demo clinic vs a generated clinic (200 doctors, 40 specialties).

    python -m bench.clinic_scale [--small] [--json out.json] [--phones N]

The same scripted conversation (greeting, questions, a booking step, a plan question, start over) runs on the demo
clinic, then again after `generate_large_clinic(doctors=200, specialties=40)` adds the generated rows beside it:

- prompt tokens per turn: every turn forced through the Gemini path with the real SDK against the local fake
  server (usage_metadata; ceil(chars / 4), see bench/prompt_growth.py);
- turn time: the same conversation with the offline NLU (GEMINI_API_KEY blanked at runtime), warm caches, on
  fresh phones; the first phone of each clinic is a warm-up and is not timed;
- beside them, the size of the naive prompt's whole catalogue for both clinics.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

SCRIPT = [
    "oi",
    "quais especialidades vocês têm?",
    "quero marcar cardiologia particular, meu nome é João Pereira",
    "o primeiro",
    "vocês aceitam unimed?",
    "quanto custa o hemograma?",
    "quais médicos atendem pediatria?",
    "recomeçar",
]
TARGET_RATIO = 1.5


def conversation_tokens(phone: str, report: common.Report, fake, label: str) -> list[int]:
    from api_gateway.models import ConversationMessage
    from api_gateway.services.conversation import turn_handle

    tokens = []
    for text in SCRIPT:
        before = len(fake.generate_requests)
        result = turn_handle(phone=phone, text=text)
        used = ConversationMessage.objects.get(pk=result.user_message_id).input_tokens
        if len(fake.generate_requests) - before != 1 or used <= 0:
            report.errors.append(f"{label} {text!r}: no Gemini prompt measured")
        tokens.append(used)
    return tokens


def conversation_times(phones: list[str], report: common.Report, label: str) -> list[list[float]]:
    """Per script position, the turn times over the phones (the first phone is a warm-up)."""
    from api_gateway.services.conversation import turn_handle

    per_message: list[list[float]] = [[] for _ in SCRIPT]
    for n, phone in enumerate(phones):
        for i, text in enumerate(SCRIPT):
            started = time.perf_counter()
            try:
                turn_handle(phone=phone, text=text)
            except Exception as exc:  # noqa: BLE001 - reported; the run exits non-zero
                report.errors.append(f"{label} {text!r}: {type(exc).__name__}: {exc}")
                continue
            if n > 0:
                per_message[i].append(time.perf_counter() - started)
    return per_message


def measure(label: str, phones: int, report: common.Report, fake) -> dict:
    from django.conf import settings

    from rag_agent.selectors import clinic_catalog

    catalog = clinic_catalog()
    key = settings.GEMINI_API_KEY
    tokens = conversation_tokens(f"55119550{label == 'large'}0000", report, fake, label)
    settings.GEMINI_API_KEY = ""  # offline NLU: the turn's own time
    try:
        times = conversation_times([f"55119551{label == 'large'}{i:04d}" for i in range(phones + 1)], report, label)
    finally:
        settings.GEMINI_API_KEY = key
    all_times = [t for per in times for t in per]
    return {
        "doctors": len(catalog["medicos"]),
        "specialties": len(catalog["especialidades"]),
        "tokens_per_turn": tokens,
        "tokens_mean": round(statistics.fmean(tokens), 1),
        "time": common.summarize_ms(all_times),
        "time_p50_per_message_ms": [round(statistics.median(t) * 1000, 3) if t else None for t in times],
        "naive_catalogue_tokens": -(-len(common.catalogue_full_text()) // 4),
    }


def main(argv: list[str] | None = None) -> common.Report:
    parser = common.arg_parser(__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, default=None, help="timed conversations per clinic")
    args = parser.parse_args(argv)
    report = common.Report(benchmark="clinic_scale", small=args.small)
    phones = args.phones or (1 if args.small else 30)
    with common.fake_gemini_started() as fake:
        common.bootstrap(gemini_allowed=True)
        common.gemini_path_forced()
        with common.bench_database("clinic_scale", migrate=not args.small), common.cache_cleanup():
            from rag_agent.demo import generate_large_clinic, seed_demo_clinic

            seed_demo_clinic()
            demo = measure("demo", phones, report, fake)
            started = time.perf_counter()
            generate_large_clinic(doctors=200, specialties=40)
            generated_s = time.perf_counter() - started
            large = measure("large", phones, report, fake)
    report.results = {"demo": demo, "large": large, "generate_large_clinic_s": round(generated_s, 2), "phones": phones}

    common.print_table(
        f"Clinic scale ({common.stack_label()})",
        [
            "clinic",
            "doctors",
            "specialties",
            "prompt tokens/turn (mean)",
            "turn p50 ms",
            "turn p95 ms",
            "naive catalogue tokens",
        ],
        [
            [
                name,
                r["doctors"],
                r["specialties"],
                r["tokens_mean"],
                r["time"]["median_ms"],
                r["time"]["p95_ms"],
                r["naive_catalogue_tokens"],
            ]
            for name, r in (("demo", demo), ("large", large))
        ],  # fmt: skip
    )
    common.print_table(
        "Per message (large / demo)",
        ["message", "tokens demo", "tokens large", "ratio", "p50 ms demo", "p50 ms large"],
        [
            [text[:40], d, lg, round(lg / d, 2) if d else "-", td, tl]
            for text, d, lg, td, tl in zip(
                SCRIPT,
                demo["tokens_per_turn"],
                large["tokens_per_turn"],
                demo["time_p50_per_message_ms"],
                large["time_p50_per_message_ms"],
                strict=True,
            )
        ],  # fmt: skip
    )
    token_ratio = large["tokens_mean"] / demo["tokens_mean"]
    worst = max(lg / d for d, lg in zip(demo["tokens_per_turn"], large["tokens_per_turn"], strict=True) if d)
    time_ratio = large["time"]["median_ms"] / demo["time"]["median_ms"]
    report.results.update(
        {"token_ratio_mean": round(token_ratio, 3), "token_ratio_worst_turn": round(worst, 3),
         "time_ratio_p50": round(time_ratio, 3)}
    )  # fmt: skip
    report.target("prompt tokens per turn, large / demo (mean)", goal=f"<= {TARGET_RATIO}x",
                  value=f"{token_ratio:.2f}x (worst turn {worst:.2f}x)", met=token_ratio <= TARGET_RATIO)  # fmt: skip
    report.target("turn time p50, large / demo", goal=f"<= {TARGET_RATIO}x", value=f"{time_ratio:.2f}x",
                  met=time_ratio <= TARGET_RATIO)  # fmt: skip
    report.notes.append(f"generate_large_clinic took {generated_s:.1f} s (not part of any figure)")
    return report


if __name__ == "__main__":
    sys.exit(common.run(main))
