"""Prompt size as a conversation grows: the bounded prompt vs a naive full-history + whole-catalogue prompt.

    python -m bench.prompt_growth [--small] [--json out.json] [--turns 100]

One patient talks for 100 turns through the real engine (`turn_handle`), with every turn forced through the
Gemini path (no offline reading counts as certain) and the real google-genai SDK pointed at the local fake
Gemini server (tests/fakes/gemini_server.py). Each turn's prompt tokens are the `usage_metadata.prompt_token_count`
the SDK returned, as stored on the patient's message (`input_tokens`). Beside it, at the same turns, the naive
prompt (`prompt_naive_full_history`: every earlier message + the whole clinic catalogue) is sent through the same
SDK and counted the same way.

The conversation repeats a 5-message cycle (book cardiology, pick a doctor, ask a price mid-flow, start over, ask
about a plan), so turns 5, 20, 50 and 100 are the same question asked in the same state: only the history differs.
Token counts are the fake's: ceil(characters / 4), the same estimate as `prompt.CHARS_PER_TOKEN`; real Gemini
tokenisation of Portuguese differs by some tens of percent, the ratios between prompts much less.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

CYCLE = [
    "quero marcar uma consulta de cardiologia particular, meu nome é Maria Silva",
    "o primeiro",
    "quanto custa o eletrocardiograma?",
    "recomeçar",
    "vocês aceitam unimed para cardiologia?",
]
CHECKPOINTS = (1, 5, 20, 50, 100)
TARGET_RATIO = 1.2


def main(argv: list[str] | None = None) -> common.Report:
    parser = common.arg_parser(__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=100, help="conversation length (checkpoints beyond it skipped)")
    args = parser.parse_args(argv)
    report = common.Report(benchmark="prompt_growth", small=args.small)
    with common.fake_gemini_started() as fake:
        common.bootstrap(gemini_allowed=True)
        common.gemini_path_forced()
        with common.bench_database("prompt_growth", migrate=not args.small), common.cache_cleanup():
            run(args, report, fake)
    return report


def run(args, report: common.Report, fake) -> None:
    from api_gateway.models import ConversationMessage
    from api_gateway.services.conversation import turn_handle
    from api_gateway.services.session_cache import session_manager
    from rag_agent.demo import seed_demo_clinic

    seed_demo_clinic()
    catalogue = common.catalogue_full_text()
    phone = "5511966660001"
    checkpoints = [t for t in CHECKPOINTS if t <= args.turns]
    bounded: dict[int, int] = {}
    naive: dict[int, int] = {}
    estimated: dict[int, int] = {}
    every_turn: list[int] = []
    for turn in range(1, args.turns + 1):
        text = CYCLE[(turn - 1) % len(CYCLE)]
        measure_naive = turn in checkpoints or not args.small
        if measure_naive:
            session = session_manager.get_or_start(phone=phone)
            history = common.session_history(session.pk)
            naive[turn] = common.naive_prompt_tokens(text=text, session=session, history=history, catalogue=catalogue)
        before = len(fake.generate_requests)
        result = turn_handle(phone=phone, text=text)
        calls = fake.generate_requests[before:]
        tokens = ConversationMessage.objects.get(pk=result.user_message_id).input_tokens
        if len(calls) != 1 or tokens <= 0:
            report.errors.append(f"turn {turn}: {len(calls)} Gemini calls, {tokens} prompt tokens recorded")
            continue
        bounded[turn] = tokens
        estimated[turn] = -(-calls[0].prompt_chars // 4)
        every_turn.append(tokens)

    missing = [t for t in checkpoints if t not in bounded]
    if missing:
        raise common.CannotMeasure(f"no prompt measured at turns {missing}")
    rows = [
        [t, bounded[t], naive[t], round(naive[t] / bounded[t], 1), round(bounded[t] / bounded[checkpoints[0]], 2)]
        for t in checkpoints
    ]
    common.print_table(
        f"Prompt tokens per turn ({common.stack_label()}; SDK usage_metadata from the fake Gemini)",
        ["turn", "bounded", "naive", "naive / bounded", "bounded / turn 1"],
        rows,
    )
    report.results = {
        "checkpoints": {str(t): {"bounded": bounded[t], "naive": naive[t]} for t in checkpoints},
        "bounded_all_turns": {
            "min": min(every_turn),
            "max": max(every_turn),
            "mean": round(sum(every_turn) / len(every_turn), 1),
        },
        "naive_all_turns": {str(t): v for t, v in naive.items()},
        "usage_equals_chars_over_4": all(estimated[t] == bounded[t] for t in bounded),
        "turns": args.turns,
    }
    print(
        f"\n  bounded prompt over all {len(every_turn)} turns: min {min(every_turn)}, max {max(every_turn)}, "
        f"mean {report.results['bounded_all_turns']['mean']} tokens"
    )
    if 5 in bounded and args.turns >= 100:
        ratio = bounded[100] / bounded[5]
        report.results["turn100_over_turn5"] = round(ratio, 3)
        report.target(
            "turn 100 vs turn 5", goal=f"<= {TARGET_RATIO}x", value=f"{ratio:.3f}x", met=ratio <= TARGET_RATIO
        )
        saved = 1 - bounded[100] / naive[100]
        report.results["saving_vs_naive_at_turn100"] = round(saved, 3)
        report.notes.append(f"at turn 100 the bounded prompt is {saved:.1%} smaller than the naive one")


if __name__ == "__main__":
    sys.exit(common.run(main))
