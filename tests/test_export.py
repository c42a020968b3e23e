from __future__ import annotations

import csv
import io
import itertools
import json
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given, settings
from hypothesis import strategies as st

import coinecon.export as export_module
from coinecon import (
    LEDGER_COLUMNS,
    PLATFORM,
    STATEMENT_COLUMNS,
    AccountKey,
    AccountKind,
    Cause,
    Currency,
    ExportError,
    ExportFormat,
    InsufficientFunds,
    LotOrigin,
    ManualClock,
    Money,
    Posting,
    Transaction,
    TransactionKind,
    Unit,
    Wallets,
    escape_formula,
    export_ledger,
    export_statement,
)
from coinecon.adapters.memory import MemoryStore
from coinecon.adapters.sqlite import SqliteStore
from coinecon.errors import (
    InvalidIdentifierError,
    InvalidTypeError,
    NaiveDatetimeError,
    StorageError,
    ValidationError,
)
from coinecon.ledger.journal import RecordedPosting, check_rules
from coinecon.ports import Store
from coinecon.testing import strategies as cst
from coinecon.testing.contract import COIN, DIAMOND, T0

USD = Currency.of("USD")

# Holders and causes a spreadsheet would run as formulas, or that need CSV quoting.
TRICKY = ["=cmd|' /c calc'!A1", "+1+1", "-2+3", "'quoted", 'o"brien, jr', "\uff1dSUM(A1)", "ünï"]
INT_COLUMNS = frozenset({"sequence", "amount", "balance_after", "balance"})

Record = dict[str, Any]


# -- helpers ---------------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def counter() -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"id-{next(numbers)}"


def record(store: Store, transaction: Transaction) -> None:
    """Record a hand-built transaction, as the service would."""
    with store.unit_of_work() as uow:
        accounts = [p.account for p in transaction.postings]
        uow.ledger.record(transaction, check_rules(transaction, uow.ledger.balances(accounts)))
        uow.commit()


def populate(store: Store, clock: ManualClock) -> Wallets:
    """A small economy touching units and money, holder and system accounts,
    tricky identifiers, metadata, a gift, an expiry and a chargeback debt."""
    wallets = Wallets(store, clock=clock, new_id=counter())
    wallets.credit(
        "order-1",
        holder="alice",
        amount=COIN(500),
        origin=LotOrigin.PURCHASE,
        cause=Cause("purchase", "order-1"),
        value=Money("4.99", "USD"),
        metadata={"note": 'line one\nline two, "quoted"', "count": 3, "ok": True, "none": None},
    )
    clock.advance(timedelta(hours=1))
    for n, holder in enumerate(TRICKY):
        wallets.credit(
            f"={n}+{n}",
            holder=holder,
            amount=COIN(10 + n),
            origin=LotOrigin.PROMOTION,
            cause=Cause("@promo", f"-welcome,{n}"),
            expires_in=relativedelta(days=1),
        )
    clock.advance(timedelta(hours=1))
    wallets.spend(
        "gift-1",
        holder="alice",
        amount=COIN(120),
        cause=Cause("gift", "rose-1"),
        kind=TransactionKind.GIFT,
        also=(
            Posting(AccountKey.issuance(DIAMOND), -60),
            Posting(AccountKey.earnings("bob", DIAMOND), 60),
            Posting(AccountKey.system(AccountKind.CREATOR_SHARE, USD), 30),
            Posting(AccountKey(AccountKind.CREATOR_PAYABLE, "bob", USD), -30),
        ),
    )
    clock.advance(timedelta(days=2))
    wallets.expire()
    clock.advance(timedelta(hours=1))
    record(
        store,
        Transaction(
            id="chargeback-1",
            kind=TransactionKind.CHARGEBACK,
            postings=(
                Posting(AccountKey.wallet("alice", COIN), -500),
                Posting(AccountKey.issuance(COIN), 500),
            ),
            occurred_at=clock.now(),
            idempotency_key="chargeback-1",
            cause=Cause("chargeback", "order-1"),
        ),
    )
    return wallets


def ledger_text(store: Store, file_format: str, **options: Any) -> str:
    out = io.StringIO(newline="")
    export_ledger(store, out, file_format=file_format, **options)  # type: ignore[arg-type]
    return out.getvalue()


