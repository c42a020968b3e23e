"""The benchmark scripts run (tiny rounds, so their output, not their times, is checked)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from coinecon.adapters.sqlite import SCHEMA_VERSION, _lots, _rows, _sql

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
    assert "WAL pages per command, one per commit at NORMAL" in out
    # Every case with a target says how it did, or that it could not be measured.
    assert out.count(" PASS") + out.count(" FAIL") + out.count("n/a (group commit") >= 5


@pytest.mark.slow
def test_the_purchase_benchmark_checks_its_baseline_and_prints_every_case() -> None:
    out = run("bench_purchases.py", "--quick")
    assert "self-check: (r) records the payment, then its transaction and postings, once" in out
    for label in (
        "SQLite NORMAL, one purchase per commit pair",
        "SQLite FULL, one purchase per commit pair",
        "group commit FULL,  4 threads",
        "group commit FULL, 16 threads",
    ):
        assert label in out
    assert out.count("x PASS") + out.count("x FAIL") == 4  # each case says how it did
    assert "self-check: the ceiling's replay writes coinecon's rows, the same" in out
    assert out.count("  ceiling: its statements, no Python") == 2  # one per commit cases
    assert "targets: " in out


@pytest.mark.slow
def test_the_gift_benchmark_checks_its_baselines_and_prints_every_case() -> None:
    out = run("bench_gifts.py", "--quick")
    assert "self-check: (g) and (d) refuse, replay and earn creators what coinecon does" in out
    for label in (
        "memory: CoinEconomy on MemoryStore vs (d)",
        "SQLite NORMAL, one gift per commit vs (g)",
        "SQLite FULL, one gift per commit vs (g)",
        "SQLite NORMAL, batched vs (g) batched",
        "group commit FULL, 16 threads vs (g) one/commit",
    ):
        assert label in out
    assert out.count("x PASS") + out.count("x FAIL") == 5  # each case says how it did
    assert out.count("  ceiling: its statements, no Python") == 2
    assert "targets: " in out


@pytest.mark.slow
def test_the_scale_benchmark_prints_every_row_with_its_slope() -> None:
    out = run("scale.py", "--quick")
    for label in (
        "memory: spend",
        "memory: history, filtered",
        "memory: verify, peak memory",
        "sqlite: spend 1 coin",
        "sqlite: expire 100 lots",
        "memory: balance, empty wallet",
        "sqlite: balance, empty wallet",
        "memory: spend 1 coin",
        "pricing: is a promotion on",
        "pricing: check() problems",
    ):
        assert label in out
    assert "targets: " in out
    assert out.count(" PASS") + out.count(" FAIL") >= 15


def test_the_growth_exponent_is_the_slope_in_log_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    scale = importlib.import_module("scale")
    assert scale.slope([1, 10, 100], [5, 5, 5]) == pytest.approx(0)
    assert scale.slope([1, 10, 100], [2, 20, 200]) == pytest.approx(1)
    assert scale.slope([10, 100, 1000], [1, 100, 10_000]) == pytest.approx(2)
    flat = scale.Row("x", "n", (1, 10, 100), (1.0, 1.3, 1.5), "flat")
    assert scale.verdict(flat) == "PASS"
    assert scale.verdict(flat._replace(seconds=(1.0, 2.0, 4.0))) == "FAIL"
    assert scale.verdict(flat._replace(target="linear", seconds=(1.0, 9.0, 110.0))) == "PASS"
    assert scale.verdict(flat._replace(target="")) == ""


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


def test_baseline_b_runs_the_adapters_own_statements(monkeypatch: pytest.MonkeyPatch) -> None:
    """(b) copies the SQL of coinecon's adapter word for word: a change to the
    adapter's statements shows here, where the rows written may not show it."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    raw = importlib.import_module("_raw_same_rows")
    assert raw.SCHEMA_VERSION == SCHEMA_VERSION
    for name in (
        "_IDEMPOTENCY_RECORD",
        "_TRANSACTION_EXISTS",
        "_NEXT_ROW",
        "_NEXT_SEQUENCE",
        "_UPSERT_ACCOUNT",
        "_ACCOUNT_BY_KEY",
        "_INSERT_TRANSACTION",
        "_UPDATE_BALANCE",
        "_INSERT_POSTING",
        "_UNBALANCED",
        "_UPDATE_LOT_CONSUMED",
        "_UPDATE_LOT_EMPTIED",
        "_LAST_SEQUENCE",
        "_INSERT_IDEMPOTENCY",
        "_INSERT_CONSUMPTION_ITEM",
        "_EVENT_EXISTS",
        "_INSERT_EVENT",
        "_LAST_ROW",
    ):
        assert getattr(raw, name) == getattr(_sql, name), f"(b)'s {name} is not the adapter's"
    assert raw._FLUSH_ROWS == _sql._FLUSH_ROWS
    assert raw._CONSUMED == _lots._CONSUMED
    assert raw._OPEN_FEW == _lots._OPEN_FEW
    assert raw._FEW_LOTS == _lots._FEW_LOTS
    assert raw._LOT_COLUMNS == _rows._LOT_COLUMNS
    assert raw._INSERT_LOT == _lots._INSERT_LOT
    for count, sql in raw._BALANCES_BY_ID.items():
        assert sql == _sql._balances_by_id(count)


