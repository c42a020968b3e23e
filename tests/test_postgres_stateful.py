"""The wallets against a plain model on PostgreSQL: the stateful test of
``test_wallets_stateful`` with a fresh schema for every example."""

from __future__ import annotations

from hypothesis import settings

from coinecon.adapters.postgres import PostgresStore
from coinecon.ports import Store
from postgres_kit import conninfo, drop_schema, new_schema
from test_wallets_stateful import WalletMachine


class PostgresWalletMachine(WalletMachine):
    """The machine on a PostgreSQL schema of its own, dropped at teardown."""

    def make_store(self) -> Store:
        self.schema = new_schema()
        self.store = PostgresStore(conninfo(), schema=self.schema, pool_size=2)
        return self.store

    def teardown(self) -> None:
        self.store.close()
        drop_schema(self.schema)


PostgresWalletMachine.TestCase.settings = settings(
    max_examples=15, stateful_step_count=25, deadline=None
)
TestWalletsAgainstModelOnPostgres = PostgresWalletMachine.TestCase