def statement_text(store: Store, file_format: str, **options: Any) -> str:
    out = io.StringIO(newline="")
    export_statement(store, out, file_format=file_format, **options)  # type: ignore[arg-type]
    return out.getvalue()


def unescape(cell: str) -> str:
    """The documented inverse of escape_formula."""
    return cell.removeprefix("'")


def typed(row: dict[str, str], *, escaped: bool = True) -> Record:
    """A CSV row as the JSON Lines record it stands for."""
    result: Record = {}
    for column, cell in row.items():
        text = unescape(cell) if escaped else cell
        if text == "":
            continue
        if column in INT_COLUMNS:
            result[column] = int(text)
        elif column == "metadata":
            result[column] = json.loads(text)
        else:
            result[column] = text
    return result


def csv_records(text: str) -> list[Record]:
    return [typed(row) for row in csv.DictReader(io.StringIO(text, newline=""))]


def jsonl_records(text: str) -> list[Record]:
    assert text == "" or text.endswith("\n")
    return [
        {k: v for k, v in json.loads(line).items() if v is not None} for line in text.splitlines()
    ]


def read(store: Store, exporter: Callable[..., str], **options: Any) -> list[Record]:
    """Export in both formats, check they say the same, return the records."""
    from_csv = csv_records(exporter(store, "csv", **options))
    from_jsonl = jsonl_records(exporter(store, "jsonl", **options))
    assert from_csv == from_jsonl
    return from_jsonl


def account_of(row: Record) -> tuple[str, str, str, str]:
    return (row["account_kind"], row["account_owner"], row["asset_type"], row["asset_code"])


def key_of(account: AccountKey) -> tuple[str, str, str, str]:
    asset_type = "unit" if isinstance(account.asset, Unit) else "currency"
    return (account.kind.value, account.owner, asset_type, account.asset.code)


def check_ledger_export(store: Store) -> list[Record]:
    """Every posting is exported with its balance; transactions balance per
    asset; replaying the amounts gives every stored balance."""
    rows = read(store, ledger_text)
    with store.unit_of_work() as uow:
        postings = list(uow.ledger.postings())
        balances = {key_of(a): b for a, b in uow.ledger.accounts().items()}
    assert [r["sequence"] for r in rows] == [p.sequence for p in postings]
    assert [(r["transaction_id"], r["amount"], r["balance_after"]) for r in rows] == [
        (p.transaction_id, p.amount, p.balance_after) for p in postings
    ]
    per_transaction: dict[tuple[str, str, str], int] = defaultdict(int)
    running: dict[tuple[str, str, str, str], int] = defaultdict(int)
    for row in rows:
        per_transaction[row["transaction_id"], row["asset_type"], row["asset_code"]] += row[
            "amount"
        ]
        running[account_of(row)] += row["amount"]
        assert running[account_of(row)] == row["balance_after"]
    assert set(per_transaction.values()) == ({0} if rows else set())
    assert dict(running) == balances
    return rows


def sections(records: list[Record]) -> list[list[Record]]:
    """Split statement records into per-account sections, checking their shape."""
    result: list[list[Record]] = []
    for row in records:
        if row["record_type"] == "opening":
            result.append([row])
        else:
            assert result
            assert account_of(row) == account_of(result[-1][0])
            result[-1].append(row)
    for section in result:
        assert section[-1]["record_type"] == "closing"
        assert {r["record_type"] for r in section[1:-1]} <= {"posting"}
        balance = section[0]["balance"]
        for row in section[1:-1]:
            balance += row["amount"]
            assert row["balance"] == balance
        assert section[-1]["balance"] == balance
    return result


# -- the ledger ------------------------------------------------------------------


