"""The ``coinecon`` command's store subcommands, through the real entry point:
what they print, their exit status, one-line errors, and quiet pipes."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, Self

import pytest

from coinecon import Unit, __version__
from coinecon.__main__ import main
from coinecon.adapters.sqlite import SCHEMA_VERSION, SqliteStore
from coinecon.economy import CoinEconomy
from coinecon.ledger.journal import Cause
from coinecon.ledger.lots import LotOrigin
from coinecon.ledger.wallets import Wallets
from coinecon.recharge import EligibilityPolicy
from terminal_kit import on_a_terminal

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


@pytest.mark.parametrize("limit", ["0", "1001", "-5", "ten", "2.5"])
def test_history_limit_is_from_1_to_1000_or_a_usage_error(books: Path, limit: str) -> None:
    done = coinecon("history", str(books), "alice", "--limit", limit)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "coinecon history: error: argument --limit:" in done.stderr


@pytest.fixture(scope="module")
def long_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store where eve's wallet has 1,001 entries."""
    path = tmp_path_factory.mktemp("cli") / "long.db"
    with SqliteStore(path) as store, Wallets(store).batch() as wallets:
        for number in range(1_001):
            wallets.credit(
                f"promo-{number}",
                holder="eve",
                amount=Unit("COIN")(1),
                origin=LotOrigin.PROMOTION,
                cause=Cause("promotion", f"welcome-{number}"),
            )
    return path


@pytest.mark.parametrize(
    ("limit", "hint"),
    [
        ("50", "--limit 500"),
        ("101", "--limit 1000"),  # not 1010: more than a page
        ("1000", "coinecon export {db} --format csv --holder eve"),
    ],
)
def test_the_hint_for_older_entries_never_asks_for_more_than_1000(
    long_history: Path, limit: str, hint: str
) -> None:
    done = coinecon("history", str(long_history), "eve", "--limit", limit)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 + int(limit) + 1
    assert lines[-1] == f"  ... older entries: {hint.format(db=long_history)}"


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


def test_export_of_an_unknown_holder_is_refused_before_any_output(books: Path) -> None:
    for file_format in ("csv", "jsonl"):
        done = coinecon("export", str(books), "--format", file_format, "--holder", "nobody")
        assert (done.returncode, done.stdout) == (1, "")  # as balance and history refuse them
        assert done.stderr == f"coinecon: nobody has no accounts in {books}\n"


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


def _foreign(path: Path) -> None:
    """A SQLite file of another application, marked as its own."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA application_id = 1234")
        db.execute("CREATE TABLE notes (text TEXT)")


def _unmarked(path: Path) -> None:
    """A SQLite file of another application, with tables but no marker."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (text TEXT)")


def _newer(path: Path) -> None:
    """A coinecon store of a schema newer than this coinecon's."""
    shutil.copyfile(DATA / "schema_v5.db", path)
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_foreign, "another application"),
        (_unmarked, "another application"),
        (_newer, "newer than this coinecon's"),
    ],
)
def test_migrate_refuses_a_file_it_cannot_migrate_before_any_backup(
    tmp_path: Path, make: Any, message: str
) -> None:
    path = tmp_path / "books.db"
    make(path)
    before = path.read_bytes()
    done = coinecon("migrate", str(path))
    assert done.returncode == 2
    assert done.stderr.startswith("coinecon: ") and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["books.db"]  # no backup left
    assert path.read_bytes() == before


