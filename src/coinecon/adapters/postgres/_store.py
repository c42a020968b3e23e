"""The PostgreSQL store: its pool, its schema, and running work with retries."""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeVar

import psycopg
import psycopg_pool
from psycopg import sql

from coinecon.adapters.postgres._rows import (
    ConnectionLostError,
    RetryableStorageError,
    StorageTimeoutError,
    fault,
)
from coinecon.adapters.postgres._schema import migrate
from coinecon.adapters.postgres._unit_of_work import PostgresUnitOfWork
from coinecon.errors import StorageError
from coinecon.ledger.journal import AccountKey

__all__ = ["PostgresStore"]

_R = TypeVar("_R")
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
Connection = psycopg.Connection[tuple[Any, ...]]


class PostgresStore:
    """A :class:`~coinecon.ports.Store` on PostgreSQL, through a pool of connections.

    Args:
        conninfo: the connection string (``"host=... dbname=... user=..."``
            or a ``postgresql://`` URL); or pass *pool* instead.
        pool: a :class:`psycopg_pool.ConnectionPool` of the host's to use
            (the store does not close it). Its connections must not be in
            autocommit mode; the store sets nothing on them (configure the
            time-outs on the pool), and names every table with its schema.
        schema: the PostgreSQL schema holding coinecon's tables (lower-case
            letters, digits and ``_``); created and migrated on first use.
        pool_size: the most connections the store's own pool opens.
        statement_timeout: seconds a statement may run (``None``: no limit).
        lock_timeout: seconds a statement may wait for a row lock
            (``None``: no limit).
        pool_timeout: seconds a unit of work may wait for a free connection.
        retries: how many times :meth:`run` runs work again after a race
            it lost (a serialization failure, a deadlock, a duplicate key
            taken by a concurrent command, a connection lost before commit).
        shards: how many rows the balance of each platform and earnings
            account is spread over.

    Attributes:
        schema: the schema's name.
        retries: as given.
        shards: as given.

    Raises:
        StorageError: if the schema name is not valid, the server cannot be
            reached, or the schema is newer than this version of coinecon.
    """

    def __init__(
        self,
        conninfo: str | None = None,
        *,
        pool: psycopg_pool.ConnectionPool[Connection] | None = None,
        schema: str = "coinecon",
        pool_size: int = 10,
        statement_timeout: float | None = 30.0,
        lock_timeout: float | None = 10.0,
        pool_timeout: float = 30.0,
        retries: int = 5,
        shards: int = 16,
    ) -> None:
        if not _SCHEMA_NAME.fullmatch(str(schema)):
            raise StorageError(
                f"a schema name is 1 to 63 lower-case letters, digits and '_', "
                f"not starting with a digit; got {schema!r}"
            )
        if (conninfo is None) == (pool is None):
            raise StorageError("give a PostgresStore either a conninfo or a pool, not both")
        if type(retries) is not int or retries < 0:
            raise StorageError(f"retries must be a non-negative int, got {retries!r}")
        if type(shards) is not int or not 1 <= shards <= 1024:
            raise StorageError(f"shards must be an int from 1 to 1024, got {shards!r}")
        self.schema = schema
        self.retries = retries
        self.shards = shards
        self._pool_timeout = pool_timeout
        self._identifier = sql.Identifier(schema)
        self._statements: dict[str, str] = {}
        self._ids: dict[AccountKey, int] = {}  # of committed accounts
        self._lock = threading.Lock()
        self._closed = False
        settings = {
            "search_path": self._identifier.as_string(None),
            "TimeZone": "UTC",
            "statement_timeout": _milliseconds(statement_timeout),
            "lock_timeout": _milliseconds(lock_timeout),
        }
        self._owns_pool = pool is None
        if pool is None:
            try:
                pool = psycopg_pool.ConnectionPool(
                    conninfo or "",
                    min_size=1,
                    max_size=pool_size,
                    kwargs={"autocommit": False},
                    configure=lambda connection: _configure(connection, settings),
                    timeout=pool_timeout,
                    name=f"coinecon-{schema}",
                    open=False,
                )
                pool.open(wait=True, timeout=pool_timeout)
            except (psycopg.Error, psycopg_pool.PoolTimeout) as error:
                raise StorageError(
                    f"cannot connect to PostgreSQL ({_redacted(conninfo)}): {error}"
                ) from error
        self._pool = pool
        try:
            with pool.connection(timeout=pool_timeout) as connection:
                migrate(connection, schema)
        except StorageError:
            self.close()
            raise
        except (psycopg.Error, psycopg_pool.PoolTimeout) as error:
            self.close()
            raise fault(error, action=f"migrating the schema {schema!r}") from error

    # -- the port ---------------------------------------------------------------

    def unit_of_work(self) -> PostgresUnitOfWork:
        """Open a unit of work on this store (use it as a context manager)."""
        if self._closed:
            raise StorageError("the store is closed")
        return PostgresUnitOfWork(self)

    def run(self, work: Callable[[PostgresUnitOfWork], _R]) -> _R:
        """Run *work* with a unit of work of its own and return what it
        returns, as ``with store.unit_of_work() as uow: return work(uow)``
        would, running it again in a fresh unit of work when it loses a race
        (:class:`RetryableStorageError`: a serialization failure, a
        deadlock, a duplicate key that a concurrent command took first, a
        record changed since it was read; or a connection lost before
        anything was committed), up to :attr:`retries` times with jittered,
        growing pauses. A retry locks the records it reads. A replay that
        raced its original finds the original's idempotency record on the
        next run and answers with its result.

        Raises:
            StorageError: once the retries are spent (the last failure is
                its cause), or for any failure that a retry cannot mend.
        """
        attempt = 0
        while True:
            uow = self.unit_of_work()
            # A retry reads the services' records under a lock: a record
            # that many commands update at once (a popular creator's tally)
            # is then taken in turn rather than lost again.
            uow.lock_records = attempt > 0
            try:
                with uow:
                    return work(uow)
            except (RetryableStorageError, ConnectionLostError) as error:
                if uow.committed or uow.in_doubt:
                    raise  # as it is: a commit in doubt must stay recognisable
                if attempt >= self.retries:
                    if attempt:
                        error.args = (f"gave up after {attempt + 1} attempts: {error}",)
                    raise
                attempt += 1
                if isinstance(error, ConnectionLostError):
                    self._pool.check()  # drop the other connections the server lost
                # Full jitter: up to 2 ms, 4 ms, 8 ms ... (at most 0.2 s), a
                # random fraction of it, so that the racers do not meet again.
                time.sleep(random.uniform(0, min(0.2, 0.001 * 2**attempt)))  # noqa: S311

    def close(self) -> None:
        """Close the store's own pool (a pool given to it is the host's to
        close); the store cannot be used afterwards."""
        if self._closed:
            return
        self._closed = True
        if self._owns_pool:
            self._pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self.schema!r})"

    # -- for the unit of work -----------------------------------------------------

    def _sql(self, text: str) -> str:
        """*text* with ``{s}`` naming the store's schema (rendered once)."""
        found = self._statements.get(text)
        if found is None:
            found = sql.SQL(text).format(s=self._identifier).as_string(None)
            self._statements[text] = found
        return found

    def _connect(self) -> Connection:
        try:
            return self._pool.getconn(timeout=self._pool_timeout)
        except psycopg_pool.PoolTimeout as error:
            raise StorageTimeoutError(
                f"no pooled connection came free within {self._pool_timeout} s"
            ) from error
        except (psycopg.Error, psycopg_pool.PoolClosed) as error:
            raise fault(error, action="opening a unit of work") from error

    def _release(self, connection: Connection) -> None:
        self._pool.putconn(connection)

    def _learn(self, ids: dict[AccountKey, int]) -> None:
        with self._lock:
            self._ids.update(ids)


def _configure(connection: Connection, settings: dict[str, str]) -> None:
    names = sorted(settings)
    columns = ", ".join(f"set_config(%s, %s, false) AS s{n}" for n in range(len(names)))
    connection.execute(
        f"SELECT {columns}",
        [value for name in names for value in (name, settings[name])],
    )
    connection.commit()


def _milliseconds(seconds: float | None) -> str:
    if seconds is None:
        return "0"
    if seconds <= 0:
        raise StorageError(f"a time-out is a positive number of seconds or None, got {seconds!r}")
    return str(max(1, round(seconds * 1000)))


def _redacted(conninfo: str | None) -> str:
    """*conninfo* without its password, for an error message."""
    text = conninfo or ""
    text = re.sub(r"(password\s*=\s*)\S+", r"\1***", text)
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", text)
