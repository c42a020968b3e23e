"""Row codecs of the PostgreSQL adapter, and the conversion of psycopg's
failures into :class:`~coinecon.errors.StorageError` and its kinds."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from coinecon import _checks
from coinecon.errors import StorageError
from coinecon.ledger.events import OutboxEvent
from coinecon.ledger.idempotency import IdempotencyRecord
from coinecon.ledger.journal import (
    PLATFORM,
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

__all__ = [
    "ConnectionLostError",
    "RetryableStorageError",
    "StorageTimeoutError",
]


class RetryableStorageError(StorageError):
    """A unit of work lost a race it may win if run again: a serialization
    failure, a deadlock, or a unique key (an idempotency key, a transaction
    id) that a concurrent unit of work took first. Nothing was written;
    :meth:`PostgresStore.run <coinecon.adapters.postgres.PostgresStore.run>`
    runs the work again a bounded number of times."""


class StorageTimeoutError(StorageError, TimeoutError):
    """A statement ran past ``statement_timeout``, waited for a lock past
    ``lock_timeout``, or no pooled connection came free in time. The unit
    of work is rolled back: nothing was written."""


class ConnectionLostError(StorageError, ConnectionError):
    """The connection to PostgreSQL was lost (the server restarted, or the
    backend was terminated). The server rolls back the transaction it was
    in: nothing of the unit of work was written, unless the connection was
    lost while committing, when the commit may have happened (a replay with
    the same idempotency key answers which)."""


_RETRYABLE = (
    pg_errors.SerializationFailure,
    pg_errors.DeadlockDetected,
)


def fault(error: BaseException, *, action: str = "") -> StorageError:
    """The :class:`StorageError` (of the most precise kind) for *error*, a
    failure of psycopg or its pool."""
    where = f" while {action}" if action else ""
    if isinstance(error, StorageError):
        return error
    if isinstance(error, _RETRYABLE):
        return RetryableStorageError(f"PostgreSQL refused a concurrent write{where}: {error}")
    if isinstance(error, pg_errors.UniqueViolation):
        # A deferred write's key (an idempotency key found free) taken since.
        return RetryableStorageError(f"a key was taken meanwhile{where}: {error}")
    if isinstance(error, pg_errors.LockNotAvailable):
        return StorageTimeoutError(f"a lock was not granted within lock_timeout{where}: {error}")
    if isinstance(error, pg_errors.QueryCanceled):
        return StorageTimeoutError(f"a statement was cancelled (statement_timeout){where}: {error}")
    if isinstance(
        error,
        (pg_errors.AdminShutdown, pg_errors.CrashShutdown, pg_errors.CannotConnectNow),
    ) or (isinstance(error, psycopg.OperationalError) and _broken(error)):
        return ConnectionLostError(f"the connection to PostgreSQL was lost{where}: {error}")
    if isinstance(error, psycopg.Error):
        return StorageError(f"PostgreSQL failed{where}: {error}")
    if isinstance(error, OverflowError):
        return StorageError(f"a value is beyond PostgreSQL's 64-bit integers: {error}")
    return StorageError(f"the PostgreSQL pool failed{where}: {error}")


def _broken(error: psycopg.OperationalError) -> bool:
    # A lost connection has no SQLSTATE of its own ("server closed the
    # connection unexpectedly", "consuming input failed").
    return error.sqlstate is None or error.sqlstate.startswith("08")


# -- accounts --------------------------------------------------------------------

AccountRow = tuple[str, str, str, str]


def account_row(account: AccountKey) -> AccountRow:
    """The (kind, owner, asset_kind, asset_code) columns of *account*."""
    asset = account.asset
    return (
        account.kind.value,
        account.owner,
        "unit" if isinstance(asset, Unit) else "money",
        asset.code,
    )


def guarded(account: AccountKey) -> bool:
    """Whether *account*'s balance lives on its row, locked by the unit of
    work that reads it: a holder's wallet or creator payable account. The
    others are *sharded*: the platform's accounts, which nearly every
    command credits or debits, and the creators' earnings accounts, which
    every gift to the creator credits, keep their balance in shard rows
    that no reader locks (see :data:`SHARDED`)."""
    return account.owner != PLATFORM and account.kind is not AccountKind.EARNINGS


SHARDED = "(a.owner = '@platform' OR a.kind = 'earnings')"
"""Whether the account ``a`` is sharded (not :func:`guarded`), as SQL."""


@lru_cache(maxsize=1024)
def _asset(asset_kind: str, code: str) -> Asset:
    return Unit(code) if asset_kind == "unit" else Currency.of(code)


@lru_cache(maxsize=65536)
def account(kind: str, owner: str, asset_kind: str, code: str) -> AccountKey:
    """The account of a row's (kind, owner, asset_kind, asset_code)."""
    try:
        return AccountKey(AccountKind(kind), owner, _asset(asset_kind, code))
    except _checks.UNREADABLE as error:
        raise _checks.unreadable(f"account {kind}:{owner}:{code} in PostgreSQL", error) from error


