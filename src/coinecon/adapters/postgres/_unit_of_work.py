"""The PostgreSQL unit of work: one pooled connection, one transaction at a time."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Collection, Iterator, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import psycopg
from psycopg.types.datetime import TimestamptzBinaryLoader, TimestamptzLoader

from coinecon.adapters.postgres._rows import ConnectionLostError, account_row, fault
from coinecon.errors import StorageError
from coinecon.ledger.journal import AccountKey

if TYPE_CHECKING:
    from psycopg.abc import Buffer

    from coinecon.adapters.postgres._store import Connection, PostgresStore

__all__ = ["PostgresUnitOfWork"]

_FIND_ACCOUNTS = """
    SELECT a.id, a.kind, a.owner, a.asset_kind, a.asset_code FROM {s}.accounts AS a
    JOIN unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS k (kind, owner, asset_kind, code)
    ON a.kind = k.kind AND a.owner = k.owner AND a.asset_kind = k.asset_kind
        AND a.asset_code = k.code
"""
# In a fixed order, so that two units of work creating the same accounts
# wait for each other rather than deadlock.
_INSERT_ACCOUNTS = """
    INSERT INTO {s}.accounts (kind, owner, asset_kind, asset_code)
    SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS k ORDER BY 1, 2, 3, 4
    ON CONFLICT DO NOTHING
    RETURNING id, kind, owner, asset_kind, asset_code
