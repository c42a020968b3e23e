"""Baseline (b): coinecon's own rows, written by a plain sqlite3 script.

It runs on a copy of the file coinecon was seeded in (coinecon's schema, the
same seed rows) and writes what coinecon's SQLite adapter writes for each
command, in the same way: it reads each balance and each holder's open lots
once per SQLite transaction and keeps them in memory (it holds the write
lock), inserts each transaction, lot, consumption and event at once (and each
account the first time it is used), and sends the postings, balance updates,
lot updates, consumption items and idempotency records with ``executemany``
once 10,000 rows wait and at commit (see "Batched writes" in
``docs/storage.md``). Its rows are coinecon's to the byte but for random ids
and times: the same fingerprints (SHA-256 of the same canonical JSON), the
same result JSON, times in the same format. It builds its JSON as coinecon
does on this path, with f-strings, and makes no checks but the overdraft and
the replay: so the ratio against coinecon prices coinecon's checks, domain
objects and storage abstraction over the same bare writes, not the schema.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _workload import COIN, CURRENCY, DIAMOND, Command

SCHEMA_VERSION = 1
"""The version of coinecon's SQLite schema whose rows this script writes: on
a coinecon with another schema, the benchmark leaves (b) out."""

TABLES = (
    "accounts",
    "transactions",
    "postings",
    "lots",
    "lot_consumptions",
    "lot_consumption_items",
    "idempotency",
    "outbox",
)

# How JSON writes a string (escaped, ASCII): what coinecon's canonical JSON uses.
_text = json.encoder.encode_basestring_ascii
_random = random.Random(os.urandom(32))  # ids must be unique, not secret
_UPSERT_ACCOUNT = (  # as the adapter: an account is made with its first balance
    "INSERT INTO accounts (kind, owner, asset_kind, asset_code, balance) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (kind, owner, asset_kind, asset_code) DO UPDATE SET balance = excluded.balance "
    "RETURNING id"
)
_FLUSH_ROWS = 10_000  # as the adapter: send what waits once this many rows do
_LOT_COLUMNS = (
    "id, account_kind, owner, asset_kind, asset_code, origin, amount, remaining, created_at, "
    "transaction_id, value_minor, value_currency, value_recognised, expires_at"
)
# Columns of a lot row as RawBooks keeps it (the order of _LOT_COLUMNS).
_ID, _OWNER, _AMOUNT, _REMAINING, _VALUE, _RECOGNISED = 0, 2, 6, 7, 10, 12


def row_counts(db: sqlite3.Connection) -> dict[str, int]:
    """How many rows each table holds."""
    return {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}


def written(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The rows written between two :func:`row_counts`."""
    return {table: after[table] - before[table] for table in TABLES}


def new_id() -> str:
    """A random 128-bit id as 32 hex digits, made as coinecon makes its ids."""
    return _random.getrandbits(128).to_bytes(16).hex()


class Overdraft(Exception):
    """The wallet holds fewer coins than the command spends."""


class Conflict(Exception):
    """An idempotency key reused for another request."""


Account = tuple[str, str, str, str]  # kind, owner, asset kind, asset code


def _wallet(holder: str) -> Account:
    return ("wallet", holder, "unit", COIN.code)


_SPENT: Account = ("spent", "@platform", "unit", COIN.code)
_COIN_ISSUANCE: Account = ("issuance", "@platform", "unit", COIN.code)
_DIAMOND_ISSUANCE: Account = ("issuance", "@platform", "unit", DIAMOND.code)


