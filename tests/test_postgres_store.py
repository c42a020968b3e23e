"""The PostgreSQL store itself: its schema versions, its failures, its retries."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from coinecon.adapters.postgres import (
    SCHEMA_VERSION,
    ConnectionLostError,
    PostgresStore,
    PostgresUnitOfWork,
    RetryableStorageError,
    StorageTimeoutError,
)
from coinecon.errors import StorageError
from coinecon.ledger.journal import AccountKey, Transaction, TransactionKind
from coinecon.ledger.wallets import Wallets
from coinecon.testing.contract import (
    COIN,
    DIAMOND,
    gift,
    purchase,
    record,
    transaction,
    wallet,
)
from postgres_kit import conninfo, drop_schema, fresh_store, new_schema
from workload import buy, send_gift


@pytest.fixture
def store() -> Iterator[PostgresStore]:
    with fresh_store(pool_size=4) as store:
        yield store


def admin(query: str, *parameters: Any) -> list[tuple[Any, ...]]:
    """Run *query* on a connection of its own, committed at once."""
    with psycopg.connect(conninfo(), autocommit=True) as connection:
        cursor = connection.execute(query, parameters)
        return cursor.fetchall() if cursor.description else []


def versions(schema: str) -> list[int]:
    with psycopg.connect(conninfo(), autocommit=True) as connection:
        query = sql.SQL("SELECT version FROM {}.coinecon_schema ORDER BY version").format(
            sql.Identifier(schema)
        )
        return [line[0] for line in connection.execute(query)]


def verified(store: PostgresStore) -> None:
    report = Wallets(store).verify()
    assert report.ok, str(report)


# -- schema versions ---------------------------------------------------------------


def test_a_new_schema_is_made_at_the_latest_version_and_reopened_as_it_is() -> None:
    schema = new_schema()
    try:
        with PostgresStore(conninfo(), schema=schema) as store, store.unit_of_work() as uow:
            record(uow, purchase("tx-1", "alice", 5))
            uow.commit()
        with PostgresStore(conninfo(), schema=schema) as store, store.unit_of_work() as uow:
            assert uow.ledger.balances([wallet("alice")]) == {wallet("alice"): 5}
        assert versions(schema) == list(range(1, SCHEMA_VERSION + 1))
    finally:
        drop_schema(schema)


def test_stores_starting_together_migrate_once() -> None:
    schema = new_schema()
    start = threading.Barrier(6)
    failures: list[BaseException] = []

    def open_store() -> None:
        try:
            start.wait()
            PostgresStore(conninfo(), schema=schema, pool_size=1).close()
        except BaseException as error:  # noqa: BLE001 (reported below)
            failures.append(error)

    threads = [threading.Thread(target=open_store) for _ in range(6)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert versions(schema) == list(range(1, SCHEMA_VERSION + 1))
    finally:
        drop_schema(schema)


def test_a_schema_newer_than_the_library_is_refused_and_left_alone() -> None:
    schema = new_schema()
    try:
        PostgresStore(conninfo(), schema=schema).close()
        admin(
            sql.SQL("INSERT INTO {}.coinecon_schema (version) VALUES (%s)")
            .format(sql.Identifier(schema))
            .as_string(None),
            SCHEMA_VERSION + 1,
        )
        with pytest.raises(StorageError, match="newer"):
            PostgresStore(conninfo(), schema=schema)
        assert versions(schema) == [*range(1, SCHEMA_VERSION + 1), SCHEMA_VERSION + 1]
    finally:
        drop_schema(schema)


@pytest.mark.parametrize("name", ["", "Upper", "1st", 'x"; DROP TABLE y; --', "a" * 64])
def test_a_schema_name_that_is_not_a_plain_identifier_is_refused(name: str) -> None:
    with pytest.raises(StorageError, match="schema name"):
        PostgresStore("host=127.0.0.1 dbname=test", schema=name)


def test_a_server_that_cannot_be_reached_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="cannot connect"):
        PostgresStore(
            "host=127.0.0.1 port=1 dbname=test password=secret connect_timeout=1",
            pool_timeout=1,
        )


def test_a_host_pool_is_used_and_left_open() -> None:
    schema = new_schema()
    try:
        from psycopg_pool import ConnectionPool  # noqa: PLC0415

        with ConnectionPool(conninfo(), min_size=1, max_size=2, open=True) as pool:
            with PostgresStore(pool=pool, schema=schema) as store:
                wallets = Wallets(store)
                buy(wallets, "k-1", "alice", 3)
                assert wallets.balance("alice", COIN).amount == 3
            with pool.connection() as connection:
                assert connection.execute("SELECT 1").fetchone() == (1,)
    finally:
        drop_schema(schema)


# -- failures ------------------------------------------------------------------------


def test_a_connection_killed_mid_transaction_writes_nothing(store: PostgresStore) -> None:
    wallets = Wallets(store)
    buy(wallets, "k-0", "alice", 10)
    with store.unit_of_work() as uow:
        record(uow, purchase("tx-1", "alice", 5))
        pid = uow.connection().info.backend_pid
        assert admin("SELECT pg_terminate_backend(%s)", pid) == [(True,)]
        with pytest.raises(ConnectionLostError):
            uow.commit()
    # The next unit of work gets a working connection; tx-1 is not there.
    with store.unit_of_work() as uow:
        assert uow.ledger.get("tx-1") is None
        assert uow.ledger.balances([wallet("alice")]) == {wallet("alice"): 10}
    buy(wallets, "k-2", "alice", 1)
    verified(store)


def test_a_connection_killed_between_commands_is_retried(store: PostgresStore) -> None:
    wallets = Wallets(store)
    buy(wallets, "k-0", "alice", 10)
    # Every idle connection of the pool dies (as a server restart would kill them).
    admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle' "
        "AND application_name = ''"
    )
    send_gift(wallets, "k-1", "alice", 4)
    assert wallets.balance("alice", COIN).amount == 6
    verified(store)


def test_a_lock_held_past_lock_timeout_is_a_typed_error() -> None:
    with fresh_store(lock_timeout=0.2) as store:
        buy(Wallets(store), "k-0", "alice", 10)
        with store.unit_of_work() as holder:
            holder.ledger.balances([wallet("alice")])  # locks alice's row
            started = time.monotonic()
            with (
                store.unit_of_work() as waiter,
                pytest.raises(StorageTimeoutError, match="lock_timeout"),
            ):
                waiter.ledger.balances([wallet("alice")])
            assert time.monotonic() - started < 5
        verified(store)


def test_a_statement_past_statement_timeout_is_a_typed_error() -> None:
    with fresh_store(statement_timeout=0.2, lock_timeout=None) as store:
        buy(Wallets(store), "k-0", "alice", 10)
        with store.unit_of_work() as holder:
            holder.ledger.balances([wallet("alice")])
            with store.unit_of_work() as waiter:
                with pytest.raises(StorageTimeoutError, match="statement_timeout"):
                    waiter.ledger.balances([wallet("alice")])
                with pytest.raises(StorageError):  # the transaction is spoilt ...
                    waiter.ledger.accounts()
                waiter.rollback()  # ... until rolled back
                assert wallet("alice") in waiter.ledger.accounts()
        verified(store)


def test_a_refusal_of_the_schema_is_a_storage_error_and_writes_nothing(
    store: PostgresStore,
) -> None:
    # A debit below zero outside a chargeback or refund, written by hand.
    transaction = gift("tx-1", "alice", "carol", 5)
    given = {p.account: p.amount for p in transaction.postings}
    with store.unit_of_work() as uow, pytest.raises(StorageError, match="below zero"):
        uow.ledger.record(transaction, given)
    with store.unit_of_work() as uow:
        assert uow.ledger.accounts() == {}


# -- retries ---------------------------------------------------------------------------


def test_run_retries_a_race_it_lost_then_gives_up(store: PostgresStore) -> None:
    attempts: list[int] = []

    def work(uow: PostgresUnitOfWork) -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise RetryableStorageError("lost a race")
        record(uow, purchase("tx-1", "alice", 1))
        uow.commit()
        return "done"

    assert store.run(work) == "done"
    assert len(attempts) == 3

    def always(uow: PostgresUnitOfWork) -> None:
        raise RetryableStorageError("lost again")

    with pytest.raises(StorageError, match="gave up after 6 attempts"):
        store.run(always)


def test_replays_racing_their_original_return_its_result(store: PostgresStore) -> None:
    wallets = Wallets(store)
    buy(wallets, "seed", "alice", 1000)
    start = threading.Barrier(8)
    results: list[str] = []
    failures: list[BaseException] = []

    def replay(key: str) -> None:
        try:
            start.wait()
            results.append(send_gift(Wallets(store), key, "alice", 7))
        except BaseException as error:  # noqa: BLE001 (reported below)
            failures.append(error)

    threads = [threading.Thread(target=replay, args=(f"gift-{n % 2}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(set(results)) == 2  # one result per key, whoever ran it
    assert wallets.balance("alice", COIN).amount == 1000 - 2 * 7
    with store.unit_of_work() as uow:
        assert len(list(uow.ledger.transactions())) == 3
    verified(store)


def test_coinecon_never_imports_psycopg_unless_asked() -> None:
    code = (
        "import sys, pathlib, importlib, coinecon\n"
        "root = pathlib.Path(coinecon.__file__).parent\n"
        "for path in sorted(root.rglob('*.py')):\n"
        "    parts = ('coinecon', *path.relative_to(root).with_suffix('').parts)\n"
        "    if 'postgres' not in parts and parts[-1] != '__main__':\n"
        "        importlib.import_module('.'.join(p for p in parts if p != '__init__'))\n"
        "assert 'psycopg' not in sys.modules, 'psycopg was imported'\n"
        "import coinecon.adapters.postgres\n"
        "assert 'psycopg' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)  # noqa: S603 (our own code)


def test_a_debit_of_earnings_read_before_a_concurrent_one_runs_again(
    store: PostgresStore,
) -> None:
    """A creator's earnings are sharded and read without a lock: a debit
    checked against a balance that a concurrent debit changed is refused
    with RetryableStorageError before anything is written (run() retries
    it); a credit meanwhile does not disturb it."""
    carol = AccountKey.earnings("carol", DIAMOND)
    source = AccountKey.issuance(DIAMOND)
    with store.unit_of_work() as uow:
        record(uow, purchase("tx-0", "alice", 50))
        record(uow, gift("tx-1", "alice", "carol", 10))
        uow.commit()

    def conversion(transaction_id: str, units: int) -> Transaction:
        return transaction(
            transaction_id, TransactionKind.CONVERSION, (carol, -units), (source, units)
        )

    with store.unit_of_work() as first:
        assert first.ledger.balances([carol, source])[carol] == 10
        with store.unit_of_work() as second:
            record(second, conversion("tx-2", 4))
            second.commit()
        with pytest.raises(RetryableStorageError, match="fell since it was read"):
            record(first, conversion("tx-3", 7))
        first.rollback()
        record(first, conversion("tx-3", 6))
        first.commit()
    with store.unit_of_work() as uow:
        assert uow.ledger.balances([carol]) == {carol: 0}
        history = uow.ledger.history(carol, limit=10)
        assert [entry.balance_after for entry in history] == [0, 6, 10]


def test_a_commit_in_doubt_is_raised_as_it_is_and_not_run_again(
    store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[int] = []

    def work(uow: PostgresUnitOfWork) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RetryableStorageError("lost a race")  # the second attempt is the one in doubt
        record(uow, purchase("tx-1", "alice", 1))
        connection = uow.connection()
        commit = connection.commit

        def commit_then_lose_the_answer() -> None:
            commit()
            raise psycopg.OperationalError("server closed the connection unexpectedly")

        monkeypatch.setattr(connection, "commit", commit_then_lose_the_answer)
        uow.commit()
        return "done"

    with pytest.raises(ConnectionLostError, match="may or may not have happened") as lost:
        store.run(work)
    assert len(attempts) == 2  # not run a third time: it might have committed
    assert "gave up" not in str(lost.value)
    with store.unit_of_work() as uow:
        assert uow.ledger.get("tx-1") is not None  # here it had


def test_a_current_schema_opens_on_a_read_only_session_for_history(store: PostgresStore) -> None:
    with store.unit_of_work() as uow:
        record(uow, purchase("tx-1", "alice", 5))
        uow.commit()
    # As on a read replica: nothing may be written, not even CREATE ... IF NOT EXISTS.
    read_only = f"{conninfo()} options='-c default_transaction_read_only=on'"
    with (
        PostgresStore(read_only, schema=store.schema, pool_size=1) as replica,
        replica.unit_of_work() as uow,
    ):
        [entry] = uow.ledger.history(wallet("alice"), limit=10)
        assert (entry.transaction_id, entry.balance_after) == ("tx-1", 5)
    with pytest.raises(StorageError, match="read-only"):
        PostgresStore(read_only, schema=new_schema(), pool_size=1)


def test_rows_a_holder_owns_carry_their_holder(store: PostgresStore) -> None:
    """The path to distributing by holder: consumptions and shard rows name theirs."""
    wallets = Wallets(store)
    buy(wallets, "buy-1", "alice", 100)
    send_gift(wallets, "gift-1", "alice", 30)
    name = sql.Identifier(store.schema).as_string(None)
    assert admin(f"SELECT DISTINCT owner FROM {name}.lot_consumptions") == [("alice",)]
    shards = admin(
        f"SELECT a.kind, s.owner = a.owner FROM {name}.account_shards AS s"
        f" JOIN {name}.accounts AS a ON a.id = s.account_id"
    )
    assert ("earnings", True) in shards
    assert all(same for _, same in shards)