class TestLedgerExport:
    def test_round_trips_in_both_formats(self, store: Store, clock: ManualClock) -> None:
        populate(store, clock)
        rows = check_ledger_export(store)
        # The purchase and the gift each also move money (clearing, deferred revenue).
        assert len(rows) == 4 + 2 * len(TRICKY) + 8 + 2 * len(TRICKY) + 2
        assert rows[0] == {
            "sequence": 1,
            "transaction_id": "id-1",
            "occurred_at": "2026-01-01T00:00:00+00:00",
            "kind": "purchase",
            "idempotency_key": "order-1",
            "cause_type": "purchase",
            "cause_id": "order-1",
            "account_kind": "issuance",
            "account_owner": PLATFORM,
            "asset_type": "unit",
            "asset_code": "COIN",
            "amount": -500,
            "balance_after": -500,
            "metadata": {
                "count": 3,
                "none": None,
                "note": 'line one\nline two, "quoted"',
                "ok": True,
            },
        }
        owners = {r["account_owner"] for r in rows}
        assert set(TRICKY) <= owners
        assert {r["asset_type"] for r in rows} == {"unit", "currency"}

    def test_returns_the_count_and_writes_the_header(self, store: Store) -> None:
        out = io.StringIO(newline="")
        assert export_ledger(store, out, file_format=ExportFormat.CSV) == 0
        assert out.getvalue() == ",".join(LEDGER_COLUMNS) + "\r\n"
        out = io.StringIO()
        assert export_ledger(store, out, file_format=ExportFormat.JSONL) == 0
        assert out.getvalue() == ""
        Wallets(store).credit(
            "k", holder="h", amount=COIN(1), origin=LotOrigin.BONUS, cause=Cause("b", "1")
        )
        assert export_ledger(store, io.StringIO(), file_format="csv") == 2

    def test_jsonl_keys_and_integer_types(self, store: Store, clock: ManualClock) -> None:
        populate(store, clock)
        for line in ledger_text(store, "jsonl").splitlines():
            assert line.isascii()
            data = json.loads(line)
            assert tuple(data) == LEDGER_COLUMNS
            for column in INT_COLUMNS & set(data):
                assert type(data[column]) is int
            assert isinstance(data["metadata"], dict)

    def test_times_are_utc_with_offset(self, store: Store) -> None:
        tokyo = timezone(timedelta(hours=9))
        clock = ManualClock(datetime(2026, 1, 1, 9, 30, tzinfo=tokyo))
        Wallets(store, clock=clock).credit(
            "k", holder="h", amount=COIN(1), origin=LotOrigin.BONUS, cause=Cause("b", "1")
        )
        rows = read(store, ledger_text)
        assert {r["occurred_at"] for r in rows} == {"2026-01-01T00:30:00+00:00"}
        assert datetime.fromisoformat(rows[0]["occurred_at"]) == clock.now()

    def test_period_filters_transactions(self, store: Store, clock: ManualClock) -> None:
        populate(store, clock)
        everything = read(store, ledger_text)
        start, end = T0 + timedelta(minutes=30), T0 + timedelta(hours=2)
        part = read(store, ledger_text, since=start, until=end)
        assert part == [
            r for r in everything if start <= datetime.fromisoformat(r["occurred_at"]) < end
        ]
        assert {r["kind"] for r in part} == {"promotion"}
        assert read(store, ledger_text, until=T0) == []
        assert read(store, ledger_text, since=T0) == everything

    def test_same_export_from_every_store(self, tmp_path: Path) -> None:
        memory = MemoryStore()
        populate(memory, ManualClock(T0))
        with SqliteStore(tmp_path / "other.db") as sqlite_store:
            populate(sqlite_store, ManualClock(T0))
            for file_format in ("csv", "jsonl"):
                assert ledger_text(memory, file_format) == ledger_text(sqlite_store, file_format)
                assert statement_text(memory, file_format, holder="bob") == statement_text(
                    sqlite_store, file_format, holder="bob"
                )

    def test_read_only_sqlite_store_exports_while_a_writer_is_open(
        self, tmp_path: Path, clock: ManualClock
    ) -> None:
        path = tmp_path / "coins.db"
        with SqliteStore(path) as writer:
            populate(writer, clock)
            expected = ledger_text(writer, "csv")
            with SqliteStore(path, read_only=True) as reader, writer.unit_of_work() as uow:
                # The writer records more and sends it to SQLite, uncommitted.
                uow.ledger.record(
                    grant := Transaction(
                        id="late",
                        kind=TransactionKind.ADJUSTMENT,
                        postings=(
                            Posting(AccountKey.issuance(COIN), -1),
                            Posting(AccountKey.wallet("late", COIN), 1),
                        ),
                        occurred_at=T0,
                        idempotency_key="late",
                        cause=Cause("test", "late"),
                    ),
                    {AccountKey.issuance(COIN): -1, AccountKey.wallet("late", COIN): 1},
                )
                assert uow.ledger.get(grant.id) is not None  # a read sends waiting writes
                assert ledger_text(reader, "csv") == expected

    def test_export_writes_nothing_to_the_store(self, store: Store, clock: ManualClock) -> None:
        populate(store, clock)

        def everything() -> tuple[object, ...]:
            with store.unit_of_work() as uow:
                return (
                    list(uow.ledger.transactions()),
                    list(uow.ledger.postings()),
                    uow.ledger.accounts(),
                    list(uow.lots.all()),
                    uow.outbox.pending(limit=1000),
                )

        before = everything()
        assert before[4]  # there are events that an export must leave pending
        export_ledger(store, io.StringIO(), file_format="csv")
        export_statement(store, io.StringIO(), file_format="csv", holder="alice")
        assert everything() == before

    def test_to_a_file_on_disk(self, store: Store, clock: ManualClock, tmp_path: Path) -> None:
        populate(store, clock)
        path = tmp_path / "ledger.csv"
        with path.open("w", encoding="utf-8-sig", newline="") as out:
            written = export_ledger(store, out, file_format="csv")
        with path.open(encoding="utf-8-sig", newline="") as source:
            rows = [typed(row) for row in csv.DictReader(source)]
        assert len(rows) == written
        assert rows == read(store, ledger_text)

    def test_disagreeing_store_is_refused(self) -> None:
        store = MemoryStore()
        Wallets(store).credit(
            "k", holder="h", amount=COIN(1), origin=LotOrigin.BONUS, cause=Cause("b", "1")
        )
        state = store._state
        extra = RecordedPosting(99, "ghost", AccountKey.wallet("h", COIN), 1, 2)
        state.postings.append(extra)
        with pytest.raises(StorageError, match="posting 99 belongs to no transaction"):
            export_ledger(store, io.StringIO(), file_format="csv")
        del state.postings[-2:]
        with pytest.raises(StorageError, match="disagree"):
            export_ledger(store, io.StringIO(), file_format="jsonl")


