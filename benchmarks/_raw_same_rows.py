"""Baseline (b): coinecon's own rows, written by a plain sqlite3 script.

It runs on a copy of the file coinecon was seeded in (coinecon's schema v2,
the same seed rows) and runs the SQL statements that coinecon's SQLite
adapter runs for each command, in the same order and the same way, with the
cheapest Python it can: it looks the key up in one ``UNION ALL`` query over
the transactions and the idempotency table, reads each balance and each
holder's open lots once per SQLite transaction and keeps them in memory (it
holds the write lock), looks each new transaction id and event id up, reads
the next transaction row and posting sequence once per SQLite transaction,
inserts each lot at once (and each account the first time it is used), and
keeps the transaction's row waiting, so that its idempotency record (the
fingerprint and result) joins it. The transaction rows, postings, balance
updates, lot updates (remaining and recognised value only, by the lot's row),
consumptions, any idempotency records and the events are sent with
``executemany`` once 10,000 rows wait and at commit, followed by the adapter's
balance check over the postings just sent (see "Batched writes" in
``docs/storage.md``). Its rows are coinecon's to the byte but for ids (made by
coinecon's own ``random_id``: version-7 UUIDs, ordered by time) and times: the same
fingerprints (SHA-256 of the same canonical JSON), the same result JSON, times
in the same format. It builds its JSON as coinecon does on this path, with
f-strings, and makes no checks in Python but the overdraft and the replay;
every check the adapter makes in SQL it makes too. So the ratio against
coinecon prices coinecon's Python (its checks, domain objects and storage
abstraction) over the same SQL, not the schema.
"""

from __future__ import annotations

import hashlib
import json
import operator
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _workload import COIN, CURRENCY, DIAMOND, Command

from coinecon._ids import random_id as new_id

SCHEMA_VERSION = 6  # v6 changed triggers only: the rows are v5's
"""The version of coinecon's SQLite schema whose rows this script writes: on
a coinecon with another schema, the benchmark leaves (b) out."""

TABLES = (
    "accounts",
    "transactions",
    "postings",
    "lots",
    "lot_consumptions",
    "idempotency",
    "outbox",
)


def _fingerprint(command: str, fields: dict[str, str]) -> str:
    """A command's fingerprint as coinecon writes it: the SHA-256 of the
    canonical request, then ``|`` and a short digest of each field (given as
    its canonical JSON, the fields in key order)."""
    request = ",".join(f"{_text(key)}:{text}" for key, text in fields.items())
    digest = hashlib.sha256(
        f'{{"command":"{command}","request":{{{request}}}}}'.encode()
    ).hexdigest()
    shorts = ",".join(
        f'{_text(key)}:"{hashlib.sha256(text.encode()).hexdigest()[:10]}"'
        for key, text in fields.items()
    )
    return f"{digest}|{{{shorts}}}"


# How JSON writes a string (escaped, ASCII): what coinecon's canonical JSON uses.
_text = json.encoder.encode_basestring_ascii
_FLUSH_ROWS = 10_000  # as the adapter: send what waits once this many rows do

