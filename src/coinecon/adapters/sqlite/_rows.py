"""Row codecs of the SQLite adapter: accounts, times, money, lots, transactions,
idempotency records and events as SQLite stores them, and the conversion of
SQLite failures into :class:`~coinecon.errors.StorageError`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache, update_wrapper
from typing import Any, Concatenate, ParamSpec, TypeVar

from coinecon import _checks
from coinecon.adapters.sqlite._sql import _BUSY_CODES
from coinecon.clock import require_aware
from coinecon.errors import (
    StorageError,
)
from coinecon.ledger.events import OutboxEvent
from coinecon.ledger.idempotency import IdempotencyRecord
from coinecon.ledger.journal import (
    AccountKey,
    AccountKind,
    Asset,
    Cause,
    Posting,
    Transaction,
    TransactionKind,
)
from coinecon.ledger.lots import Lot, LotOrigin
from coinecon.money.money import Currency, Money
from coinecon.money.units import Unit

_P = ParamSpec("_P")
_R = TypeVar("_R")

# -- conversions ------------------------------------------------------------------

_AccountRow = tuple[str, str, str, str]


def _account_row(account: AccountKey) -> _AccountRow:
    asset = account.asset
    return (
        account.kind.value,
        account.owner,
        "unit" if isinstance(asset, Unit) else "money",
        asset.code,
    )


@lru_cache(maxsize=1024)
def _asset(asset_kind: str, code: str) -> Asset:
    # One object per asset read back: assets are immutable, and postings on
    # one object sum without hashing it (see Transaction's balance check).
    return Unit(code) if asset_kind == "unit" else Currency.of(code)


def _account(kind: str, owner: str, asset_kind: str, code: str) -> AccountKey:
    try:
        return AccountKey(AccountKind(kind), owner, _asset(asset_kind, code))
    except _checks.UNREADABLE as error:
        raise _checks.unreadable(f"account {kind}:{owner}:{code} in the file", error) from error


def _time(value: datetime) -> str:
    # Fixed-width UTC text sorts like the instants it names.
    global _last_time  # noqa: PLW0603 (a one-entry cache, replaced whole)
    last = _last_time
    if value is last[0]:  # one command writes its time several times
        return last[1]
    aware = require_aware(value)
    text = _utc_text(aware, aware.utcoffset())
    _last_time = (aware, text)
    return text


_last_time: tuple[datetime | None, str] = (None, "")


@lru_cache(maxsize=256)
def _utc_text(value: datetime, _offset: timedelta | None) -> str:
    # The offset is part of the key: within one zone, the two readings of a
    # wall time that a clock change repeats compare equal but are an hour apart.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _optional_time(value: datetime | None) -> str | None:
    return None if value is None else _time(value)


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _optional_money(minor: int | None, currency: str | None) -> Money | None:
    if minor is None or currency is None:
        return None
    return Money.from_minor(minor, currency)


def _is_busy(error: sqlite3.Error) -> bool:
    return (getattr(error, "sqlite_errorcode", 0) & 0xFF) in _BUSY_CODES


_FAULTS = (sqlite3.Error, OverflowError)


def _fault(error: sqlite3.Error | OverflowError) -> StorageError:
    """The :class:`StorageError` for a failure of SQLite, or for a value
    beyond its 64-bit integers.

    Repository methods raise it through :func:`_guarded`, except the few that
    every command calls: they catch :data:`_FAULTS` themselves, which saves
    the wrapper's call on the hot path.
    """
    if isinstance(error, OverflowError):
        return StorageError(f"a value is beyond SQLite's 64-bit integers: {error}")
    return StorageError(f"SQLite failed: {error}")


def _guarded(
    method: Callable[Concatenate[Any, _P], _R],
) -> Callable[Concatenate[Any, _P], _R]:
    """Turn any SQLite failure inside *method* into :class:`StorageError`."""

    def guarded(self: Any, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(self, *args, **kwargs)
        except _FAULTS as error:
            raise _fault(error) from error

    update_wrapper(guarded, method)
    return guarded


def _guarded_fetch(raw: sqlite3.Connection, sql: str, parameters: Sequence[Any]) -> list[Any]:
    try:
        return raw.execute(sql, parameters).fetchall()
    except _FAULTS as error:
        raise _fault(error) from error


def _transaction(header: Sequence[Any], postings: list[Posting]) -> Transaction:
    """The transaction of *header* (``_TRANSACTION_COLUMNS``) with *postings*,
    which must be as many as the header says."""
    (_row, id_, kind, occurred_at, idempotency_key, cause_type, cause_id, metadata, _, count) = (
        header
    )
    if len(postings) != count:
        raise _checks.unreadable(
            f"transaction {id_!r} in the file",
            ValueError(f"it has {len(postings)} postings where its row says {count}"),
        )
    try:
        return Transaction._stored(  # noqa: SLF001 (metadata may predate the limits)
            id_,
            TransactionKind(kind),
            tuple(postings),
            _parse_time(occurred_at),
            idempotency_key,
            Cause(cause_type, cause_id),
            tuple((key, value) for key, value in json.loads(metadata)),
        )
    except _checks.UNREADABLE as error:
        raise _checks.unreadable(f"transaction {id_!r} in the file", error) from error


_LOT_COLUMNS = (
    "id, account_kind, owner, asset_kind, asset_code, origin, amount, remaining, created_at, "
    "transaction_id, value_minor, value_currency, value_recognised, expires_at"
)


def _lot_values(lot: Lot) -> tuple[object, ...]:
    """The parameters of :data:`_INSERT_LOT <coinecon.adapters.sqlite._lots._INSERT_LOT>`
    for *lot*: its ``_LOT_COLUMNS``, then whether it is exhausted."""
    value = lot.value
    return (
        lot.id,
        *_account_row(lot.account),
        lot.origin.value,
        lot.amount,
        lot.remaining,
        _time(lot.created_at),
        lot.transaction_id,
        None if value is None else value.minor,
        None if value is None else value.currency.code,
        lot.value_recognised,
        _optional_time(lot.expires_at),
        lot.remaining == 0,
    )


def _lot_update(lot: Lot) -> tuple[object, ...]:
    """The parameters of :data:`_UPDATE_LOT` for *lot*."""
    values = _lot_values(lot)
    return (*values[5:], *values[:5])


def _moved(lot: Lot, account: AccountKey) -> str:
    return f"lot {lot.id!r} belongs to {account}; a lot cannot move to {lot.account}"


def _lot(line: Sequence[Any], account: AccountKey | None = None) -> Lot:
    """The lot of a row (``_LOT_COLUMNS``); *account*, when the query chose
    the row by its account, saves decoding it."""
    (
        id_,
        kind,
        owner,
        asset_kind,
        code,
        origin,
        amount,
        remaining,
        created_at,
        transaction_id,
        value_minor,
        value_currency,
        value_recognised,
        expires_at,
    ) = line
    if account is None:
        account = _account(kind, owner, asset_kind, code)
    try:
        return Lot(
            id=id_,
            account=account,
            origin=LotOrigin(origin),
            amount=amount,
            remaining=remaining,
            created_at=_parse_time(created_at),
            transaction_id=transaction_id,
            value=_optional_money(value_minor, value_currency),
            value_recognised=value_recognised,
            expires_at=None if expires_at is None else _parse_time(expires_at),
        )
    except _checks.UNREADABLE as error:
        raise _checks.unreadable(f"lot {id_!r} in the file", error) from error


def _idempotency_record(line: Sequence[Any]) -> IdempotencyRecord:
    try:
        return IdempotencyRecord(line[0], line[1], line[2], _parse_time(line[3]))
    except _checks.UNREADABLE as error:
        raise _checks.unreadable(
            f"the idempotency record of {line[0]!r} in the file", error
        ) from error


def _idempotency_row(record: IdempotencyRecord) -> tuple[str, str, str, str]:
    return (record.key, record.fingerprint, record.result, _time(record.created_at))


def _event(line: Sequence[Any]) -> OutboxEvent:
    id_, type_, occurred_at, payload, transaction_id = line
    try:
        return OutboxEvent(id_, type_, _parse_time(occurred_at), payload, transaction_id)
    except _checks.UNREADABLE as error:
        raise _checks.unreadable(f"event {id_!r} in the file", error) from error