class _Frozen(datetime):
    """``datetime`` whose ``now()`` is always the same second."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> Self:
        moment = cls(2026, 12, 4, 23, 15, tzinfo=UTC)
        return moment if tz is None else moment.astimezone(tz)


def test_migrate_never_overwrites_a_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("coinecon._commands.datetime", _Frozen)
    stamp = _Frozen.now().astimezone().strftime("%Y%m%dT%H%M%S")
    old = tmp_path / "old.db"
    shutil.copyfile(DATA / "schema_v5.db", old)
    taken = tmp_path / f"old.db.v5-{stamp}.bak"
    taken.write_bytes(b"an earlier backup, kept")
    assert main(["migrate", str(old)]) == 0
    backup = tmp_path / f"old.db.v5-{stamp}-2.bak"
    assert str(backup) in capsys.readouterr().out
    assert taken.read_bytes() == b"an earlier backup, kept"
    with sqlite3.connect(backup) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 5


@pytest.mark.parametrize(
    ("arguments", "status", "message"),
    [
        (("verify", "missing.db"), 2, "cannot read missing.db: no such file"),
        (("balance", "{books}", "nobody"), 1, "nobody has no accounts"),
        (("export", "{books}", "--format", "csv", "--since", "yesterday"), 1, "ISO 8601"),
        (("export", "{books}", "--format", "csv", "--since", "2026-03-01T00:00"), 1, "time zone"),
        (("verify", "{text}"), 2, "not"),
        (("export", "{books}", "--format", "csv", "--holder", "nobody"), 1, "nobody has no"),
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
    ],
)
def test_quote_refuses_in_one_line(arguments: tuple[str, ...], status: int, message: str) -> None:
    done = coinecon("quote", str(EXAMPLE), *arguments)
    assert done.returncode == status
    assert done.stderr.startswith("coinecon: ") and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--region", "US", "--method", "card"), "one of the arguments --sku --coins is required"),
        (
            ("--sku", "coins_100", "--coins", "5", "--region", "US", "--method", "card"),
            "argument --coins: not allowed with argument --sku",
        ),
    ],
)
def test_quote_needs_sku_or_coins_or_is_a_usage_error(
    arguments: tuple[str, ...], message: str
) -> None:
    done = coinecon("quote", str(EXAMPLE), *arguments)
    assert (done.returncode, done.stdout) == (2, "")
    assert f"coinecon quote: error: {message}" in done.stderr


RESTRICTED = """
[unit]
code = "COIN"
[regions]
US = "USD"
GB = "GBP"
[eligibility]
regions = ["US"]
age_of_majority = { US = 21 }
[fees]
payment_methods = [{ method = "card" }]
[[packages]]
sku = "c100"
coins = 100
prices = { web = ["0.99 USD", "0.89 GBP"] }
"""


def test_quote_keeps_the_definitions_eligibility_but_the_age_requirement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = tmp_path / "restricted.toml"
    definition.write_text(RESTRICTED)
    used: list[EligibilityPolicy] = []
    quote = CoinEconomy.quote

    def noting(economy: CoinEconomy, *arguments: Any, **named: Any) -> Any:
        used.append(economy.eligibility)
        return quote(economy, *arguments, **named)

    monkeypatch.setattr(CoinEconomy, "quote", noting)
    command = ["quote", str(definition), "--sku", "c100", "--region", "US", "--method", "card"]
    assert main(command) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.startswith("100 COIN for ")
    assert used == [
        EligibilityPolicy(regions=["US"], age_of_majority={"US": 21}, require_age=False)
    ]


@pytest.mark.parametrize(
    "arguments",
    [
        ("verify", "{folder}"),
        ("balance", "{folder}", "bob"),
        ("history", "{folder}", "bob"),
        ("export", "{folder}", "--format", "csv"),
        ("migrate", "{folder}"),
        ("check", "{folder}"),
        ("check", str(EXAMPLE), "{folder}"),
        ("quote", "{folder}", "--sku", "coins_100", "--region", "US", "--method", "card"),
    ],
)
def test_a_folder_for_a_file_is_a_one_line_error(
    tmp_path: Path, arguments: tuple[str, ...]
) -> None:
    folder = tmp_path / "books.db"
    folder.mkdir()
    done = coinecon(*(a.format(folder=folder) for a in arguments))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"coinecon: {folder} is not a file\n"


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


@pytest.mark.parametrize("file_format", ["text", "json"])
def test_check_finds_every_file_before_any_output(tmp_path: Path, file_format: str) -> None:
    missing = tmp_path / "missing.toml"
    done = coinecon("check", str(EXAMPLE), str(missing), "--format", file_format)
    assert (done.returncode, done.stdout) == (2, "")  # as for any file that cannot be read
    assert done.stderr == f"coinecon: cannot read {missing}: no such file\n"


def test_long_work_shows_progress_on_a_terminal_only(books: Path) -> None:
    done, shown = on_a_terminal("export", str(books), "--format", "jsonl", timeout=120)
    records = len(done.stdout.splitlines())
    assert done.returncode == 0
    assert f"records written: {records:,}, done".encode() in shown
    piped = coinecon("export", str(books), "--format", "jsonl")
    assert piped.stderr == ""
