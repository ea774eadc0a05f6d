"""The benchmarks still run: each fast one in --small mode as a subprocess, on whichever stack pytest runs on.

The load test (bench/webhook_load.py) is not here: it boots gunicorn and is run by hand (see bench/README.md).
They are launched together (they use databases and cache prefixes of their own) and each must exit 0 and write
its figures as JSON. The figures themselves are not asserted: targets are reported, never enforced, here.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 180

BENCHMARKS = {
    "turn_cost": [],
    "session_access": [],
    "prompt_growth": [],
    "clinic_scale": [],
    "idempotent_replay": [],
}


@pytest.fixture(scope="module")
def bench_runs(tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("bench")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    started = {}
    for name, extra in BENCHMARKS.items():
        json_path = out / f"{name}.json"
        command = [sys.executable, "-m", f"bench.{name}", "--small", "--json", str(json_path), *extra]
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        started[name] = (process, json_path)
    runs = {}
    for name, (process, json_path) in started.items():
        try:
            output, _ = process.communicate(timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        data = json.loads(json_path.read_text()) if json_path.exists() else None
        runs[name] = {"returncode": process.returncode, "output": output, "data": data}
    return runs


def _run(bench_runs: dict, name: str) -> dict:
    run = bench_runs[name]
    assert run["returncode"] == 0, f"bench.{name} exited {run['returncode']}:\n{run['output'][-3000:]}"
    data = run["data"]
    assert data is not None, f"bench.{name} wrote no JSON:\n{run['output'][-3000:]}"
    assert data["benchmark"] == name
    assert data["mode"] == "small"
    assert data["errors"] == []
    assert data["stack"]["database"] == ("postgresql" if settings.IS_POSTGRES else "sqlite")
    assert data["stack"]["cache"] == settings.CACHE_BACKEND_NAME
    return data


def test_turn_cost_counts_queries_and_cache_operations_per_scenario(bench_runs):
    data = _run(bench_runs, "turn_cost")
    scenarios = data["results"]["scenarios"]
    assert set(scenarios) == {"cold_question", "warm_question", "warm_booking_step", "warm_booking_book"}
    warm = scenarios["warm_question"]
    assert set(warm) == {"cache", "session_uncached", "no_cache"}
    # Without the session cache the session must come from the database: the counters see it.
    assert warm["session_uncached"]["db_reads"] > warm["cache"]["db_reads"]
    assert warm["cache"]["cache_ops"] > 0
    assert warm["cache"]["time"]["median_ms"] > 0
    assert {t["name"] for t in data["targets"]} >= {"warm non-booking turn: database reads"}


def test_session_access_times_hit_miss_and_database_read(bench_runs):
    data = _run(bench_runs, "session_access")
    stats = data["results"]["stats"]
    assert set(stats) == {"hit", "miss", "database", "raw_get"}
    assert all(s["n"] >= 300 and s["median_ms"] > 0 for s in stats.values())
    assert data["targets"][0]["met"] in ({True, False} if settings.REDIS_URL else {None})


def test_prompt_growth_measures_every_checkpoint_beside_the_naive_prompt(bench_runs):
    data = _run(bench_runs, "prompt_growth")
    checkpoints = data["results"]["checkpoints"]
    assert set(checkpoints) == {"1", "5", "20", "50", "100"}
    # The naive prompt carries the whole history: it must grow between turn 5 and turn 100.
    assert checkpoints["100"]["naive"] > checkpoints["5"]["naive"]
    assert all(c["bounded"] > 0 for c in checkpoints.values())
    assert "turn100_over_turn5" in data["results"]


def test_clinic_scale_compares_the_demo_and_the_generated_clinic(bench_runs):
    data = _run(bench_runs, "clinic_scale")
    results = data["results"]
    assert results["large"]["doctors"] - results["demo"]["doctors"] == 200
    assert results["large"]["naive_catalogue_tokens"] > results["demo"]["naive_catalogue_tokens"]
    assert {"token_ratio_mean", "time_ratio_p50"} <= set(results)


def test_idempotent_replay_times_the_first_request_and_its_replay(bench_runs):
    data = _run(bench_runs, "idempotent_replay")
    stats = data["results"]["stats"]
    assert stats["first"]["n"] == stats["replay"]["n"] >= 50