# -- transactions ----------------------------------------------------------------

TRANSACTION_COLUMNS = (
    "t.row, t.id, t.kind, t.occurred_at, t.idempotency_key, t.cause_type, t.cause_id, "
    "t.metadata, t.postings"
)
"""The columns :func:`transaction` reads a transaction's header from."""


def metadata_text(transaction: Transaction) -> str:
    """A transaction's metadata as the JSON text stored."""
    return json.dumps(
        [[key, value] for key, value in transaction.metadata],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def transaction(header: Sequence[Any], postings: list[Posting]) -> Transaction:
    """The transaction of *header* (:data:`TRANSACTION_COLUMNS`) with *postings*."""
    (_row, id_, kind, occurred_at, idempotency_key, cause_type, cause_id, metadata, count) = header
    if len(postings) != count:
        raise _checks.unreadable(
            f"transaction {id_!r} in PostgreSQL",
            ValueError(f"it has {len(postings)} postings where its row says {count}"),
        )
    try:
        return Transaction._stored(  # noqa: SLF001 (metadata may predate the limits)
            id_,
            TransactionKind(kind),
            tuple(postings),
            occurred_at,
            idempotency_key,
            Cause(cause_type, cause_id),
            tuple((key, value) for key, value in json.loads(metadata)),
        )
    except _checks.UNREADABLE as error:
        raise _checks.unreadable(f"transaction {id_!r} in PostgreSQL", error) from error


# -- lots ------------------------------------------------------------------------

LOT_COLUMNS = (
    "id, account_kind, owner, asset_kind, asset_code, origin, amount, remaining, created_at, "
    "transaction_id, value_minor, value_currency, value_recognised, expires_at"
)
"""The columns :func:`lot` reads a lot from."""


def lot_values(lot: Lot) -> tuple[object, ...]:
    """The :data:`LOT_COLUMNS` of *lot*."""
    value = lot.value
    return (
        lot.id,
        *account_row(lot.account),
        lot.origin.value,
        lot.amount,
        lot.remaining,
        lot.created_at,
        lot.transaction_id,
        None if value is None else value.minor,
        None if value is None else value.currency.code,
        lot.value_recognised,
        lot.expires_at,
    )


def lot(line: Sequence[Any]) -> Lot:
    """The lot of a row of :data:`LOT_COLUMNS`."""
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
    try:
        return Lot(
            id=id_,
            account=account(kind, owner, asset_kind, code),
            origin=LotOrigin(origin),
            amount=amount,
            remaining=remaining,
            created_at=created_at,
            transaction_id=transaction_id,
            value=None if value_minor is None else Money.from_minor(value_minor, value_currency),
            value_recognised=value_recognised,
            expires_at=expires_at,
        )
    except _checks.UNREADABLE as error:
        raise _checks.unreadable(f"lot {id_!r} in PostgreSQL", error) from error


def moved(lot: Lot, account: AccountKey) -> str:
    """The message refusing to move *lot* away from *account*."""
    return f"lot {lot.id!r} belongs to {account}; a lot cannot move to {lot.account}"


# -- idempotency records and events ------------------------------------------------


def idempotency_record(line: Sequence[Any]) -> IdempotencyRecord:
    """The record of a row (key, fingerprint, result, created_at)."""
    try:
        return IdempotencyRecord(line[0], line[1], line[2], line[3])
    except _checks.UNREADABLE as error:
        raise _checks.unreadable(
            f"the idempotency record of {line[0]!r} in PostgreSQL", error
        ) from error


def event(line: Sequence[Any]) -> OutboxEvent:
    """The event of a row (id, type, occurred_at, payload, transaction_id)."""
    id_, type_, occurred_at, payload, transaction_id = line
    try:
        return OutboxEvent(id_, type_, occurred_at, payload, transaction_id)
    except _checks.UNREADABLE as error:
        raise _checks.unreadable(f"event {id_!r} in PostgreSQL", error) from error
