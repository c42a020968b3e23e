"""Baseline (a): the minimal correct double-entry write, on raw sqlite3.

Three tables: ``balances`` (one row per account, integer ids), ``transactions``
(one row per command, its idempotency key UNIQUE, with the request's
fingerprint) and ``postings`` (one row per leg, with the balance after it, as a
running balance; clustered by transaction, so a replay finds its first
result). No lots, no outbox, no money values: the least a ledger can write and
still be correct. A command:

1. inserts its transaction row; the UNIQUE key refuses a replay, which then
   returns the first result (or raises on another request under that key);
2. takes the coins from the wallet with a guarded update
   (``... WHERE account = ? AND balance >= ?``), which refuses an overdraft;
3. credits the other accounts with plain updates;
4. inserts its postings (four for a gift, two for a purchase).

One command per SQLite transaction (``BEGIN IMMEDIATE`` .. ``COMMIT``; a
refused command is rolled back), or many per transaction (a refused command
voids the whole batch, as ``Wallets.batch()`` does).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from _workload import HOLDERS, SEED_COINS, Command

SCHEMA = (
    "CREATE TABLE balances (account INTEGER PRIMARY KEY, balance INTEGER NOT NULL)",
    (
        "CREATE TABLE transactions (id INTEGER PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE,"
        " fingerprint TEXT NOT NULL, created_at TEXT NOT NULL)"
    ),
    (
        "CREATE TABLE postings (transaction_id INTEGER NOT NULL, leg INTEGER NOT NULL,"
        " account INTEGER NOT NULL, amount INTEGER NOT NULL, balance_after INTEGER NOT NULL,"
        " PRIMARY KEY (transaction_id, leg)) WITHOUT ROWID"
    ),
)
TABLES = ("balances", "transactions", "postings")


class Overdraft(Exception):
    """The wallet holds fewer coins than the command spends."""


class Conflict(Exception):
    """An idempotency key reused for another request."""


class Accounts:
    """Integer account ids: holders first, then creators' earnings, then the platform's."""

    def __init__(self, holders: int, creators: int) -> None:
        self.holders = holders
        self.creators = creators
        self.spent = holders + creators
        self.coin_issuance = self.spent + 1
        self.diamond_issuance = self.spent + 2
        self.count = self.spent + 3

    def wallet(self, holder: int) -> int:
        return holder

    def earnings(self, creator: int) -> int:
        return self.holders + creator


_INSERT_TRANSACTION = (
    "INSERT INTO transactions (idempotency_key, fingerprint, created_at) VALUES (?, ?, ?)"
)
_TAKE = (
    "UPDATE balances SET balance = balance - ? WHERE account = ? AND balance >= ? RETURNING balance"
)
_ADD = "UPDATE balances SET balance = balance + ? WHERE account = ? RETURNING balance"
_INSERT_POSTING = (
    "INSERT INTO postings (transaction_id, leg, account, amount, balance_after)"
    " VALUES (?, ?, ?, ?, ?)"
)
_FIRST_RESULT = (
    "SELECT t.id, t.fingerprint, p.balance_after FROM transactions AS t"
    " JOIN postings AS p ON p.transaction_id = t.id AND p.leg = ?"
    " WHERE t.idempotency_key = ?"
)


class MinimalBooks:
    """Baseline (a) on one connection. :meth:`run` returns ``(transaction id,
    wallet balance after)``, the first one again on a replay."""

    def __init__(self, db: sqlite3.Connection, accounts: Accounts) -> None:
        self.db = db
        self.accounts = accounts

    def begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.db.execute("COMMIT")

    def rollback(self) -> None:
        self.db.execute("ROLLBACK")

    def run(self, command: Command) -> tuple[int, int]:
        """Write *command* inside the open SQLite transaction."""
        db = self.db
        accounts = self.accounts
        wallet = command.holder
        coins = command.coins
        if command.gift:
            fingerprint = f"gift:{command.holder}:{command.creator}:{coins}:{command.diamonds}"
        else:
            fingerprint = f"purchase:{command.holder}:{coins}:{command.value}"
        now = datetime.now(UTC).isoformat()
        try:
            transaction = db.execute(_INSERT_TRANSACTION, (command.key, fingerprint, now)).lastrowid
        except sqlite3.IntegrityError:
            return self._replay(command.key, fingerprint, 0 if command.gift else 1)
        assert transaction is not None
        if command.gift:
            taken = db.execute(_TAKE, (coins, wallet, coins)).fetchone()
            if taken is None:
                raise Overdraft(command.key)
            diamonds = command.diamonds
            legs = (
                (transaction, 0, wallet, -coins, taken[0]),
                (
                    transaction,
                    1,
                    accounts.spent,
                    coins,
                    db.execute(_ADD, (coins, accounts.spent)).fetchone()[0],
                ),
                (
                    transaction,
                    2,
                    accounts.diamond_issuance,
                    -diamonds,
                    db.execute(_ADD, (-diamonds, accounts.diamond_issuance)).fetchone()[0],
                ),
                (
                    transaction,
                    3,
                    accounts.earnings(command.creator),
                    diamonds,
                    db.execute(_ADD, (diamonds, accounts.earnings(command.creator))).fetchone()[0],
                ),
            )
            db.executemany(_INSERT_POSTING, legs)
            return transaction, taken[0]
        issued = db.execute(_ADD, (-coins, accounts.coin_issuance)).fetchone()[0]
        after = db.execute(_ADD, (coins, wallet)).fetchone()[0]
        db.executemany(
            _INSERT_POSTING,
            (
                (transaction, 0, accounts.coin_issuance, -coins, issued),
                (transaction, 1, wallet, coins, after),
            ),
        )
        return transaction, after

    def _replay(self, key: str, fingerprint: str, leg: int) -> tuple[int, int]:
        transaction, first, balance = self.db.execute(_FIRST_RESULT, (leg, key)).fetchone()
        if first != fingerprint:
            raise Conflict(key)
        return transaction, balance

    def run_one(self, command: Command) -> tuple[int, int]:
        """*command* in its own SQLite transaction, rolled back if refused."""
        self.begin()
        try:
            result = self.run(command)
        except BaseException:
            self.rollback()
            raise
        self.commit()
        return result


def connect(path: Path, synchronous: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, cached_statements=256)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {synchronous}")
    return db


def create(path: Path, holders: int = HOLDERS, creators: int = 100) -> Accounts:
    """A seeded file at *path*: the schema, every account, and each holder's
    first purchase (a transaction and its two postings), checkpointed."""
    accounts = Accounts(holders, creators)
    db = connect(path, "NORMAL")
    try:
        for statement in SCHEMA:
            db.execute(statement)
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO balances (account, balance) VALUES (?, ?)",
            [(a, SEED_COINS if a < holders else 0) for a in range(accounts.count)],
        )
        db.execute(
            "UPDATE balances SET balance = ? WHERE account = ?",
            (-SEED_COINS * holders, accounts.coin_issuance),
        )
        now = datetime.now(UTC).isoformat()
        for h in range(holders):
            row = db.execute(
                _INSERT_TRANSACTION, (f"seed-{h}", f"purchase:{h}:{SEED_COINS}", now)
            ).lastrowid
            db.executemany(
                _INSERT_POSTING,
                (
                    (row, 0, accounts.coin_issuance, -SEED_COINS, -SEED_COINS * (h + 1)),
                    (row, 1, h, SEED_COINS, SEED_COINS),
                ),
            )
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return accounts


def row_counts(db: sqlite3.Connection) -> dict[str, int]:
    return {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}