class RawBooks:
    """The same writes as coinecon's SQLite adapter, by hand, on one connection.

    Call :meth:`begin`, then :meth:`run` for each command, then :meth:`commit`.
    :meth:`run` returns the result JSON coinecon would store (the first one
    again on a replay).
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.ids: dict[Account, int] = {}  # as the adapter's connection learns them
        self.in_transaction = False

    def begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        self.in_transaction = True
        self.balances: dict[Account, int] = {}
        self.dirty: dict[int, int] = {}
        self.lots: dict[str, list[list[Any]]] = {}  # holder -> open lots, oldest first
        self.lot_updates: dict[str, list[Any]] = {}
        self.postings: list[tuple[int, int, int, int]] = []
        self.items: list[tuple[str, int, str, int, int | None, str | None]] = []
        self.records: dict[str, tuple[str, str, str, str]] = {}

    def commit(self) -> None:
        self.flush()
        self.db.execute("COMMIT")
        self.in_transaction = False

    def rollback(self) -> None:
        self.db.execute("ROLLBACK")
        self.in_transaction = False

    # -- reads ------------------------------------------------------------------

    def _read_balances(self, accounts: tuple[Account, ...]) -> None:
        missing = [a for a in accounts if a not in self.balances]
        if not missing:
            return
        known = [self.ids[a] for a in missing if a in self.ids]
        if len(known) == len(missing):
            marks = ", ".join("?" * len(known))
            found = dict(
                self.db.execute(f"SELECT id, balance FROM accounts WHERE id IN ({marks})", known)
            )
            for account in missing:
                self.balances[account] = found.get(self.ids[account], 0)
            return
        for account in missing:
            line = self.db.execute(
                "SELECT id, balance FROM accounts"
                " WHERE kind = ? AND owner = ? AND asset_kind = ? AND asset_code = ?",
                account,
            ).fetchone()
            if line is None:
                self.balances[account] = 0
            else:
                self.ids[account] = line[0]
                self.balances[account] = line[1]

    def _replayed(self, key: str, digest: str) -> str | None:
        record = self.records.get(key)
        if record is None:
            record = self.db.execute(
                "SELECT key, fingerprint, result, created_at FROM idempotency WHERE key = ?",
                (key,),
            ).fetchone()
        if record is None:
            return None
        if record[1] != digest:
            raise Conflict(key)
        return str(record[2])

    def _open_lots(self, holder: str) -> list[list[Any]]:
        lots = self.lots.get(holder)
        if lots is None:
            lots = self.lots[holder] = [
                list(line)
                for line in self.db.execute(
                    f"SELECT {_LOT_COLUMNS} FROM lots WHERE account_kind = 'wallet' AND owner = ?"
                    " AND asset_kind = 'unit' AND asset_code = 'COIN' AND remaining > 0"
                    " ORDER BY row",
                    (holder,),
                )
            ]
        return lots

    # -- writes -----------------------------------------------------------------

    def _record(
        self,
        kind: str,
        key: str,
        cause_type: str,
        cause_id: str,
        now: str,
        legs: tuple[tuple[Account, int, int], ...],
    ) -> tuple[str, int]:
        transaction_id = new_id()
        row = self.db.execute(
            "INSERT INTO transactions (id, kind, occurred_at, idempotency_key, cause_type,"
            " cause_id, metadata) VALUES (?, ?, ?, ?, ?, ?, '[]')",
            (transaction_id, kind, now, key, cause_type, cause_id),
        ).lastrowid
        assert row is not None
        for account, amount, after in legs:
            account_id = self.ids.get(account)
            if account_id is None:
                account_id = self.ids[account] = self.db.execute(
                    _UPSERT_ACCOUNT, (*account, after)
                ).fetchone()[0]
            else:
                self.dirty[account_id] = after
            self.balances[account] = after
            self.postings.append((row, account_id, amount, after))
        return transaction_id, row

    def _finish(
        self, key: str, digest: str, result: str, now: str, event: str, transaction_id: str
    ) -> None:
        self.records[key] = (key, digest, result, now)
        self.db.execute(
            "INSERT INTO outbox (id, type, occurred_at, payload, transaction_id)"
            " VALUES (?, ?, ?, ?, ?)",
            (new_id(), event, now, result, transaction_id),
        )
        waiting = len(self.postings) + len(self.items) + len(self.records)
        if waiting + len(self.dirty) + len(self.lot_updates) >= _FLUSH_ROWS:
            self.flush()

    def run(self, command: Command) -> str:
        """Write *command* inside the open SQLite transaction."""
        if command.gift:
            return self.gift(command)
        return self.purchase(command)

    def gift(self, command: Command) -> str:
        key = command.key
        holder = command.holder_name
        coins = command.coins
        diamonds = command.diamonds
        creator = command.creator_name
        request = (
            f'{{"command":"spend","request":{{"also":[[{_text(f"earnings:{creator}:DIAMOND")},'
            f'{diamonds}],["issuance:@platform:DIAMOND",{-diamonds}]],"amount":{coins},'
            f'"cause":{_text(f"gift:{command.cause_id}")},"holder":{_text(holder)},'
            '"kind":"gift","metadata":{},"unit":"COIN"}}'
        )
        digest = hashlib.sha256(request.encode("ascii")).hexdigest()
        replayed = self._replayed(key, digest)
        if replayed is not None:
            return replayed
        wallet = _wallet(holder)
        earnings: Account = ("earnings", creator, "unit", DIAMOND.code)
        accounts = (wallet, _SPENT, _DIAMOND_ISSUANCE, earnings)
        self._read_balances(accounts)
        balances = self.balances
        left = balances[wallet] - coins
        if left < 0:
            raise Overdraft(key)
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        transaction_id, _ = self._record(
            "gift",
            key,
            "gift",
            command.cause_id,
            now,
            (
                (wallet, -coins, left),
                (_SPENT, coins, balances[_SPENT] + coins),
                (_DIAMOND_ISSUANCE, -diamonds, balances[_DIAMOND_ISSUANCE] - diamonds),
                (earnings, diamonds, balances[earnings] + diamonds),
            ),
        )
        lots = self._open_lots(holder)
        self.db.execute(
            "INSERT INTO lot_consumptions (transaction_id) VALUES (?)", (transaction_id,)
        )
        consumed = []
        wanted = coins
        position = 0
        while wanted:
            lot = lots[0]
            take = min(wanted, lot[_REMAINING])
            lot[_REMAINING] -= take
            wanted -= take
            value = lot[_VALUE]
            part = None
            if value is not None:
                recognised = value * (lot[_AMOUNT] - lot[_REMAINING]) // lot[_AMOUNT]
                part = recognised - lot[_RECOGNISED]
                lot[_RECOGNISED] = recognised
            self.lot_updates[lot[_ID]] = lot
            if not lot[_REMAINING]:
                lots.pop(0)
            currency = None if part is None else lot[11]
            self.items.append((transaction_id, position, lot[_ID], take, part, currency))
            consumed.append(
                f"[{_text(lot[_ID])},{take},null,null]"
                if part is None
                else f"[{_text(lot[_ID])},{take},{part},{_text(currency or '')}]"
            )
            position += 1
        result = (
            f'{{"balance":{left},"consumed":[{",".join(consumed)}],'
            f'"transaction_id":{_text(transaction_id)},"unit":"COIN"}}'
        )
        self._finish(key, digest, result, now, "coins.spent", transaction_id)
        return result

    def purchase(self, command: Command) -> str:
        key = command.key
        holder = command.holder_name
        coins = command.coins
        request = (
            f'{{"command":"credit","request":{{"amount":{coins},'
            f'"cause":{_text(f"purchase:{command.cause_id}")},"expires_at":null,'
            f'"expires_in":null,"holder":{_text(holder)},"metadata":{{}},"origin":"purchase",'
            f'"unit":"COIN","value":[{command.value},{_text(CURRENCY)}]}}}}'
        )
        digest = hashlib.sha256(request.encode("utf-8")).hexdigest()
        replayed = self._replayed(key, digest)
        if replayed is not None:
            return replayed
        wallet = _wallet(holder)
        self._read_balances((_COIN_ISSUANCE, wallet))
        balances = self.balances
        after = balances[wallet] + coins
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        transaction_id, _ = self._record(
            "purchase",
            key,
            "purchase",
            command.cause_id,
            now,
            ((_COIN_ISSUANCE, -coins, balances[_COIN_ISSUANCE] - coins), (wallet, coins, after)),
        )
        lot_id = new_id()
        lot: list[Any] = [
            lot_id,
            *wallet,
            "purchase",
            coins,
            coins,
            now,
            transaction_id,
            command.value,
            CURRENCY,
            0,
            None,
        ]
        self.db.execute(f"INSERT INTO lots ({_LOT_COLUMNS}) VALUES ({', '.join('?' * 14)})", lot)
        cached = self.lots.get(holder)
        if cached is not None:
            cached.append(lot)
        result = (
            f'{{"balance":{after},"expires_at":null,"lot_id":{_text(lot_id)},'
            f'"transaction_id":{_text(transaction_id)},"unit":"COIN"}}'
        )
        self._finish(key, digest, result, now, "coins.credited", transaction_id)
        return result

    def flush(self) -> None:
        db = self.db
        db.executemany(
            "UPDATE accounts SET balance = ? WHERE id = ?",
            [(b, i) for i, b in self.dirty.items()],
        )
        self.dirty.clear()
        db.executemany(
            "INSERT INTO postings (transaction_row, account_id, amount, balance_after)"
            " VALUES (?, ?, ?, ?)",
            self.postings,
        )
        self.postings.clear()
        db.executemany(
            "UPDATE lots SET origin = ?, amount = ?, remaining = ?, created_at = ?, "
            "transaction_id = ?, value_minor = ?, value_currency = ?, value_recognised = ?, "
            "expires_at = ? WHERE id = ? AND account_kind = ? AND owner = ? AND asset_kind = ? "
            "AND asset_code = ?",
            [(*lot[5:], *lot[:5]) for lot in self.lot_updates.values()],
        )
        self.lot_updates.clear()
        db.executemany(
            "INSERT INTO lot_consumption_items (transaction_id, position, lot_id, amount,"
            " value_minor, value_currency) VALUES (?, ?, ?, ?, ?, ?)",
            self.items,
        )
        self.items.clear()
        db.executemany(
            "INSERT INTO idempotency (key, fingerprint, result, created_at) VALUES (?, ?, ?, ?)",
            self.records.values(),
        )
        self.records.clear()

    def run_one(self, command: Command) -> str:
        """*command* in its own SQLite transaction, rolled back if refused."""
        self.begin()
        try:
            result = self.run(command)
            self.commit()
        except BaseException:
            if self.in_transaction:
                self.rollback()
            raise
        return result


def connect(path: Path, synchronous: str) -> sqlite3.Connection:
    """A connection set up as coinecon's adapter sets up its own."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, cached_statements=256)
    db.execute(f"PRAGMA synchronous = {synchronous}")
    db.execute("PRAGMA foreign_keys = ON")
    return db