# -- CSV safety ------------------------------------------------------------------


class TestFormulaEscaping:
    @pytest.mark.parametrize(
        "text",
        [
            *("=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "\nx", "\0x", "'x"),
            *("\uff1d1", "\uff0b1", "\uff0d1", "\uff20x"),  # full-width = + - @
        ],
    )
    def test_risky_text_gets_one_quote(self, text: str) -> None:
        assert escape_formula(text) == "'" + text
        assert unescape(escape_formula(text)) == text

    @pytest.mark.parametrize("text", ["", "alice", "1", "x=1", "a'b", "{}", "2026-01-01"])
    def test_other_text_is_unchanged(self, text: str) -> None:
        assert escape_formula(text) == text

    def test_refuses_non_text(self) -> None:
        with pytest.raises(InvalidTypeError):
            escape_formula(5)  # type: ignore[arg-type]

    def test_no_cell_of_a_csv_export_starts_a_formula(
        self, store: Store, clock: ManualClock
    ) -> None:
        populate(store, clock)
        risky = tuple("=+-@\t\r\n\0\uff1d\uff0b\uff0d\uff20")
        for text in (ledger_text(store, "csv"), statement_text(store, "csv", holder=TRICKY[0])):
            lines = list(csv.reader(io.StringIO(text, newline="")))
            header, body = lines[0], lines[1:]
            assert body
            for line in body:
                for column, cell in zip(header, line, strict=True):
                    if column in INT_COLUMNS:
                        int(cell or "0")  # numbers are never escaped
                    else:
                        assert not cell.startswith(risky), (column, cell)
        raw = ledger_text(store, "csv")
        assert "'=cmd|' /c calc'!A1" in raw
        assert ",-500," in raw
        assert "'@platform" in raw

    def test_escaping_can_be_turned_off(self, store: Store, clock: ManualClock) -> None:
        populate(store, clock)
        plain = list(csv.DictReader(io.StringIO(ledger_text(store, "csv", escape_formulas=False))))
        owners = {row["account_owner"] for row in plain}
        assert set(TRICKY) <= owners
        assert PLATFORM in owners
        escaped = csv_records(ledger_text(store, "csv"))
        assert [typed(row, escaped=False) for row in plain] == escaped

    def test_jsonl_is_never_escaped(self, store: Store, clock: ManualClock) -> None:
        populate(store, clock)
        owners = {r["account_owner"] for r in jsonl_records(ledger_text(store, "jsonl"))}
        assert set(TRICKY) <= owners


# -- statements ------------------------------------------------------------------


class TestStatement:
    def test_holder_statement(self, store: Store, clock: ManualClock) -> None:
        populate(store, clock)
        records = read(store, statement_text, holder="bob")
        found = sections(records)
        assert [account_of(s[0]) for s in found] == [
            ("earnings", "bob", "unit", "DIAMOND"),
            ("creator-payable", "bob", "currency", "USD"),
        ]
        assert records[:3] == [
            {
                "record_type": "opening",
                "account_kind": "earnings",
                "account_owner": "bob",
                "asset_type": "unit",
                "asset_code": "DIAMOND",
                "balance": 0,
            },
            {
                "record_type": "posting",
                "account_kind": "earnings",
                "account_owner": "bob",
                "asset_type": "unit",
                "asset_code": "DIAMOND",
                "occurred_at": "2026-01-01T02:00:00+00:00",
                "sequence": records[1]["sequence"],
                "transaction_id": records[1]["transaction_id"],
                "kind": "gift",
                "idempotency_key": "gift-1",
                "cause_type": "gift",
                "cause_id": "rose-1",
                "amount": 60,
                "balance": 60,
                "metadata": {},
            },
            {
                "record_type": "closing",
                "account_kind": "earnings",
                "account_owner": "bob",
                "asset_type": "unit",
                "asset_code": "DIAMOND",
                "balance": 60,
            },
        ]

    def test_account_statement_has_every_posting_and_the_debt(
        self, store: Store, clock: ManualClock
    ) -> None:
        populate(store, clock)
        alice = AccountKey.wallet("alice", COIN)
        records = read(store, statement_text, account=alice)
        [section] = sections(records)
        assert [r.get("amount") for r in section] == [None, 500, -120, -500, None]
        assert section[-1]["balance"] == -120
        assert read(store, statement_text, holder="alice") == records

    def test_period(self, store: Store, clock: ManualClock) -> None:
        populate(store, clock)
        alice = AccountKey.wallet("alice", COIN)
        start, end = T0 + timedelta(minutes=1), T0 + timedelta(days=1)
        [section] = sections(read(store, statement_text, account=alice, since=start, until=end))
        assert section[0] == {
            "record_type": "opening",
            "account_kind": "wallet",
            "account_owner": "alice",
            "asset_type": "unit",
            "asset_code": "COIN",
            "occurred_at": "2026-01-01T00:01:00+00:00",
            "balance": 500,
        }
        assert [r.get("amount") for r in section[1:-1]] == [-120]
        assert section[-1]["occurred_at"] == "2026-01-02T00:00:00+00:00"
        assert section[-1]["balance"] == 380

    def test_period_in_another_time_zone(self, store: Store, clock: ManualClock) -> None:
        populate(store, clock)
        tokyo = timezone(timedelta(hours=9))
        start = datetime(2026, 1, 1, 9, 1, tzinfo=tokyo)
        records = read(store, statement_text, holder="alice", since=start)
        assert records[0]["occurred_at"] == "2026-01-01T00:01:00+00:00"
        assert records[0]["balance"] == 500

    def test_period_without_postings(self, store: Store, clock: ManualClock) -> None:
        populate(store, clock)
        alice = AccountKey.wallet("alice", COIN)
        later = T0 + timedelta(days=30)
        records = read(store, statement_text, account=alice, since=later)
        assert [(r["record_type"], r["balance"]) for r in records] == [
            ("opening", -120),
            ("closing", -120),
        ]
        records = read(store, statement_text, account=alice, until=T0)
        assert [(r["record_type"], r["balance"]) for r in records] == [
            ("opening", 0),
            ("closing", 0),
        ]
        between = T0 + timedelta(minutes=10), T0 + timedelta(minutes=20)
        records = read(store, statement_text, account=alice, since=between[0], until=between[1])
        assert [(r["record_type"], r["balance"]) for r in records] == [
            ("opening", 500),
            ("closing", 500),
        ]

    def test_unknown_account_and_holder(self, store: Store) -> None:
        records = read(store, statement_text, account=AccountKey.wallet("nobody", COIN))
        assert [(r["record_type"], r["balance"]) for r in records] == [
            ("opening", 0),
            ("closing", 0),
        ]
        out = io.StringIO(newline="")
        assert export_statement(store, out, file_format="csv", holder="nobody") == 0
        assert out.getvalue() == ",".join(STATEMENT_COLUMNS) + "\r\n"

    def test_platform_statement(self, store: Store, clock: ManualClock) -> None:
        populate(store, clock)
        found = sections(read(store, statement_text, holder=PLATFORM))
        assert [account_of(s[0]) for s in found] == [
            ("issuance", PLATFORM, "unit", "COIN"),
            ("issuance", PLATFORM, "unit", "DIAMOND"),
            ("spent", PLATFORM, "unit", "COIN"),
            ("expired", PLATFORM, "unit", "COIN"),
            ("clearing", PLATFORM, "currency", "USD"),
            ("revenue", PLATFORM, "currency", "USD"),
            ("deferred-revenue", PLATFORM, "currency", "USD"),
            ("creator-share", PLATFORM, "currency", "USD"),
        ]
        clearing = sections(
            read(
                store,
                statement_text,
                account=AccountKey.system(AccountKind.CLEARING, USD),
            )
        )
        assert clearing[0][-1]["balance"] == 499

    def test_statement_pages_through_long_histories(
        self, store: Store, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(export_module, "_PAGE", 3)
        wallets = Wallets(store, clock=clock)
        for n in range(11):
            wallets.credit(
                f"k{n}",
                holder="h",
                amount=COIN(n + 1),
                origin=LotOrigin.BONUS,
                cause=Cause("b", "x"),
            )
            clock.advance(timedelta(minutes=1))
        wallet = AccountKey.wallet("h", COIN)
        for count in (9, 10, 11):
            end = T0 + timedelta(minutes=count)
            [section] = sections(read(store, statement_text, account=wallet, until=end))
            assert [r["amount"] for r in section[1:-1]] == list(range(1, count + 1))
        start = T0 + timedelta(minutes=2)
        [section] = sections(read(store, statement_text, account=wallet, since=start))
        assert [r["amount"] for r in section[1:-1]] == list(range(3, 12))
        assert section[0]["balance"] == 3

    def test_non_contiguous_period_is_refused_before_writing(
        self, store: Store, clock: ManualClock
    ) -> None:
        wallets = Wallets(store, clock=clock)

        def grant(key: str) -> None:
            wallets.credit(
                key, holder="h", amount=COIN(1), origin=LotOrigin.BONUS, cause=Cause("b", key)
            )

        grant("a")
        clock.set(T0 + timedelta(hours=2))
        grant("b")
        clock.set(T0 - timedelta(hours=1))  # the clock is set back
        grant("c")
        clock.set(T0 + timedelta(hours=3))
        grant("d")
        out = io.StringIO()
        with pytest.raises(ExportError, match="postings 4 and 8"):
            export_statement(store, out, file_format="csv", holder="h", since=T0)
        assert out.getvalue() == ""
        # Bounds that keep the period's postings together are fine.
        start = T0 + timedelta(hours=2, minutes=30)
        records = read(store, statement_text, holder="h", since=start)
        assert [r["balance"] for r in records] == [3, 4, 4]

    def test_a_posting_back_dated_past_a_bound_is_refused(
        self, store: Store, clock: ManualClock
    ) -> None:
        """A posting dated before the period but recorded after the period's
        postings (or dated after it but recorded before) would make the
        opening or closing balance wrong: refused."""
        wallets = Wallets(store, clock=clock)

        def grant(key: str) -> None:
            wallets.credit(
                key, holder="h", amount=COIN(1), origin=LotOrigin.BONUS, cause=Cause("b", key)
            )

        grant("a")  # T0
        clock.set(T0 + timedelta(hours=2))
        grant("b")
        clock.set(T0 - timedelta(hours=1))  # the clock is set back
        grant("c")
        wallet = AccountKey.wallet("h", COIN)
        periods: list[dict[str, Any]] = [
            {"since": T0 + timedelta(hours=1)},  # c belongs before the period: closing 2, not 3
            {"until": T0 + timedelta(hours=1)},  # b lies after it, recorded before c
            {"since": T0 + timedelta(hours=1), "until": T0 + timedelta(hours=3)},
        ]
        for period in periods:
            out = io.StringIO()
            with pytest.raises(ExportError, match="while the clock was behind"):
                export_statement(store, out, file_format="jsonl", account=wallet, **period)
            assert out.getvalue() == ""
        # Bounds that every posting falls on the right side of are fine.
        records = read(store, statement_text, account=wallet, since=T0 - timedelta(hours=2))
        assert [r["balance"] for r in records] == [0, 1, 2, 3, 3]
        records = read(store, statement_text, account=wallet, since=T0 + timedelta(hours=3))
        assert [r["balance"] for r in records] == [3, 3]  # all three came before


# -- arguments -------------------------------------------------------------------


class TestArguments:
    def test_file_format(self, store: Store) -> None:
        with pytest.raises(ValidationError, match="'csv', 'jsonl'"):
            export_ledger(store, io.StringIO(), file_format="xlsx")  # type: ignore[arg-type]
        with pytest.raises(InvalidTypeError):
            export_ledger(store, io.StringIO(), file_format=1)  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            export_statement(
                store,
                io.StringIO(),
                file_format="CSV",  # type: ignore[arg-type]
                holder="h",
            )

    def test_output_and_store(self, store: Store) -> None:
        with pytest.raises(InvalidTypeError, match="write"):
            export_ledger(store, "ledger.csv", file_format="csv")  # type: ignore[arg-type]
        with pytest.raises(InvalidTypeError, match="Store"):
            export_ledger(object(), io.StringIO(), file_format="csv")  # type: ignore[arg-type]
        with pytest.raises(InvalidTypeError, match="escape_formulas"):
            export_ledger(
                store,
                io.StringIO(),
                file_format="csv",
                escape_formulas=1,  # type: ignore[arg-type]
            )

    def test_times(self, store: Store) -> None:
        naive = datetime(2026, 1, 1)  # noqa: DTZ001
        cases: list[tuple[Callable[..., int], dict[str, Any]]] = [
            (export_ledger, {}),
            (export_statement, {"holder": "h"}),
        ]
        bad: list[tuple[dict[str, Any], type[Exception], str]] = [
            ({"since": naive}, NaiveDatetimeError, "since"),
            ({"until": naive}, NaiveDatetimeError, "until"),
            ({"since": "2026-01-01"}, InvalidTypeError, "since"),
            ({"since": T0, "until": T0}, ValidationError, "empty"),
        ]
        for exporter, options in cases:
            for period, error, match in bad:
                out = io.StringIO()
                with pytest.raises(error, match=match):
                    exporter(store, out, file_format="csv", **period, **options)
                assert out.getvalue() == ""  # refused before anything was written

    def test_binary_streams_are_refused(self, store: Store, tmp_path: Path) -> None:
        exporters: list[tuple[Callable[..., int], dict[str, Any]]] = [
            (export_ledger, {}),
            (export_statement, {"holder": "h"}),
        ]
        with (tmp_path / "ledger.csv").open("wb") as binary:
            for exporter, options in exporters:
                with pytest.raises(InvalidTypeError, match="text stream"):
                    exporter(store, binary, file_format="csv", **options)
        streams: list[Any] = [io.BytesIO(), io.BufferedWriter(io.BytesIO())]
        for stream in streams:
            with pytest.raises(InvalidTypeError, match="text stream"):
                export_ledger(store, stream, file_format="jsonl")
        assert (tmp_path / "ledger.csv").read_bytes() == b""

    def test_statement_subject(self, store: Store) -> None:
        out = io.StringIO()
        wallet = AccountKey.wallet("h", COIN)
        with pytest.raises(ValidationError, match="exactly one"):
            export_statement(store, out, file_format="csv")
        with pytest.raises(ValidationError, match="exactly one"):
            export_statement(store, out, file_format="csv", account=wallet, holder="h")
        with pytest.raises(InvalidTypeError, match="AccountKey"):
            export_statement(store, out, file_format="csv", account="h")  # type: ignore[arg-type]
        with pytest.raises(InvalidIdentifierError):
            export_statement(store, out, file_format="csv", holder="")
        with pytest.raises(InvalidTypeError):
            export_statement(store, out, file_format="csv", holder=5)  # type: ignore[arg-type]
        assert out.getvalue() == ""


# -- properties ------------------------------------------------------------------

HOLDERS = st.sampled_from(["alice", "bob", *TRICKY])
OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["buy", "promo", "spend", "gift", "chargeback", "tick", "expire"]),
        HOLDERS,
        st.integers(min_value=1, max_value=300),
    ),
    max_size=20,
)


