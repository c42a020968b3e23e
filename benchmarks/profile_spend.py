"""Where a gift-shaped spend spends its Python time.

Run with ``.venv/bin/python benchmarks/profile_spend.py`` (``--help`` for
options). Not a benchmark (``python3 tasks.py bench`` runs those): a profiling
aid that runs ``Wallets.spend`` on a store whose repositories do nothing, so
that only the service and domain code are timed, then again with parts
switched off; and last, in a batch on a ``SqliteStore`` whose SQLite
connection executes nothing once the batch has read its balances and lots, so
that the service and the adapter's Python are timed without the SQL. It prints
microseconds per spend for each. Compare the lines of one run with each other:
absolute times vary from machine to machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import attrs
from _workload import COIN, HOLDERS, T0, gift, seed  # the benchmark's gifts

from coinecon import ManualClock, Money
from coinecon.adapters.sqlite import SqliteStore
from coinecon.errors import StorageError
from coinecon.ledger import wallets as wallets_module
from coinecon.ledger.journal import AccountKey, AccountKind
from coinecon.ledger.lots import Lot, LotOrigin
from coinecon.ledger.wallets import Wallets

LOT = Lot.new(
    "lot-1",
    AccountKey.wallet("holder-0", COIN),
    LotOrigin.PURCHASE,
    10**12,
    T0,
    "seed",
    value=Money(1000, "USD"),
)


class NoStore:
    """A store whose unit of work reads plausible values and writes nothing."""

    def unit_of_work(self) -> NoStore:
        return self

    @property
    def ledger(self) -> NoStore:
        return self

    @property
    def lots(self) -> NoStore:
        return self

    @property
    def idempotency(self) -> NoStore:
        return self

    @property
    def outbox(self) -> NoStore:
        return self

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    def commit(self) -> None:
        return None

    def get(self, _key: str) -> None:
        return None

    def balances(self, accounts: Collection[AccountKey]) -> dict[AccountKey, int]:
        return {a: 10**12 if a.kind is AccountKind.WALLET else 0 for a in accounts}

    def record(self, *_args: object) -> None:
        return None

    def open_lots(self, _account: AccountKey) -> list[Lot]:
        return [LOT]

    def lapsed(self, _account: AccountKey, _now: object) -> list[Lot]:
        return []

    def spendable(self, *_args: object) -> list[Lot]:
        return [LOT]

    def update(self, _lot: Lot) -> None:
        return None

    def record_consumption(self, *_args: object) -> None:
        return None

    def add(self, _item: object) -> None:
        return None


def gifts(wallets: Wallets, prefix: str, spends: int) -> float:
    """Seconds for *spends* gift-shaped spends, as the benchmark makes them."""
    start = time.perf_counter()
    for n in range(spends):
        gift(wallets, f"gift-{prefix}-{n}", n)
    return time.perf_counter() - start


def time_spends(wallets: Wallets, rounds: int = 7, spends: int = 10_000) -> float:
    """Median microseconds per spend over *rounds* rounds."""
    samples = [gifts(wallets, str(r), spends) / spends * 1e6 for r in range(rounds)]
    return statistics.median(samples)


class NoCursor:
    """What :class:`NoSql` returns: no rows, and row id 1 for an INSERT."""

    lastrowid = 1
    rowcount = 1

    def fetchone(self) -> None:
        return None

    def fetchall(self) -> list[Any]:
        return []


class NoSql:
    """Stands in for a unit of work's ``sqlite3.Connection``: every statement
    does nothing (``executemany`` still walks its rows, as SQLite would)."""

    in_transaction = True

    def execute(self, _sql: str, _parameters: object = ()) -> NoCursor:
        return NoCursor()

    def executemany(self, _sql: str, rows: Iterable[object]) -> NoCursor:
        cursor = NoCursor()
        cursor.rowcount = sum(1 for _ in rows)  # every row "changed", as SQLite would say
        return cursor


def time_sqlite_python(directory: Path, rounds: int = 7, spends: int = 10_000) -> float:
    """Median microseconds per spend in a batch on a ``SqliteStore`` whose
    connection executes nothing once the batch holds every balance and lot."""
    with SqliteStore(directory / "profile.db") as store:
        wallets = Wallets(store, clock=ManualClock(T0))
        seed(wallets)
        samples = []
        for r in range(rounds):
            try:
                with wallets.batch() as bulk:
                    gifts(bulk, f"warm-{r}", HOLDERS)  # reads every balance and lot once
                    view: Any = bulk._store.unit_of_work()  # noqa: SLF001 (the batch's shared unit)
                    uow = view._batch.uow  # noqa: SLF001
                    connection = uow._connection  # noqa: SLF001
                    real, connection.raw = connection.raw, NoSql()
                    try:
                        samples.append(gifts(bulk, str(r), spends) / spends * 1e6)
                    finally:
                        connection.raw = real
                        uow._pending = type(uow._pending)()  # noqa: SLF001 (nothing was sent)
                    view.rollback()  # void the batch: what it wrote never reached SQLite
            except StorageError as error:
                if "nothing of the batch was kept" not in str(error):
                    raise  # not the voided batch: a real failure
        return statistics.median(samples)


def without(timed: Callable[[], float], owner: object, name: str, replacement: object) -> float:
    """*timed* with ``owner.name`` replaced by *replacement*."""
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        return timed()
    finally:
        setattr(owner, name, original)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spends", type=int, default=10_000, help="spends per round")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per line (median taken)")
    args = parser.parse_args(argv)
    wallets = Wallets(NoStore(), clock=ManualClock(T0))  # type: ignore[arg-type]

    def timed() -> float:
        return time_spends(wallets, args.rounds, args.spends)

    print("Wallets.spend on a store that does nothing, microseconds per spend\n")
    print(f"{'everything':<34}{timed():>8.1f}")
    attrs.validators.set_disabled(True)
    try:
        print(f"{'without attrs validators':<34}{timed():>8.1f}")
    finally:
        attrs.validators.set_disabled(False)
    cases: list[tuple[str, object, str, Any]] = [
        (
            "without the request fingerprint",
            wallets_module,
            "_spend_fingerprint",
            lambda *_request: "f" * 64,
        ),
        (
            "without check_rules",
            wallets_module,
            "check_rules",
            lambda t, b: {p.account: b.get(p.account, 0) + p.amount for p in t.postings},
        ),
        ("without the result JSON", wallets_module.SpendResult, "to_json", lambda _self: "{}"),
    ]
    for label, owner, name, replacement in cases:
        print(f"{label:<34}{without(timed, owner, name, replacement):>8.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = time_sqlite_python(Path(tmp), args.rounds, args.spends)
    print(f"\n{'SqliteStore, SQL not executed':<34}{sqlite:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