@pytest.mark.slow
def test_baseline_b_writes_coinecons_rows_when_rows_are_sent_before_commit() -> None:
    """With the flush threshold lowered on both sides, rows go to SQLite in the
    middle of commands (an idempotency record then comes after its
    transaction's row and gets a row of its own): (b) still writes what
    coinecon writes."""
    done = subprocess.run(  # noqa: S603 (our own interpreter, our own script)
        [sys.executable, "-c", _LOW_FLUSH_THRESHOLD_CHECK],
        cwd=BENCHMARKS,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr


_LOW_FLUSH_THRESHOLD_CHECK = """
import pathlib, tempfile
import bench_ledger, _raw_same_rows
from coinecon.adapters.sqlite import _ledger
_ledger._FLUSH_ROWS = _raw_same_rows._FLUSH_ROWS = 7
with tempfile.TemporaryDirectory() as tmp:
    bench_ledger.check_same_rows(pathlib.Path(tmp))
"""


@pytest.mark.slow
def test_the_postgres_benchmark_checks_its_baselines_and_prints_every_case() -> None:
    import postgres_kit  # noqa: PLC0415 (needs psycopg, which this module otherwise does not)

    server = postgres_kit.conninfo()  # skips without a server (fails in CI)
    out = run(
        "bench_postgres.py", "--quick", "--holders", "100", "--workers", "1,2", "--conninfo", server
    )
    for label in (
        "1 worker(s) vs (a) minimal",
        "1 worker(s) vs (b) same rows",
        "2 worker(s) vs (a) minimal",
        "2 worker(s) vs (b) same rows",
        "8 workers: one creator vs eight",
        "targets: ",
    ):
        assert label in out, out


@pytest.mark.slow
def test_the_simulation_benchmark_runs_and_reports_each_day() -> None:
    out = run("bench_simulation.py", "--quick")
    for label in (
        "day   1:",
        "day   3:",
        "commands in",
        "in the engine",
        "MiB a day",
        "verify: clean",
    ):
        assert label in out, out


@pytest.mark.slow
def test_the_simulations_own_state_stays_flat_as_days_pass() -> None:
    """What the run holds of its own (not the books) grows by next to
    nothing a day: it streams its metrics and keeps no events."""
    out = run("bench_simulation.py", "--quick", "--own-memory")
    line = next(line for line in out.splitlines() if line.startswith("the simulation's own state"))
    first = float(line.split(": ", 1)[1].split()[0])
    per_day = float(line.rsplit(": ", 1)[1].split()[0])
    assert first > 0.1, out  # 2,000 viewers and their counters: measured, not nothing
    assert abs(per_day) < 0.02, out
    assert "(the simulation's own:" in out, out