"""
_ITERSIZE = 1000
_IDLE = psycopg.pq.TransactionStatus.IDLE  # rows a stream fetches at a time


class _UtcLoader(TimestamptzLoader):
    """Reads a ``timestamptz`` (text) as an aware datetime in UTC."""

    def load(self, data: Buffer) -> datetime:
        return super().load(data).astimezone(UTC)


class _UtcBinaryLoader(TimestamptzBinaryLoader):
    """Reads a ``timestamptz`` (binary) as an aware datetime in UTC."""

    def load(self, data: Buffer) -> datetime:
        return super().load(data).astimezone(UTC)


class PostgresUnitOfWork:
    """A unit of work on a :class:`~coinecon.adapters.postgres.PostgresStore`;
    see :class:`coinecon.ports.UnitOfWork`.

    It holds one pooled connection from ``__enter__`` to ``__exit__`` and
    runs in PostgreSQL transactions at READ COMMITTED: the first statement
    begins one, :meth:`commit` and :meth:`rollback` end it, and the next
    statement begins the next. The holders' accounts it reads are locked
    until then.
    """

    def __init__(self, store: PostgresStore) -> None:
        from coinecon.adapters.postgres._documents import (  # noqa: PLC0415 (a cycle)
            _Idempotency,
            _Outbox,
            _Records,
        )
        from coinecon.adapters.postgres._ledger import _Ledger  # noqa: PLC0415
        from coinecon.adapters.postgres._lots import _Lots  # noqa: PLC0415

        self._store = store
        self._connection: Connection | None = None
        self._active = False
        self._ended = False
        self.committed = False
        """Whether :meth:`commit` succeeded at least once."""
        self.lock_records = False
        """Whether ``records.get`` locks the records it reads (set by
        :meth:`PostgresStore.run` when it runs work again)."""
        self.in_doubt = False
        """Whether the connection was lost while committing (the commit may
        have happened: :meth:`PostgresStore.run` does not run the work again)."""
        # The balances this transaction read or wrote: the holders' (locked
        # rows) and the platform's (summed from their shards, unlocked).
        self.locked: dict[AccountKey, int] = {}
        self.seen: dict[AccountKey, int] = {}
        # The ids of accounts this transaction found or made: the store
        # learns them at commit (a rollback may take a new one away).
        self.new_ids: dict[AccountKey, int] = {}
        # Writes that cannot be refused, sent with the commit (see defer()),
        # and what makes a write safe to defer: the keys this transaction
        # found free, the transactions it recorded, the lots it read or added.
        self.deferred: dict[tuple[str, str], tuple[str, Any]] = {}
        self.free_keys: set[str] = set()
        self.recorded: set[str] = set()
        self.lot_accounts: dict[str, AccountKey] = {}
        self.lot_updates: dict[str, tuple[object, ...]] = {}
        self.shard = 0
        self.generation = 0  # of the transaction: raised at each commit and rollback
        self._streams: list[psycopg.ServerCursor[Any]] = []
        self._names = itertools.count()
        self.ledger = _Ledger(self)
        self.lots = _Lots(self)
        self.idempotency = _Idempotency(self)
        self.outbox = _Outbox(self)
        self.records = _Records(self)

    def __enter__(self) -> Self:
        if self._active or self._ended:
            raise StorageError("a unit of work can be entered only once")
        connection = self._store._connect()  # noqa: SLF001
        if not self._store._owns_pool:  # noqa: SLF001
            # A host's connection may be in any time zone: read times as UTC.
            connection.adapters.register_loader("timestamptz", _UtcLoader)
            connection.adapters.register_loader("timestamptz", _UtcBinaryLoader)
        self._connection = connection
        self.shard = connection.info.backend_pid % self._store.shards
        self._active = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        connection = self._connection
        self._active = False
        self._ended = True
        self._connection = None
        if connection is None:
            return
        try:
            if not connection.closed and not connection.broken:
                connection.rollback()
        except psycopg.Error:
            pass  # the pool discards a broken connection
        finally:
            self._drop_streams()
            self._store._release(connection)  # noqa: SLF001

    def commit(self) -> None:
        """Make every write since the last commit durable and visible, and
        release the locks taken; the unit of work stays usable."""
        connection = self.connection()
        try:
            if self.deferred or self.lot_updates:
                # The deferred writes and the commit in one round trip: if
                # one fails, the server skips the rest and the commit.
                with connection.pipeline():
                    self._send_deferred(connection)
                    connection.commit()
            else:
                connection.commit()
        except psycopg.Error as error:
            self._forget()
            failure = fault(error, action="committing")
            if not connection.broken and not connection.closed:
                # A write sent with the commit was refused: the server skipped
                # the COMMIT and left the transaction aborted. End it, so that
                # the unit of work stays usable (and starts anew).
                with contextlib.suppress(psycopg.Error):
                    connection.rollback()
            if isinstance(failure, ConnectionLostError):
                self.in_doubt = True
                raise ConnectionLostError(
                    f"{failure}; the commit may or may not have happened "
                    "(a command replayed with its idempotency key tells)"
                ) from error
            raise failure from error
        self.committed = True
        if self.new_ids:
            self._store._learn(self.new_ids)  # noqa: SLF001
        self._forget()

    def rollback(self) -> None:
        """Discard every write since the last commit, and release the locks taken."""
        connection = self.connection()
        try:
            connection.rollback()
        except psycopg.Error as error:
            raise fault(error, action="rolling back") from error
        finally:
            self._forget()

    def _forget(self) -> None:
        self.deferred.clear()
        self.free_keys.clear()
        self.recorded.clear()
        self.lot_accounts.clear()
        self.lot_updates.clear()
        self.locked.clear()
        self.seen.clear()
        self.new_ids.clear()
        self.generation += 1
        self._drop_streams()

    def _drop_streams(self) -> None:
        """Mark the streams of the transaction that ended closed (the server
        closed them with it) without a word to the server."""
        for cursor in self._streams:
            if not cursor.closed:
                psycopg.Cursor.close(cursor)
        self._streams.clear()

    # -- for the repositories --------------------------------------------------------

    def connection(self) -> Connection:
        """The connection, while the unit of work is active."""
        if not self._active or self._connection is None:
            raise StorageError("the unit of work is not active: use it in a 'with' block")
        return self._connection

    def sql(self, text: str) -> str:
        """*text* with ``{s}`` naming the store's schema."""
        return self._store._sql(text)  # noqa: SLF001

    def execute(self, text: str, parameters: Any = None) -> psycopg.Cursor[Any]:
        """Run *text* (with ``{s}``) with *parameters*; failures as :class:`StorageError`."""
        connection = self.connection()
        try:
            if connection.info.transaction_status == _IDLE:
                # The first statement of a transaction: its BEGIN goes with it.
                with connection.pipeline():
                    return connection.execute(self.sql(text), parameters)
            return connection.execute(self.sql(text), parameters)
        except psycopg.Error as error:
            raise fault(error) from error

    def defer(self, kind: str, key: str, text: str, parameters: Any) -> None:
        """Send *text* with *parameters* with the commit, not now: a write
        that nothing can refuse but a race lost to a concurrent unit of work
        (which then fails the commit, whole, with
        :class:`~coinecon.adapters.postgres.RetryableStorageError`). Its
        *kind* and *key* name what it writes."""
        self.connection()
        self.deferred[kind, key] = (text, parameters)

    def flush(self) -> None:
        """Send the deferred writes now (before a read that would see them)."""
        if not (self.deferred or self.lot_updates):
            return
        connection = self.connection()
        try:
            with connection.pipeline():
                self._send_deferred(connection)
        except psycopg.Error as error:
            raise fault(error, action="writing") from error

    def _send_deferred(self, connection: Connection) -> None:
        from coinecon.adapters.postgres._lots import update_many  # noqa: PLC0415 (a cycle)

        deferred, updates = list(self.deferred.values()), list(self.lot_updates.values())
        self.deferred.clear()
        self.lot_updates.clear()
        if updates:
            text, parameters = update_many(updates)
            connection.execute(self.sql(text), parameters)
        for text, parameters in deferred:
            connection.execute(self.sql(text), parameters)

    def stream(self, text: str, parameters: Any = None) -> Iterator[tuple[Any, ...]]:
        """The rows of *text*, read through a server-side cursor opened now
        (so they are what the transaction sees now), fetched as consumed
        while the unit of work and its transaction last."""
        connection = self.connection()
        cursor: psycopg.ServerCursor[Any] = connection.cursor(name=f"coinecon_{next(self._names)}")
        try:
            cursor.execute(self.sql(text), parameters)
        except psycopg.Error as error:
            psycopg.Cursor.close(cursor)
            raise fault(error) from error
        self._streams.append(cursor)
        return self._rows(cursor, self.generation)

    def _rows(
        self, cursor: psycopg.ServerCursor[Any], generation: int
    ) -> Iterator[tuple[Any, ...]]:
        try:
            while True:
                if not self._active:
                    raise StorageError("the unit of work is not active: use it in a 'with' block")
                if self.generation != generation:
                    raise StorageError("a stream ends with the transaction it was read in")
                try:
                    lines = cursor.fetchmany(_ITERSIZE)
                except psycopg.Error as error:
                    raise fault(error) from error
                for line in lines:
                    if not self._active:
                        raise StorageError(
                            "the unit of work is not active: use it in a 'with' block"
                        )
                    yield line
                if len(lines) < _ITERSIZE:
                    return
        finally:
            if not cursor.closed:
                if self._active and self.generation == generation:
                    try:
                        cursor.close()
                    except psycopg.Error:
                        psycopg.Cursor.close(cursor)
                else:
                    psycopg.Cursor.close(cursor)
            if cursor in self._streams:
                self._streams.remove(cursor)

    def account_ids(self, accounts: Collection[AccountKey]) -> dict[AccountKey, int]:
        """The ids of *accounts*, whose rows are made if they are missing."""
        known = self._store._ids  # noqa: SLF001
        new_ids = self.new_ids
        ids: dict[AccountKey, int] = {}
        missing: list[AccountKey] = []
        for account in accounts:
            found = known.get(account)
            if found is None:
                found = new_ids.get(account)
            if found is None:
                missing.append(account)
            else:
                ids[account] = found
        if missing:
            ids.update(self._find_or_make(missing))
        return ids

    def find_id(self, account: AccountKey) -> int | None:
        """The id of *account*, or ``None`` if it has no row (none is made)."""
        found = self._store._ids.get(account)  # noqa: SLF001
        if found is None:
            found = self.new_ids.get(account)
        if found is None:
            found = self._lookup([account]).get(account)
        return found

    def _find_or_make(self, missing: Sequence[AccountKey]) -> dict[AccountKey, int]:
        found = self._lookup(missing)
        absent = [account for account in missing if account not in found]
        if absent:
            rows = sorted({account_row(account): account for account in absent}.items())
            by_row = dict(rows)
            lines = self.execute(_INSERT_ACCOUNTS, _columns(list(by_row))).fetchall()
            for account_id, *row in lines:
                account = by_row[tuple(row)]
                found[account] = account_id
                self.new_ids[account] = account_id
            still = [account for account in absent if account not in found]
            if still:  # made meanwhile by a unit of work that committed since
                found.update(self._lookup(still))
        if len(found) != len(set(missing)):
            raise StorageError(f"cannot find or make the accounts {missing}")
        return found

    def _lookup(self, accounts: Sequence[AccountKey]) -> dict[AccountKey, int]:
        by_row = {account_row(account): account for account in accounts}
        found: dict[AccountKey, int] = {}
        for account_id, *row in self.execute(_FIND_ACCOUNTS, _columns(list(by_row))):
            account = by_row[tuple(row)]
            found[account] = account_id
            self.new_ids[account] = account_id
        return found


def _columns(rows: Sequence[tuple[str, ...]]) -> list[list[str]]:
    """*rows* as one list per column (for ``unnest``)."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[], [], [], []]
