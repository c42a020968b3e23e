"""The SQLite lot repository: lots and what spends consumed."""

from __future__ import annotations

import heapq
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from coinecon import _checks
from coinecon.adapters.sqlite._ledger import _last, _pages
from coinecon.adapters.sqlite._rows import (
    _FAULTS,
    _LOT_COLUMNS,
    _account,
    _account_row,
    _fault,
    _guarded,
    _lot,
    _lot_values,
    _moved,
    _optional_money,
    _time,
)
from coinecon.adapters.sqlite._sql import _FLUSH_ROWS, _placeholders
from coinecon.adapters.sqlite.schema import _IN_GROUP as _IN_GROUP_ORDER
from coinecon.adapters.sqlite.schema import _SPEND_GROUP
from coinecon.clock import as_utc
from coinecon.errors import InvalidAmountError, InvalidTypeError, StorageError
from coinecon.ledger.journal import AccountKey
from coinecon.ledger.lots import (
    MERGE_WINDOW,
    Lot,
    LotConsumption,
    LotOrigin,
    SpendOrder,
    covering,
    merge_candidate,
)

if TYPE_CHECKING:
    from coinecon.adapters.sqlite._unit_of_work import SqliteUnitOfWork

_LOT_OWNER = "SELECT account_kind, owner, asset_kind, asset_code FROM lots WHERE id = ?"
_NOTHING_CONSUMED = "a consumption lists at least one lot; this one is empty"
_CONSUMED = "SELECT 1 FROM lot_consumptions WHERE transaction_id = ? LIMIT 1"
_INSERT_LOT = f"INSERT INTO lots ({_LOT_COLUMNS}, exhausted) VALUES ({_placeholders(15)})"
_OF_ACCOUNT = (
    "account_kind = ? AND owner = ? AND asset_kind = ? AND asset_code = ? AND exhausted = 0"
)
# An account with at most this many open lots has them read whole, once per
# SQLite transaction, and served from memory; one with more has them read
# from the index of the spend order, as far as a spend needs.
_FEW_LOTS = 32
_OPEN_FEW = (
    f"SELECT row, {_LOT_COLUMNS} FROM lots INDEXED BY lots_oldest_first "
    f"WHERE {_OF_ACCOUNT} LIMIT {_FEW_LOTS + 1}"
)
_OPEN = f"SELECT row, {_LOT_COLUMNS} FROM lots WHERE {_OF_ACCOUNT} ORDER BY row"
_OLDEST_FIRST = (
    f"SELECT row, {_LOT_COLUMNS} FROM lots INDEXED BY lots_oldest_first "
    f"WHERE {_OF_ACCOUNT} ORDER BY created_at, id"
)
_IN_GROUP = (
    f"SELECT row, {_LOT_COLUMNS} FROM lots INDEXED BY lots_spend_groups "
    f"WHERE {_OF_ACCOUNT} AND ({_SPEND_GROUP}) = (?, ?) ORDER BY {_IN_GROUP_ORDER}"
)
# A spend group, as (whether its lots last, whether they were bought).
_EXPIRING_BOUGHT, _EXPIRING_FREE, _LASTING_BOUGHT, _LASTING_FREE = (0, 1), (0, 0), (1, 1), (1, 0)
# The other orders read the groups in turn, merging those of one stage by
# the rest of SpendOrder.key (expiry, creation, id: the order in the group).
_STAGES = {
    SpendOrder.EXPIRING_FIRST: (
        (_EXPIRING_BOUGHT, _EXPIRING_FREE),
        (_LASTING_FREE,),
        (_LASTING_BOUGHT,),
    ),
    SpendOrder.PURCHASED_FIRST: (
        (_EXPIRING_BOUGHT,),
        (_LASTING_BOUGHT,),
        (_EXPIRING_FREE,),
        (_LASTING_FREE,),
    ),
}
# The newest lots of a group (for a credit to merge into).
_NEWEST_IN_GROUP = (
    f"SELECT row, {_LOT_COLUMNS} FROM lots INDEXED BY lots_spend_groups "
    f"WHERE {_OF_ACCOUNT} AND ({_SPEND_GROUP}) = (1, 0) "
    "ORDER BY coalesce(expires_at, created_at) DESC, created_at DESC, id DESC "
    f"LIMIT {MERGE_WINDOW}"
)
# The lots that expire come first in their groups, by expiry.
_LAPSED = (
    f"SELECT row, {_LOT_COLUMNS} FROM lots INDEXED BY lots_spend_groups "
    f"WHERE {_OF_ACCOUNT} AND (expires_at IS NULL) = 0 AND (origin = 'purchase') IN (0, 1) "
    "AND coalesce(expires_at, created_at) <= ?"
)


