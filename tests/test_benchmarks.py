"""The benchmark scripts run (tiny rounds, so their output, not their times, is checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run(script: str, *options: str) -> str:
    done = subprocess.run(  # noqa: S603 (our own interpreter, our own scripts)
        [sys.executable, str(BENCHMARKS / script), *options],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_the_ledger_benchmark_checks_its_baselines_and_prints_every_case() -> None:
    out = run("bench_ledger.py", "--quick")
    assert "self-check: (a) and (c) refuse an overdraft and replay a key" in out
    for label in (
        "memory: Wallets on MemoryStore vs (c) plain dict",
        "SQLite NORMAL, one command per commit vs (a) minimal",
        "SQLite NORMAL, one command per commit vs (b) same rows",
        "SQLite FULL, one command per commit vs (a) minimal",
        "SQLite FULL, one command per commit vs (b) same rows",
        "SQLite NORMAL, batched (1,000 per commit) vs (a) minimal",
        "SQLite NORMAL, batched (1,000 per commit) vs (b) same rows",
        "group commit FULL, 16 threads vs coinecon one per commit",
        "group commit NORMAL, 16 threads vs (a) one per commit",
    ):
        assert label in out
    assert "targets: " in out
    # Every case with a target says how it did, or that it could not be measured.
    assert out.count(" PASS") + out.count(" FAIL") + out.count("n/a (group commit") >= 5


@pytest.mark.slow
def test_the_spend_profile_prints_each_line() -> None:
    out = run("profile_spend.py", "--spends", "20", "--rounds", "1")
    for label in (
        "everything",
        "without attrs validators",
        "without the request fingerprint",
        "SqliteStore, SQL not executed",
    ):
        assert label in out
