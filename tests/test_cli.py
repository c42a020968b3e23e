"""The ``coinecon`` command's store subcommands, through the real entry point:
what they print, their exit status, one-line errors, and quiet pipes."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from coinecon import __version__
from coinecon.__main__ import main
from coinecon.adapters.sqlite import SCHEMA_VERSION

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def books(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's store, kept."""
    path = tmp_path_factory.mktemp("cli") / "demo.db"
    assert main(["demo", "--db", str(path)]) == 0
    return path


def coinecon(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own interpreter, our own module)
        [sys.executable, "-m", "coinecon", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_version() -> None:
    done = coinecon("--version")
    assert (done.returncode, done.stdout.strip()) == (0, f"coinecon {__version__}")


def test_verify_says_the_books_are_clean(books: Path) -> None:
    done = coinecon("verify", str(books))
    assert done.returncode == 0
    assert done.stdout.strip().endswith(": clean")
    assert done.stderr == ""  # piped: no progress


def test_verify_exits_1_on_books_that_do_not_verify(books: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.db"
    shutil.copyfile(books, broken)
    with sqlite3.connect(broken) as db:
        db.execute("UPDATE accounts SET balance = balance + 1 WHERE owner = 'carol'")
    done = coinecon("verify", str(broken))
    assert done.returncode == 1
    assert "carol" in done.stdout


def test_balance_lists_every_account_of_a_holder(books: Path) -> None:
    done = coinecon("balance", str(books), "bob")
    assert done.returncode == 0
    assert done.stdout.splitlines() == [
        "creator-payable  USD      0.25 USD owed to them",
        "earnings         DIAMOND  0 DIAMOND",
    ]


def test_history_lists_the_latest_entries_newest_first(books: Path) -> None:
    done = coinecon("history", str(books), "alice", "--limit", "2")
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0] == "wallet:alice:COIN:"
    assert "chargeback" in lines[1] and "-1100 COIN" in lines[1]
    assert lines[-1] == "  ... older entries: --limit 20"


def test_export_writes_the_ledger_or_a_statement(books: Path) -> None:
    ledger = coinecon("export", str(books), "--format", "csv")
    assert ledger.returncode == 0
    assert ledger.stdout.startswith("sequence,transaction_id,occurred_at")
    statement = coinecon(
        "export",
        str(books),
        "--format",
        "jsonl",
        "--holder",
        "carol",
        "--since",
        "2026-03-02T20:01:00+00:00",
    )
    records = [json.loads(line) for line in statement.stdout.splitlines()]
    assert [r["record_type"] for r in records] == ["opening", "posting", "posting", "closing"]
    assert records[0]["balance"] == 525


def test_migrate_backs_up_then_upgrades(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    shutil.copyfile(DATA / "schema_v5.db", old)
    done = coinecon("migrate", str(old))
    assert done.returncode == 0, done.stderr
    assert f"migrated from schema version 5 to {SCHEMA_VERSION}" in done.stdout
    [backup] = tmp_path.glob("old.db.v5-*.bak")
    with sqlite3.connect(backup) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 5
    with sqlite3.connect(old) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    again = coinecon("migrate", str(old))
    assert (again.returncode, "nothing to do" in again.stdout) == (0, True)
    assert coinecon("verify", str(old)).returncode == 0


@pytest.mark.parametrize(
    ("arguments", "status", "message"),
    [
        (("verify", "missing.db"), 2, "cannot read missing.db: no such file"),
        (("balance", "{books}", "nobody"), 1, "nobody has no accounts"),
        (("export", "{books}", "--format", "csv", "--since", "yesterday"), 1, "ISO 8601"),
        (("export", "{books}", "--format", "csv", "--since", "2026-03-01T00:00"), 1, "time zone"),
        (("verify", "{text}"), 2, "not"),
    ],
)
def test_errors_are_one_line_and_a_nonzero_exit(
    books: Path, tmp_path: Path, arguments: tuple[str, ...], status: int, message: str
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all, just notes")
    done = coinecon(*(a.format(books=books, text=text) for a in arguments))
    assert done.returncode == status
    assert done.stderr.startswith("coinecon: ") and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1  # never a traceback


def test_every_subcommand_has_help_with_an_example() -> None:
    for name in ("verify", "balance", "history", "export", "migrate"):
        done = coinecon(name, "--help")
        assert done.returncode == 0
        assert "example" in done.stdout


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "economy.toml"


def test_quote_prices_a_package_line_by_line() -> None:
    done = coinecon(
        "quote", str(EXAMPLE), "--sku", "coins_100", "--region", "GB", "--method", "card"
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "100 COIN for 0.94 GBP"
    assert "  100 coins (coins_100): 0.89 GBP" in lines
    assert lines[-1].startswith("the platform keeps ")


@pytest.mark.parametrize(
    ("arguments", "status", "message"),
    [
        (("--sku", "coins_100", "--region", "XX", "--method", "card"), 1, "'XX'"),
        (("--sku", "coins_7", "--region", "US", "--method", "card"), 1, "coins_7"),
        (
            ("--sku", "coins_100", "--coins", "5", "--region", "US", "--method", "card"),
            1,
            "not both",
        ),
    ],
)
def test_quote_refuses_in_one_line(arguments: tuple[str, ...], status: int, message: str) -> None:
    done = coinecon("quote", str(EXAMPLE), *arguments)
    assert done.returncode == status
    assert done.stderr.startswith("coinecon: ") and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_quote_of_a_missing_or_broken_file(tmp_path: Path) -> None:
    missing = coinecon(
        "quote", str(tmp_path / "none.toml"), "--sku", "a", "--region", "US", "--method", "card"
    )
    assert missing.returncode == 2
    broken = tmp_path / "broken.toml"
    broken.write_text("[unit\\n")
    done = coinecon("quote", str(broken), "--sku", "a", "--region", "US", "--method", "card")
    assert done.returncode == 1
    assert "not valid TOML" in done.stderr


LADDER = """
[unit]
code = "COIN"
[regions]
US = "USD"
[fees]
payment_methods = [{ method = "card" }]
taxes = [{ region = "US", rate = "8%", mode = "exclusive" }]
[[packages]]
sku = "c70"
coins = 70
prices = { web = ["0.99 USD"] }
[[packages]]
sku = "c350"
coins = 350
prices = { web = ["4.99 USD"] }
"""


def test_check_lints_definitions_by_rule_code(tmp_path: Path) -> None:
    ladder = tmp_path / "ladder.toml"
    ladder.write_text(LADDER)
    clean = coinecon("check", str(EXAMPLE))
    assert (clean.returncode, clean.stdout.strip()) == (0, f"{EXAMPLE}: no problems")
    warned = coinecon("check", str(ladder), str(EXAMPLE))
    assert warned.returncode == 0  # a rising per-coin price is a warning by default
    assert f"{ladder}: warning[P002]: package c350, USD/web" in warned.stdout
    assert coinecon("check", str(ladder), "--fail-on", "warning").returncode == 1
    raised = coinecon("check", str(ladder), "--rule", "P002=error", "--format", "json")
    assert raised.returncode == 1
    [problem] = json.loads(raised.stdout)
    assert problem | {"message": ""} == {
        "file": str(ladder),
        "code": "P002",
        "severity": "error",
        "where": "package c350, USD/web",
        "message": "",
    }
    silenced = coinecon("check", str(ladder), "--rule", "P002=off", "--fail-on", "warning")
    assert (silenced.returncode, silenced.stdout.strip()) == (0, f"{ladder}: no problems")
    in_file = tmp_path / "strict.toml"
    in_file.write_text('[rules]\nP002 = "error"\n' + LADDER)
    assert coinecon("check", str(in_file)).returncode == 1  # the file's own override


def test_check_says_what_it_cannot_read_or_use(tmp_path: Path) -> None:
    assert coinecon("check", str(tmp_path / "none.toml")).returncode == 2
    bad_rule = coinecon("check", str(EXAMPLE), "--rule", "P009=error")
    assert bad_rule.returncode == 2 and "did you mean" in bad_rule.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text('[unit]\ncode = "COIN"\n[regions]\nUS = "USD"\n[limits]\nspeed = 3\n')
    done = coinecon("check", str(broken))
    assert done.returncode == 1
    assert f"{broken}: error[D000]: limits.speed: unknown key" in done.stdout


def test_long_work_shows_progress_on_a_terminal_only(books: Path) -> None:
    import os  # noqa: PLC0415
    import pty  # noqa: PLC0415

    leader, follower = pty.openpty()
    try:
        done = subprocess.run(  # noqa: S603 (our own interpreter, our own module)
            [sys.executable, "-m", "coinecon", "export", str(books), "--format", "jsonl"],
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=120,
            check=False,
        )
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    records = len(done.stdout.splitlines())
    assert done.returncode == 0
    assert f"records written: {records:,}, done".encode() in shown
    piped = coinecon("export", str(books), "--format", "jsonl")
    assert piped.stderr == ""