class _Lots:
    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self._uow = uow

    @_guarded
    def add(self, lot: Lot) -> None:
        uow = self._uow
        raw = uow._writing().raw  # noqa: SLF001
        try:
            row = raw.execute(_INSERT_LOT, _lot_values(lot)).lastrowid
        except sqlite3.IntegrityError as error:
            if error.sqlite_errorname == "SQLITE_CONSTRAINT_UNIQUE":
                raise StorageError(f"lot {lot.id!r} already exists") from error
            raise StorageError(f"lot {lot.id!r} breaks a constraint: {error}") from error
        pending = uow._pending  # noqa: SLF001
        cached = pending.lots.get(lot.account)
        if cached is not None and lot.remaining > 0:
            cached[lot.id] = lot  # the newest lot comes last, as in the table
            if row is not None:
                pending.lot_rows[lot.id] = row
            if len(cached) > _FEW_LOTS:
                # Too many to serve from memory: read from the indexes from
                # now on, once what waits for this account is sent.
                del pending.lots[lot.account]
                pending.loose.update(cached)
                pending.many.add(lot.account)
                pending.behind.add(lot.account)

    def update(self, lot: Lot) -> None:
        # Guarded inline, not by @_guarded: see _fault.
        try:
            uow = self._uow
            connection = uow._writing()  # noqa: SLF001
            pending = uow._pending  # noqa: SLF001
            cached = pending.lots.get(lot.account)
            old = None if cached is None else cached.get(lot.id)
            if cached is not None and old is not None:
                if lot.remaining > 0:
                    cached[lot.id] = lot  # keeps its place
                else:
                    del cached[lot.id]
                earlier = pending.lot_updates.get(lot.id)
                only = _consumed_only(old, lot) and (earlier is None or earlier[1])
                pending.lot_updates[lot.id] = (lot, only)
                return
            loose = pending.loose.get(lot.id)
            if loose is not None:
                # A lot of an account with many, read in this transaction.
                if loose.account != lot.account:
                    raise StorageError(_moved(lot, loose.account))
                earlier = pending.lot_updates.get(lot.id)
                only = _consumed_only(loose, lot) and (earlier is None or earlier[1])
                pending.lot_updates[lot.id] = (lot, only)
                if lot.remaining > 0:
                    pending.loose[lot.id] = lot
                else:
                    del pending.loose[lot.id]  # emptied: a later change is a whole update
                pending.behind.add(lot.account)
                if pending.waiting() >= _FLUSH_ROWS:
                    uow._send(connection)  # noqa: SLF001
                return
            # Any other lot (not served from memory, such as those expired()
            # returns, or emptied earlier, or claimed for another account): look
            # it up, so that a refusal comes from this call, and let its whole
            # update wait with the other writes; the account's open lots are
            # read afresh next time, once what waits is sent.
            line = connection.raw.execute(_LOT_OWNER, (lot.id,)).fetchone()
            if line is None:
                raise StorageError(f"lot {lot.id!r} does not exist")
            owner = _account(*line)
            if owner != lot.account:
                raise StorageError(_moved(lot, owner))
            pending.lot_updates[lot.id] = (lot, False)
            pending.lots.pop(lot.account, None)
            pending.behind.add(lot.account)
            if pending.waiting() >= _FLUSH_ROWS:
                uow._send(connection)  # noqa: SLF001
        except _FAULTS as error:
            raise _fault(error) from error

    @_guarded
    def get(self, lot_id: str) -> Lot | None:
        raw = self._uow._read().raw  # noqa: SLF001
        line = raw.execute(f"SELECT {_LOT_COLUMNS} FROM lots WHERE id = ?", (lot_id,)).fetchone()
        return None if line is None else _lot(line)

    def open_lots(self, account: AccountKey) -> list[Lot]:
        # Guarded inline, not by @_guarded: see _fault.
        try:
            held = self._held(account)
            if held is not None:
                return list(held.values())
            uow = self._uow
            lines = uow._work().raw.execute(_OPEN, _account_row(account)).fetchall()  # noqa: SLF001
            return [_lot(line[1:], account) for line in lines]  # chosen by the account's columns
        except _FAULTS as error:
            raise _fault(error) from error

    def _held(self, account: AccountKey) -> dict[str, Lot] | None:
        """The open lots of *account* held in memory for this transaction
        (read now if they were not), by id in the order of creation; or
        ``None`` if it has more than :data:`_FEW_LOTS`. In that case the table
        is up to date for the account when this returns: the lot updates
        that wait for it are sent."""
        uow = self._uow
        connection = uow._work()  # noqa: SLF001
        pending = uow._pending  # noqa: SLF001
        cached = pending.lots.get(account)
        if cached is not None:
            return cached
        if account in pending.behind:  # the table is behind what waits
            uow._send(connection)  # noqa: SLF001
        if account in pending.many:
            return None
        lines = connection.raw.execute(_OPEN_FEW, _account_row(account)).fetchall()
        if len(lines) > _FEW_LOTS:
            pending.many.add(account)
            return None
        lines.sort(key=_first)  # by row: in the order of creation
        cached = {}
        rows = pending.lot_rows
        for line in lines:
            lot = _lot(line[1:], account)  # chosen by the account's columns
            cached[lot.id] = lot
            rows[lot.id] = line[0]
        pending.lots[account] = cached
        return cached

    def _read(self, lines: Iterable[Sequence[Any]], account: AccountKey) -> Iterator[Lot]:
        """The lots of *lines* (``row, _LOT_COLUMNS``) of *account*, remembered
        with their rows so that updates to them are short and need no lookup."""
        pending = self._uow._pending  # noqa: SLF001
        loose = pending.loose
        rows = pending.lot_rows
        for line in lines:
            lot = _lot(line[1:], account)
            loose[lot.id] = lot
            rows[lot.id] = line[0]
            yield lot

    def _in_order(
        self, account: AccountKey, order: SpendOrder, cursors: list[sqlite3.Cursor]
    ) -> Iterator[Lot]:
        """The open lots of *account* in *order*, read from the indexes as
        they are consumed; each query is opened when the lots before it are
        used up, and added to *cursors*, for the caller to close."""
        raw = self._uow._work().raw  # noqa: SLF001
        where = _account_row(account)
        if order is SpendOrder.OLDEST_FIRST:
            cursors.append(raw.execute(_OLDEST_FIRST, where))
            yield from self._read(cursors[-1], account)
            return
        for stage in _STAGES[order]:
            groups = []
            for group in stage:
                cursors.append(raw.execute(_IN_GROUP, (*where, *group)))
                groups.append(self._read(cursors[-1], account))
            yield from groups[0] if len(groups) == 1 else heapq.merge(*groups, key=_in_group)

    def spendable(
        self, account: AccountKey, order: SpendOrder, now: datetime, coins: int
    ) -> list[Lot]:
        # Guarded inline, not by @_guarded: see _fault.
        if not isinstance(order, SpendOrder):
            raise InvalidTypeError(f"order must be a SpendOrder, got {order!r}")
        now = as_utc(now, "now")
        try:
            held = self._held(account)
            if held is not None:
                return covering(order.sort(held.values()), coins, now)
            cursors: list[sqlite3.Cursor] = []
            try:
                return covering(self._in_order(account, order, cursors), coins, now)
            finally:
                for cursor in cursors:
                    cursor.close()
        except _FAULTS as error:
            raise _fault(error) from error

    def mergeable(self, account: AccountKey, origin: LotOrigin) -> Lot | None:
        # Guarded inline, not by @_guarded: see _fault.
        if not isinstance(origin, LotOrigin):
            raise InvalidTypeError(f"origin must be a LotOrigin, got {origin!r}")
        try:
            held = self._held(account)
            if held is not None:
                return merge_candidate(held.values(), origin)
            raw = self._uow._work().raw  # noqa: SLF001
            newest = list(self._read(raw.execute(_NEWEST_IN_GROUP, _account_row(account)), account))
        except _FAULTS as error:
            raise _fault(error) from error
        return merge_candidate(newest, origin)

    @_guarded
    def expired(self, now: datetime, *, limit: int) -> list[Lot]:
        raw = self._uow._read().raw  # noqa: SLF001
        if limit < 1:
            return []
        lines = raw.execute(
            f"SELECT {_LOT_COLUMNS} FROM lots WHERE exhausted = 0 AND expires_at IS NOT NULL "
            "AND expires_at <= ? ORDER BY expires_at, id LIMIT ?",
            (_time(now), limit),
        ).fetchall()
        return [_lot(line) for line in lines]

    def lapsed(self, account: AccountKey, now: datetime) -> list[Lot]:
        # Guarded inline, not by @_guarded: see _fault.
        try:
            at = _time(now)  # checks that now is aware
            held = self._held(account)
            if held is not None:
                # Served from the open lots read in this transaction, which
                # follow its writes (a spend reads them anyway).
                due = [lot for lot in held.values() if lot.is_expired(now)]
            else:
                raw = self._uow._work().raw  # noqa: SLF001
                due = list(self._read(raw.execute(_LAPSED, (*_account_row(account), at)), account))
        except _FAULTS as error:
            raise _fault(error) from error
        due.sort(key=_soonest)
        return due

    @_guarded
    def all(self) -> Iterator[Lot]:
        return self._all(_last(self._uow, "SELECT max(row) FROM lots"))

    def _all(self, last: int) -> Iterator[Lot]:
        sql = (
            f"SELECT row, {_LOT_COLUMNS} FROM lots WHERE row > ? AND row <= ? ORDER BY row LIMIT ?"
        )
        for _connection, lines in _pages(self._uow, sql, last):
            for line in lines:
                yield _lot(line[1:])

    def record_consumption(self, transaction_id: str, consumed: Sequence[LotConsumption]) -> None:
        # Guarded inline, not by @_guarded: see _fault.
        try:
            if not consumed:
                raise InvalidAmountError(_NOTHING_CONSUMED)
            uow = self._uow
            raw = uow._writing().raw  # noqa: SLF001
            pending = uow._pending  # noqa: SLF001
            # A transaction recorded in this SQLite transaction has no
            # consumption in the file yet (the table's key would refuse one at
            # the flush all the same); any other is looked up.
            if transaction_id in pending.consumed or (
                transaction_id not in pending.transactions
                and raw.execute(_CONSUMED, (transaction_id,)).fetchone()
            ):
                raise StorageError(f"consumption of {transaction_id!r} already recorded")
            rows: list[tuple[str, int, str, int, int | None, str | None]] = []  # all or none wait
            for position, item in enumerate(consumed):
                value = item.value
                if value is None:
                    rows.append((transaction_id, position, item.lot_id, item.amount, None, None))
                else:
                    rows.append(
                        (
                            transaction_id,
                            position,
                            item.lot_id,
                            item.amount,
                            value.minor,
                            value.currency.code,
                        )
                    )
            pending.items.extend(rows)
            pending.consumed.add(transaction_id)
        except _FAULTS as error:
            raise _fault(error) from error

    @_guarded
    def consumption(self, transaction_id: str) -> list[LotConsumption]:
        raw = self._uow._read().raw  # noqa: SLF001
        lines = raw.execute(
            "SELECT lot_id, amount, value_minor, value_currency FROM lot_consumptions "
            "WHERE transaction_id = ? ORDER BY position",
            (transaction_id,),
        ).fetchall()
        try:
            return [
                LotConsumption(lot_id, amount, _optional_money(minor, currency))
                for lot_id, amount, minor, currency in lines
            ]
        except _checks.UNREADABLE as error:
            raise _checks.unreadable(
                f"the consumption of {transaction_id!r} in the file", error
            ) from error


def _consumed_only(old: Lot, new: Lot) -> bool:
    """Whether *new* differs from *old* only by what was consumed (its
    remaining coins and recognised value): a short update then."""
    return (
        new.origin is old.origin
        and new.amount == old.amount
        and new.created_at == old.created_at
        and new.transaction_id == old.transaction_id
        and new.value == old.value
        and new.expires_at == old.expires_at
    )


def _in_group(lot: Lot) -> tuple[datetime, datetime, str]:
    """The order of lots within a spend group (expiring ones, here)."""
    return (lot.expires_at or lot.created_at, lot.created_at, lot.id)


def _first(line: Sequence[Any]) -> Any:
    return line[0]


def _soonest(lot: Lot) -> tuple[datetime, str]:
    """Sorts lots that expire as :data:`_LAPSED` does: by expiry, then id."""
    assert lot.expires_at is not None  # noqa: S101 (only lots that expire are sorted)
    return lot.expires_at, lot.id