def run(store: Store, operations: list[tuple[str, str, int]], unit: Unit) -> ManualClock:
    clock = ManualClock(T0)
    wallets = Wallets(store, clock=clock)
    for n, (operation, holder, amount) in enumerate(operations):
        key, wallet = f"op-{n}", AccountKey.wallet(holder, unit)
        try:
            if operation == "buy":
                wallets.credit(
                    key,
                    holder=holder,
                    amount=unit(amount),
                    origin=LotOrigin.PURCHASE,
                    cause=Cause("purchase", key),
                    value=Money(amount, "JPY"),
                )
            elif operation == "promo":
                wallets.credit(
                    key,
                    holder=holder,
                    amount=unit(amount),
                    origin=LotOrigin.PROMOTION,
                    cause=Cause("promotion", key),
                    expires_in=timedelta(hours=2),
                )
            elif operation in {"spend", "gift"}:
                wallets.spend(
                    key,
                    holder=holder,
                    amount=unit(amount),
                    cause=Cause(operation, key),
                    kind=TransactionKind(operation),
                    also=(
                        Posting(AccountKey.issuance(DIAMOND), -amount),
                        Posting(AccountKey.earnings("bob", DIAMOND), amount),
                    )
                    if operation == "gift"
                    else (),
                )
            elif operation == "chargeback":
                record(
                    store,
                    Transaction(
                        id=key,
                        kind=TransactionKind.CHARGEBACK,
                        postings=(
                            Posting(wallet, -amount),
                            Posting(AccountKey.issuance(unit), amount),
                        ),
                        occurred_at=clock.now(),
                        idempotency_key=key,
                        cause=Cause("chargeback", key),
                    ),
                )
            elif operation == "tick":
                clock.advance(timedelta(minutes=amount))
            else:
                wallets.expire()
        except InsufficientFunds:
            pass
    return clock


