"""The benchmark scripts run (tiny rounds, so their output, not their times, is checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run(script: str) -> str:
    done = subprocess.run(  # noqa: S603 (our own interpreter, our own scripts)
        [sys.executable, str(BENCHMARKS / script), "--spends", "20", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_the_sqlite_benchmark_prints_a_ratio_for_each_mode() -> None:
    out = run("bench_sqlite_spends.py")
    assert "one spend per transaction" in out
    assert "batched" in out
    assert "target: ratio >= 0.50 in both modes; worst ratio" in out


@pytest.mark.slow
def test_the_spend_profile_prints_each_line() -> None:
    out = run("profile_spend.py")
    for label in (
        "everything",
        "without attrs validators",
        "without the request fingerprint",
        "SqliteStore, SQL not executed",
    ):
        assert label in out