# The adapter's statements (coinecon.adapters.sqlite._sql and its repositories),
# word for word: tests/test_benchmarks.py checks that they still are.
_IDEMPOTENCY_RECORD = (
    "SELECT idempotency_key, fingerprint, result, occurred_at FROM transactions "
    "WHERE idempotency_key = ? AND fingerprint IS NOT NULL "
    "UNION ALL SELECT key, fingerprint, result, created_at FROM idempotency WHERE key = ? "
    "LIMIT 1"
)
_LOT_COLUMNS = (
    "id, account_kind, owner, asset_kind, asset_code, origin, amount, remaining, created_at, "
    "transaction_id, value_minor, value_currency, value_recognised, expires_at"
)
_FEW_LOTS = 32
_OPEN_FEW = (
    f"SELECT row, {_LOT_COLUMNS} FROM lots INDEXED BY lots_oldest_first "
    "WHERE account_kind = ? AND owner = ? AND asset_kind = ? AND asset_code = ? "
    f"AND exhausted = 0 LIMIT {_FEW_LOTS + 1}"
)
_ACCOUNT_BY_KEY = (
    "SELECT id, kind, owner, asset_kind, asset_code, balance, last_sequence FROM accounts "
    "WHERE kind = ? AND owner = ? AND asset_kind = ? AND asset_code = ?"
)
_BALANCES_BY_ID = {
    count: f"SELECT id, balance, last_sequence FROM accounts WHERE id IN ({', '.join('?' * count)})"
    for count in range(1, 5)
}
_ACCOUNTS_BY_KEY = {count: " UNION ALL ".join([_ACCOUNT_BY_KEY] * count) for count in range(1, 5)}
_TRANSACTION_EXISTS = "SELECT 1 FROM transactions WHERE id = ?"
_NEXT_ROW = "SELECT coalesce(max(row), 0) + 1 FROM transactions"
_NEXT_SEQUENCE = "SELECT coalesce(max(sequence), 0) + 1 FROM postings"
_UPSERT_ACCOUNT = (
    "INSERT INTO accounts (kind, owner, asset_kind, asset_code, balance) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (kind, owner, asset_kind, asset_code) DO UPDATE SET balance = excluded.balance "
    "RETURNING id, last_sequence"
)
_LAST_SEQUENCE = "SELECT last_sequence FROM accounts WHERE id = ?"
_CONSUMED = "SELECT 1 FROM lot_consumptions WHERE transaction_id = ? LIMIT 1"
_EVENT_EXISTS = (
    "SELECT 1 FROM transactions WHERE event_id = ? AND event_id != '' "
    "UNION ALL SELECT 1 FROM transactions WHERE id = ? AND event_id = '' "
    "UNION ALL SELECT 1 FROM outbox WHERE id = ?"
)
_LAST_ROW = "SELECT coalesce(max(row), 0) FROM transactions"
_INSERT_LOT = f"INSERT INTO lots ({_LOT_COLUMNS}, exhausted) VALUES ({', '.join('?' * 15)})"
_INSERT_EVENT = (
    "INSERT INTO outbox (id, type, occurred_at, payload, transaction_id, after_row) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_TRANSACTION = (
    "INSERT INTO transactions (row, id, kind, occurred_at, idempotency_key, cause_type, "
    "cause_id, metadata, first_sequence, postings, fingerprint, result, event_id, event_type, "
    "event_payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE_BALANCE = "UPDATE accounts SET balance = ?, last_sequence = ? WHERE id = ?"
_INSERT_POSTING = (
    "INSERT INTO postings (sequence, transaction_row, account_id, amount, balance_after, "
    "previous) VALUES (?, ?, ?, ?, ?, ?)"
)
_UPDATE_LOT_CONSUMED = "UPDATE lots SET remaining = ?, value_recognised = ? WHERE row = ?"
_UPDATE_LOT_EMPTIED = (
    "UPDATE lots SET remaining = 0, value_recognised = ?, exhausted = 1 WHERE row = ?"
)
_INSERT_CONSUMPTION_ITEM = (
    "INSERT INTO lot_consumptions (transaction_id, position, lot_id, amount, "
    "value_minor, value_currency) VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_IDEMPOTENCY = (
    "INSERT INTO idempotency (key, fingerprint, result, created_at) VALUES (?, ?, ?, ?)"
)
_UNBALANCED = (
    "SELECT (SELECT id FROM transactions WHERE row = p.transaction_row), a.asset_kind, "
    "a.asset_code, SUM(p.amount) "
    "FROM postings AS p CROSS JOIN accounts AS a ON a.id = p.account_id "
    "WHERE p.sequence >= ? "
    "GROUP BY p.transaction_row, a.asset_kind, a.asset_code HAVING SUM(p.amount) != 0 "
    "ORDER BY p.transaction_row LIMIT 10"
)

# Columns of a lot as RawBooks keeps it: its row, then those of _LOT_COLUMNS.
_ROW, _ID, _AMOUNT, _REMAINING, _VALUE, _CURRENCY, _RECOGNISED = 0, 1, 7, 8, 11, 12, 13
_consumed_only = operator.itemgetter(_REMAINING, _RECOGNISED, _ROW)  # _UPDATE_LOT_CONSUMED's
_emptied = operator.itemgetter(_RECOGNISED, _ROW)  # _UPDATE_LOT_EMPTIED's
# Columns of a waiting transaction row (the order of _INSERT_TRANSACTION).
_FINGERPRINT, _RESULT, _EVENT_ID, _EVENT_TYPE = 10, 11, 12, 13


def row_counts(db: sqlite3.Connection) -> dict[str, int]:
    """How many rows each table holds."""
    return {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}


def written(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The rows written between two :func:`row_counts`."""
    return {table: after[table] - before[table] for table in TABLES}


class Overdraft(Exception):
    """The wallet holds fewer coins than the command spends."""


class Conflict(Exception):
    """An idempotency key reused for another request."""


class Refused(Exception):
    """What the adapter's checks in SQL refuse (never in this workload)."""


Account = tuple[str, str, str, str]  # kind, owner, asset kind, asset code


def _wallet(holder: str) -> Account:
    return ("wallet", holder, "unit", COIN.code)


_SPENT: Account = ("spent", "@platform", "unit", COIN.code)
_COIN_ISSUANCE: Account = ("issuance", "@platform", "unit", COIN.code)
_DIAMOND_ISSUANCE: Account = ("issuance", "@platform", "unit", DIAMOND.code)
_CLEARING: Account = ("clearing", "@platform", "money", CURRENCY)
_DEFERRED: Account = ("deferred-revenue", "@platform", "money", CURRENCY)
_REVENUE: Account = ("revenue", "@platform", "money", CURRENCY)


class RawBooks:
    """The same SQL as coinecon's SQLite adapter, by hand, on one connection.

    Call :meth:`begin`, then :meth:`run` for each command, then :meth:`commit`.
    :meth:`run` returns the result JSON coinecon would store (the first one
    again on a replay).
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        # As the adapter's connection: account ids, kept across commits, and
        # those learnt in the open transaction (forgotten if it rolls back).
        self.ids: dict[Account, int] = {}
        self.learnt: list[Account] = []
        self.in_transaction = False
        self.next_row = 0  # 0: not read in this transaction yet
        self.next_sequence = 0
        # Read in this transaction, and written but not sent yet.
        self.balances: dict[Account, int] = {}
        self.lots: dict[str, list[list[Any]]] = {}  # holder -> open lots, oldest first
        self.transactions: dict[str, list[Any]] = {}  # waiting rows, by transaction id
        self.commands: dict[str, list[Any]] = {}  # the first of them for each key
        self.last: dict[int, int | None] = {}  # account id -> its last posting
        self.dirty: dict[int, int] = {}  # account id -> balance
        self.postings: list[tuple[int, int, int, int, int, int | None]] = []
        self.lot_updates: dict[str, list[Any]] = {}
        self.items: list[tuple[str, int, str, int, int | None, str | None]] = []
        self.records: dict[str, tuple[str, str, str, str]] = {}
        self.events: dict[str, tuple[str, str, str, str, str, int]] = {}

    def begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        self.in_transaction = True

    def commit(self) -> None:
        self.flush()
        self.db.execute("COMMIT")
        self.in_transaction = False
        self.learnt.clear()
        self._forget_reads()

    def rollback(self) -> None:
        self.db.execute("ROLLBACK")
        self.in_transaction = False
        for account in self.learnt:
            self.ids.pop(account, None)
        self.learnt.clear()
        self._forget_reads()
        for waiting in (
            self.transactions,
            self.commands,
            self.dirty,
            self.postings,
            self.lot_updates,
            self.items,
            self.records,
            self.events,
        ):
            waiting.clear()

    def _forget_reads(self) -> None:
        self.next_row = 0
        self.balances.clear()
        self.last.clear()
        self.lots.clear()

    # -- reads ------------------------------------------------------------------

    def _read_balances(self, accounts: tuple[Account, ...]) -> None:
        balances = self.balances
        missing = [a for a in accounts if a not in balances]
        if not missing:
            return
        ids = self.ids
        known = [ids.get(a) for a in missing]
        last = self.last
        if None not in known:
            found = {}
            for account_id, balance, sequence in self.db.execute(
                _BALANCES_BY_ID[len(known)], known
            ):
                found[account_id] = balance
                last[account_id] = sequence
            for account, account_id in zip(missing, known, strict=True):
                balances[account] = found.get(account_id, 0)
            return
        for account in missing:
            balances[account] = 0
        lines = self.db.execute(
            _ACCOUNTS_BY_KEY[len(missing)], [value for account in missing for value in account]
        ).fetchall()
        for account_id, *row, balance, sequence in lines:
            account = (row[0], row[1], row[2], row[3])
            balances[account] = balance
            last[account_id] = sequence
            if account not in ids:
                ids[account] = account_id
                self.learnt.append(account)

    def _replayed(self, key: str, digest: str) -> str | None:
        record: Any = self.records.get(key)
        if record is None:
            waiting = self.commands.get(key)
            if waiting is not None and waiting[_FINGERPRINT] is not None:
                record = (key, waiting[_FINGERPRINT], waiting[_RESULT])
            else:
                record = self.db.execute(_IDEMPOTENCY_RECORD, (key, key)).fetchone()
                if record is None:
                    return None
        if record[1] != digest:
            raise Conflict(key)
        return str(record[2])

    def _open_lots(self, holder: str, wallet: Account) -> list[list[Any]]:
        lots = self.lots.get(holder)
        if lots is None:
            lines = self.db.execute(_OPEN_FEW, wallet).fetchall()
            if len(lines) > _FEW_LOTS:
                raise Refused("wallets with many lots are not part of this workload")
            lines.sort(key=operator.itemgetter(0))  # by row: in the order of creation
            lots = self.lots[holder] = [list(line) for line in lines]
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
    ) -> tuple[str, list[Any]]:
        db = self.db
        transaction_id = new_id()
        if db.execute(_TRANSACTION_EXISTS, (transaction_id,)).fetchone():
            raise Refused(f"transaction {transaction_id} already exists")
        row = self.next_row
        if not row:
            row = db.execute(_NEXT_ROW).fetchone()[0]
            self.next_sequence = db.execute(_NEXT_SEQUENCE).fetchone()[0]
        sequence = self.next_sequence
        self.next_row = row + 1
        self.next_sequence = sequence + len(legs)
        waiting = [
            row,
            transaction_id,
            kind,
            now,
            key,
            cause_type,
            cause_id,
            "[]",
            sequence,
            len(legs),
            None,  # the fingerprint and result, when the command gives them
            None,
            None,  # the event's id and type (its payload is the result)
            None,
            None,
        ]
        self.transactions[transaction_id] = waiting
        self.commands.setdefault(key, waiting)
        ids = self.ids
        balances = self.balances
        postings = self.postings
        last = self.last
        for account, amount, after in legs:
            account_id = ids.get(account)
            if account_id is None:
                account_id, previous = db.execute(_UPSERT_ACCOUNT, (*account, after)).fetchone()
                ids[account] = account_id
                self.learnt.append(account)
            else:
                previous = last.get(account_id, -1)
                if previous == -1:  # as the adapter: not read in this transaction
                    previous = db.execute(_LAST_SEQUENCE, (account_id,)).fetchone()[0]
            self.dirty[account_id] = after
            last[account_id] = sequence
            balances[account] = after
            postings.append((sequence, row, account_id, amount, after, previous))
            sequence += 1
        if (
            len(self.transactions)
            + len(postings)
            + len(self.items)
            + len(self.dirty)
            + len(self.lot_updates)
            + len(self.records)
            + len(self.events)
            >= _FLUSH_ROWS
        ):
            self.flush()
        return transaction_id, waiting

    def _finish(
        self,
        key: str,
        digest: str,
        result: str,
        now: str,
        event: str,
        transaction_id: str,
        waiting: list[Any],
    ) -> None:
        on_row = transaction_id in self.transactions
        if on_row:  # the record joins its waiting row
            waiting[_FINGERPRINT] = digest
            waiting[_RESULT] = result
        else:  # the row was sent (10,000 rows waited): the record waits on its own
            self.records[key] = (key, digest, result, now)
        event_id = transaction_id  # as coinecon's: the event takes its transaction's id
        if self.db.execute(_EVENT_EXISTS, (event_id, event_id, event_id)).fetchone():
            raise Refused(f"event {event_id} already exists")
        if on_row:  # and so does the event, under '' (its transaction's id)
            waiting[_EVENT_ID] = ""
            waiting[_EVENT_TYPE] = event
        else:
            after = self.next_row - 1 if self.next_row else None
            if after is None:
                after = self.db.execute(_LAST_ROW).fetchone()[0]
            self.events[event_id] = (event_id, event, now, result, transaction_id, after)

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
        fields = {
            "also": f"[[{_text(f'earnings:{creator}:DIAMOND')},{diamonds}],"
            f'["issuance:@platform:DIAMOND",{-diamonds}]]',
            "amount": str(coins),
            "cause": _text(f"gift:{command.cause_id}"),
            "holder": _text(holder),
            "kind": '"gift"',
            "metadata": "{}",
            "unit": '"COIN"',
        }
        digest = _fingerprint("spend", fields)
        replayed = self._replayed(key, digest)
        if replayed is not None:
            return replayed
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        wallet = _wallet(holder)
        lots = self._open_lots(holder, wallet)
        earnings: Account = ("earnings", creator, "unit", DIAMOND.code)
        self._read_balances((wallet, _SPENT, _DIAMOND_ISSUANCE, earnings))
        if self.balances[wallet] < coins:
            raise Overdraft(key)
        # The lots the gift takes from, before the transaction: the value of
        # their coins moves from deferred revenue to revenue in it.
        items, wanted, recognised_value, valued = self._take(lots, coins)
        taken = len(items)
        if recognised_value:
            self._read_balances((_DEFERRED, _REVENUE))
        balances = self.balances
        left = balances[wallet] - coins
        if wanted:
            raise Refused(f"the lots of {holder} hold fewer coins than its balance")
        recognition = (
            (
                (_DEFERRED, recognised_value, balances[_DEFERRED] + recognised_value),
                (_REVENUE, -recognised_value, balances[_REVENUE] - recognised_value),
            )
            if recognised_value
            else ()
        )
        transaction_id, waiting = self._record(
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
                *recognition,
            ),
        )
        self.items.extend((transaction_id, *item) for item in items)
        # A transaction sent already (10,000 rows waited) is looked up for a consumption.
        if transaction_id not in self.transactions and (
            self.db.execute(_CONSUMED, (transaction_id,)).fetchone()
        ):
            raise Refused(f"consumption of {transaction_id} already recorded")
        value = f"{_text(CURRENCY)}:{recognised_value}" if valued else ""
        result = (
            f'{{"balance":{left},"lots":{taken},'
            f'"transaction_id":{_text(transaction_id)},"unit":"COIN","value":{{{value}}}}}'
        )
        self._finish(key, digest, result, now, "coins.spent", transaction_id, waiting)
        return result

    def _take(
        self, lots: list[list[Any]], coins: int
    ) -> tuple[list[tuple[Any, ...]], int, int, bool]:
        """Take *coins* from *lots*, in order, as the adapter does: the
        consumption items, the coins they lacked, the value recognised and
        whether a lot taken from carries money."""
        taken = 0
        recognised_value = 0
        valued = False
        wanted = coins
        items = []
        while wanted and lots:
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
            currency = None if part is None else lot[_CURRENCY]
            items.append((taken, lot[_ID], take, part, currency))
            taken += 1
            if part is not None:
                recognised_value += part  # one currency in this workload
                valued = True
        return items, wanted, recognised_value, valued

    def purchase(self, command: Command) -> str:
        key = command.key
        holder = command.holder_name
        coins = command.coins
        fields = {
            "amount": str(coins),
            "cause": _text(f"purchase:{command.cause_id}"),
            "expires_at": "null",
            "expires_in": "null",
            "holder": _text(holder),
            "metadata": "{}",
            "origin": '"purchase"',
            "unit": '"COIN"',
            "value": f"[{command.value},{_text(CURRENCY)}]",
        }
        digest = _fingerprint("credit", fields)
        replayed = self._replayed(key, digest)
        if replayed is not None:
            return replayed
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        wallet = _wallet(holder)
        # The sweep of the wallet's lapsed lots reads its open lots (no lot
        # of this workload lapses).
        cached = self._open_lots(holder, wallet)
        self._read_balances((_COIN_ISSUANCE, wallet, _CLEARING, _DEFERRED))
        balances = self.balances
        after = balances[wallet] + coins
        value = command.value
        transaction_id, waiting = self._record(
            "purchase",
            key,
            "purchase",
            command.cause_id,
            now,
            (
                (_COIN_ISSUANCE, -coins, balances[_COIN_ISSUANCE] - coins),
                (wallet, coins, after),
                (_CLEARING, value, balances[_CLEARING] + value),
                (_DEFERRED, -value, balances[_DEFERRED] - value),
            ),
        )
        lot_id = new_id()
        values = (
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
        )
        row = self.db.execute(_INSERT_LOT, (*values, False)).lastrowid
        cached.append([row, *values])
        result = (
            f'{{"balance":{after},"expires_at":null,"lot_id":{_text(lot_id)},'
            f'"transaction_id":{_text(transaction_id)},"unit":"COIN"}}'
        )
        self._finish(key, digest, result, now, "coins.credited", transaction_id, waiting)
        return result

    def flush(self) -> None:
        """Send every waiting write, then run the adapter's check that the
        transactions whose postings were sent balance."""
        db = self.db
        if self.transactions:
            db.executemany(_INSERT_TRANSACTION, self.transactions.values())
            self.transactions.clear()
            self.commands.clear()
        dirty = self.dirty
        if dirty:
            last = self.last
            db.executemany(_UPDATE_BALANCE, [(b, last[i], i) for i, b in dirty.items()])
            dirty.clear()
        postings = self.postings
        first = postings[0][0] if postings else 0
        if postings:
            db.executemany(_INSERT_POSTING, postings)
            postings.clear()
        if self.lot_updates:
            kept = [lot for lot in self.lot_updates.values() if lot[_REMAINING]]
            emptied = [lot for lot in self.lot_updates.values() if not lot[_REMAINING]]
            updated = 0
            if kept:
                updated += db.executemany(_UPDATE_LOT_CONSUMED, map(_consumed_only, kept)).rowcount
            if emptied:
                updated += db.executemany(_UPDATE_LOT_EMPTIED, map(_emptied, emptied)).rowcount
            if updated != len(self.lot_updates):
                raise Refused("a lot read in this transaction is gone from the file")
            self.lot_updates.clear()
        if self.items:
            db.executemany(_INSERT_CONSUMPTION_ITEM, self.items)
            self.items.clear()
        if self.records:
            db.executemany(_INSERT_IDEMPOTENCY, self.records.values())
            self.records.clear()
        if self.events:
            db.executemany(_INSERT_EVENT, self.events.values())
            self.events.clear()
        if first and db.execute(_UNBALANCED, (first,)).fetchall():
            raise Refused("transactions do not balance")

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