def in_fresh_stores() -> Iterator[Store]:
    yield MemoryStore()
    with tempfile.TemporaryDirectory() as directory, SqliteStore(Path(directory) / "c.db") as s:
        yield s


@settings(max_examples=40, deadline=None)
@given(
    operations=OPERATIONS,
    unit=cst.units(),
    bounds=st.tuples(st.integers(0, 600), st.integers(1, 600)),
)
def test_exports_agree_with_the_store(
    operations: list[tuple[str, str, int]], unit: Unit, bounds: tuple[int, int]
) -> None:
    if unit == DIAMOND:
        unit = COIN
    for store in in_fresh_stores():
        run(store, operations, unit)
        rows = check_ledger_export(store)
        with store.unit_of_work() as uow:
            balances = uow.ledger.accounts()
        holders = {a.owner for a in balances}
        for holder in holders:
            found = sections(read(store, statement_text, holder=holder))
            assert {account_of(s[0]): s[-1]["balance"] for s in found} == {
                key_of(a): b for a, b in balances.items() if a.owner == holder
            }
            assert all(s[0]["balance"] == 0 for s in found)
        # A period's opening and closing balances are the sums of the postings before
        # its start and its end (the clock only moves forwards here).
        start = T0 + timedelta(minutes=bounds[0])
        end = start + timedelta(minutes=bounds[1])
        wallet = AccountKey.wallet("alice", unit)
        [section] = sections(read(store, statement_text, account=wallet, since=start, until=end))

        def before(moment: datetime, rows: list[Record], account: AccountKey) -> int:
            return sum(
                r["amount"]
                for r in rows
                if account_of(r) == key_of(account)
                and datetime.fromisoformat(r["occurred_at"]) < moment
            )

        assert section[0]["balance"] == before(start, rows, wallet)
        assert section[-1]["balance"] == before(end, rows, wallet)
