"""One SQLite connection's state inside a transaction: the account-id cache
and the writes waiting to be sent (:class:`_Pending`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from coinecon.adapters.sqlite._rows import _account, _idempotency_row, _lot_update
from coinecon.adapters.sqlite._sql import (
    _HOLDER_KINDS,
    _INSERT_CONSUMPTION_ITEM,
    _INSERT_EVENT,
    _INSERT_IDEMPOTENCY,
    _INSERT_POSTING,
    _INSERT_TRANSACTION,
    _NEXT_ROW,
    _NEXT_SEQUENCE,
    _SHOWN_UNBALANCED,
    _UNBALANCED,
    _UPDATE_BALANCE,
    _UPDATE_LOT,
    _UPDATE_LOT_CONSUMED,
    _UPDATE_LOT_EMPTIED,
)
from coinecon.adapters.sqlite.schema import NO_DEBT_MESSAGE, OVERPAID_MESSAGE
from coinecon.errors import (
    StorageError,
)
from coinecon.ledger.idempotency import IdempotencyRecord
from coinecon.ledger.journal import (
    AccountKey,
    AccountKind,
    TransactionKind,
)
from coinecon.ledger.lots import Lot

# -- connections ------------------------------------------------------------------


_MAX_IDS = 100_000  # account ids a connection remembers, at most, between transactions


class _Connection:
    """One SQLite connection, its cache of account ids, and the next
    transaction row and posting sequence it writes.

    Ids learnt inside a transaction are forgotten if it rolls back: the row
    may have been created by it, and its id reused by another writer later.
    The cache is bounded: past :data:`_MAX_IDS` ids it is emptied at the end
    of a transaction, and ids are read again as they are needed.
    The next row and sequence are read once per SQLite transaction (which
    holds the write lock, so no one else takes them) and forgotten at its end.
    """

    __slots__ = ("ids", "keys", "learnt", "next_row", "next_sequence", "raw")

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw
        self.ids: dict[AccountKey, int] = {}
        self.keys: dict[int, AccountKey] = {}
        self.learnt: list[AccountKey] = []
        self.next_row = 0  # 0: not read in this transaction yet
        self.next_sequence = 0

    def take_row(self, postings: int) -> tuple[int, int]:
        """The row of a new transaction and the sequence of its first posting
        (it takes the next *postings* sequences)."""
        row = self.next_row
        if not row:
            row = self.raw.execute(_NEXT_ROW).fetchone()[0]
            self.next_sequence = self.raw.execute(_NEXT_SEQUENCE).fetchone()[0]
        first = self.next_sequence
        self.next_row = row + 1
        self.next_sequence = first + postings
        return row, first

    def learn(self, account: AccountKey, account_id: int) -> None:
        self.ids[account] = account_id
        self.keys[account_id] = account
        self.learnt.append(account)

    def key(self, account_id: int, kind: str, owner: str, asset_kind: str, code: str) -> AccountKey:
        account = self.keys.get(account_id)
        if account is None:
            account = _account(kind, owner, asset_kind, code)
            self.learn(account, account_id)
        return account

    def forget(self, accounts: Sequence[AccountKey]) -> None:
        for account in accounts:
            account_id = self.ids.pop(account, None)
            if account_id is not None:
                self.keys.pop(account_id, None)

    def committed(self) -> None:
        self.learnt.clear()
        self.next_row = 0
        self._bound()

    def rolled_back(self) -> None:
        self.forget(self.learnt)
        self.learnt.clear()
        self.next_row = 0
        self._bound()

    def _bound(self) -> None:
        """Forget every id once more than :data:`_MAX_IDS` are known: between
        two transactions, when nothing waiting to be sent refers to one."""
        if len(self.ids) > _MAX_IDS:
            self.ids.clear()
            self.keys.clear()

    def rolled_back_to(self, mark: int) -> None:
        """Forget the ids learnt since ``len(learnt)`` was *mark* (a savepoint
        rolled back)."""
        self.forget(self.learnt[mark:])
        del self.learnt[mark:]
        self.next_row = 0


# The fields of a transaction's row, as _INSERT_TRANSACTION takes them.
_ROW, _ID, _KIND, _TIME, _KEY = 0, 1, 2, 3, 4
_FINGERPRINT, _RESULT, _EVENT_ID, _EVENT_TYPE, _EVENT_PAYLOAD = 10, 11, 12, 13, 14


class _Pending:
    """What one SQLite transaction has read, and written but not yet sent.

    A unit of work holds the write lock from its first statement to its end,
    so nothing it read can change under it: balances and open lots, once read,
    are kept here and served from memory. Writes are kept here too, and sent
    in a few ``executemany`` calls by :meth:`flush`: at commit, before any
    query that could see them, and whenever :data:`_FLUSH_ROWS` rows are
    waiting.

    A transaction's row waits with them, so that the idempotency record its
    command adds later joins it (one row for both). A write that can be
    refused for a duplicate id or key is checked when it is made, so the
    refusal comes from the call that caused it: transaction and event ids are
    looked up; accounts and lots go to SQLite at once; an idempotency record
    waits only if its key was looked up and found free in this same
    transaction, and a consumption only if its transaction is new in it or
    was looked up.
    """

    __slots__ = (
        "absent",
        "balances",
        "behind",
        "commands",
        "consumed",
        "dirty",
        "events",
        "events_on_rows",
        "items",
        "last",
        "last_event",
        "loose",
        "lot_rows",
        "lot_updates",
        "lots",
        "many",
        "postings",
        "records",
        "transactions",
    )

    def __init__(self) -> None:
        self.balances: dict[AccountKey, int] = {}
        # The sequence of each account's last posting (None: it has none yet),
        # by account id, for the accounts whose balances were read or written.
        self.last: dict[int, int | None] = {}
        self.dirty: dict[int, int] = {}  # balances to write, by account id
        self.transactions: dict[str, list[object]] = {}  # waiting rows, by transaction id
        self.commands: dict[str, list[object]] = {}  # the first of them for each key
        # sequence, transaction row, account id, amount, balance after, previous
        self.postings: list[tuple[int, int, int, int, int, int | None]] = []
        self.lots: dict[AccountKey, dict[str, Lot]] = {}
        self.lot_rows: dict[str, int] = {}  # the table's row of each lot held in lots
        # A lot's update, and whether it changed only what was consumed.
        self.lot_updates: dict[str, tuple[Lot, bool]] = {}
        # Accounts with a lot update waiting while their open lots are not
        # held: the table is behind for them until the flush.
        self.behind: set[AccountKey] = set()
        # Accounts with too many open lots to hold (see _Lots._held), and the
        # lots of theirs read in this transaction, as last written, by id.
        self.many: set[AccountKey] = set()
        self.loose: dict[str, Lot] = {}
        self.items: list[tuple[str, int, str, int, int | None, str | None]] = []
        self.consumed: set[str] = set()  # transactions whose consumption waits
        self.records: dict[str, IdempotencyRecord] = {}
        self.absent: set[str] = set()
        self.events: dict[str, tuple[str, str, str, str, str | None, int]] = {}
        self.events_on_rows: set[str] = set()  # events waiting on transactions' rows
        # Where the last event added sorts among pending events: (its
        # transaction's row, 0), or (the last row then, 1) for one in the
        # outbox table; an event goes on a row only if that keeps the order.
        self.last_event: tuple[int, int] | None = None

    def waiting(self) -> int:
        """How many rows wait to be sent."""
        return (
            len(self.transactions)
            + len(self.postings)
            + len(self.items)
            + len(self.dirty)
            + len(self.lot_updates)
            + len(self.records)
            + len(self.events)
        )

    def flush(self, raw: sqlite3.Connection) -> None:
        """Send every waiting write, then check in SQL that every transaction
        recorded since the last flush sums to zero per asset.

        Raises:
            StorageError: if a transaction does not balance, or (refused by
                the schema's trigger) debits a holder's account below zero
                outside a chargeback.
        """
        if self.transactions:
            raw.executemany(_INSERT_TRANSACTION, self.transactions.values())
            self.transactions.clear()
            self.commands.clear()
            self.events_on_rows.clear()
        if self.dirty:
            last = self.last
            raw.executemany(_UPDATE_BALANCE, [(b, last[i], i) for i, b in self.dirty.items()])
            self.dirty.clear()
        # The check below reads the transactions whose postings are sent now.
        first = self.postings[0][0] if self.postings else None
        if self.postings:
            try:
                raw.executemany(_INSERT_POSTING, self.postings)
            except sqlite3.IntegrityError as error:
                if str(error) in (NO_DEBT_MESSAGE, OVERPAID_MESSAGE):  # but not which posting
                    raise StorageError(_into_debt(raw, self.postings)) from error
                raise
            self.postings.clear()
        if self.lot_updates:
            self._flush_lots(raw)
        if self.items:
            raw.executemany(_INSERT_CONSUMPTION_ITEM, self.items)
            self.items.clear()
            self.consumed.clear()
        if self.records:
            raw.executemany(_INSERT_IDEMPOTENCY, map(_idempotency_row, self.records.values()))
            self.records.clear()
        if self.events:
            raw.executemany(_INSERT_EVENT, self.events.values())
            self.events.clear()
        if first is None:
            return
        unbalanced = raw.execute(_UNBALANCED, (first,)).fetchall()
        if unbalanced:
            found = ", ".join(
                f"{tid} sums to {total} {code} ({kind})" for tid, kind, code, total in unbalanced
            )
            more = "; there may be more" if len(unbalanced) == _SHOWN_UNBALANCED else ""
            raise StorageError(f"transactions do not balance: {found}{more}")

    def _flush_lots(self, raw: sqlite3.Connection) -> None:
        """Send the waiting lot updates: those of lots read in this
        transaction that changed only by what was consumed in short form
        (which touches no index while the lot keeps coins), the others whole."""
        rows = self.lot_rows
        short = []
        emptied = []
        full = []
        for lot, only in self.lot_updates.values():
            row = rows.get(lot.id)
            if only and row is not None:
                if lot.remaining:
                    short.append((lot.remaining, lot.value_recognised, row))
                else:
                    emptied.append((lot.value_recognised, row))
            else:
                full.append(_lot_update(lot))
        if (short and raw.executemany(_UPDATE_LOT_CONSUMED, short).rowcount != len(short)) or (
            emptied and raw.executemany(_UPDATE_LOT_EMPTIED, emptied).rowcount != len(emptied)
        ):
            raise StorageError("a lot read in this transaction is gone from the file")
        if full:
            raw.executemany(_UPDATE_LOT, full)
        self.lot_updates.clear()
        self.behind.clear()


_MAY_LEAVE_DEBT = (TransactionKind.CHARGEBACK.value, TransactionKind.REFUND.value)


def _into_debt(
    raw: sqlite3.Connection, postings: Sequence[tuple[int, int, int, int, int, int | None]]
) -> str:
    """What the schema's triggers refused: the first of *postings* that takes
    a holder's wallet or earnings below zero, or a creator's payable account
    above zero, outside a chargeback or refund."""
    for _sequence, row, account_id, amount, after, _previous in postings:
        if (amount < 0 and after < 0) or (amount > 0 and after > 0):
            kind, owner, code = raw.execute(
                "SELECT kind, owner, asset_code FROM accounts WHERE id = ?", (account_id,)
            ).fetchone()
            overpaid = kind == AccountKind.CREATOR_PAYABLE.value
            if (amount > 0) != overpaid:  # a payable account owing more is no debt
                continue
            transaction_id, transaction_kind = raw.execute(
                "SELECT id, kind FROM transactions WHERE row = ?", (row,)
            ).fetchone()
            if kind in _HOLDER_KINDS and transaction_kind not in _MAY_LEAVE_DEBT:
                where = "above zero: paid more than owed" if overpaid else "below zero"
                return (
                    f"transaction {transaction_id} takes {kind}:{owner}:{code} "
                    f"to {after}: {where} outside a chargeback or refund"
                )
    return NO_DEBT_MESSAGE  # not among them: another writer's, in this same transaction
