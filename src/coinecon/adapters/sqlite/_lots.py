"""The SQLite lot repository: lots and what spends consumed."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

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
from coinecon.errors import InvalidAmountError, StorageError
from coinecon.ledger.journal import AccountKey
from coinecon.ledger.lots import Lot, LotConsumption

if TYPE_CHECKING:
    from coinecon.adapters.sqlite._unit_of_work import SqliteUnitOfWork

_LOT_OWNER = "SELECT account_kind, owner, asset_kind, asset_code FROM lots WHERE id = ?"
_NOTHING_CONSUMED = "a consumption lists at least one lot; this one is empty"
_CONSUMED = "SELECT 1 FROM lot_consumptions WHERE transaction_id = ? LIMIT 1"
_INSERT_LOT = f"INSERT INTO lots ({_LOT_COLUMNS}, exhausted) VALUES ({_placeholders(15)})"
_LAPSED = (
    f"SELECT {_LOT_COLUMNS} FROM lots WHERE account_kind = ? AND owner = ? "
    "AND asset_kind = ? AND asset_code = ? AND exhausted = 0 "
    "AND expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at, id"
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
            uow = self._uow
            raw = uow._work().raw  # noqa: SLF001
            pending = uow._pending  # noqa: SLF001
            cached = pending.lots.get(account)
            if cached is None:
                if account in pending.behind:  # the table is behind what waits
                    uow._send(uow._work())  # noqa: SLF001
                lines = raw.execute(
                    f"SELECT row, {_LOT_COLUMNS} FROM lots WHERE account_kind = ? AND owner = ? "
                    "AND asset_kind = ? AND asset_code = ? AND exhausted = 0 ORDER BY row",
                    _account_row(account),
                ).fetchall()
                cached = {}
                rows = pending.lot_rows
                for line in lines:
                    lot = _lot(line[1:], account)  # chosen by the account's columns
                    cached[lot.id] = lot
                    rows[lot.id] = line[0]
                pending.lots[account] = cached
            return list(cached.values())
        except _FAULTS as error:
            raise _fault(error) from error

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
            uow = self._uow
            raw = uow._work().raw  # noqa: SLF001
            cached = uow._pending.lots.get(account)  # noqa: SLF001
            if cached is not None:
                # Served from the open lots read in this transaction, which
                # follow its writes (a spend reads them anyway).
                due = [lot for lot in cached.values() if lot.is_expired(now)]
                due.sort(key=_soonest)
                return due
            # The table is up to date for this account once the lot updates
            # that wait are sent, if update() let one wait while the account's
            # open lots were not held. The lots_open index narrows the search
            # to the account's open lots.
            if account in uow._pending.behind:  # noqa: SLF001
                uow._send(uow._work())  # noqa: SLF001
            lines = raw.execute(_LAPSED, (*_account_row(account), at)).fetchall()
            return [_lot(line, account) for line in lines]  # chosen by the account's columns
        except _FAULTS as error:
            raise _fault(error) from error

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


def _soonest(lot: Lot) -> tuple[datetime, str]:
    """Sorts lots that expire as :data:`_LAPSED` does: by expiry, then id."""
    assert lot.expires_at is not None  # noqa: S101 (only lots that expire are sorted)
    return lot.expires_at, lot.id
