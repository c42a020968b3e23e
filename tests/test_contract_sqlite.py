"""The storage contract suite against the SQLite adapter, on a fresh file."""

from __future__ import annotations

from coinecon.adapters.sqlite import SqliteStore
from coinecon.testing.contract import StoreContract


class TestSqliteStore(StoreContract):
    def make_store(self) -> SqliteStore:
        return SqliteStore(self.tmp_path / "coinecon.db")


class TestSqliteStoreFullSync(StoreContract):
    """The same contract with synchronous=FULL and a short busy time-out."""

    def make_store(self) -> SqliteStore:
        return SqliteStore(self.tmp_path / "full.db", synchronous="full", timeout=2)


class TestSqliteStoreWithoutGroupCommit(StoreContract):
    """The same contract with one SQLite transaction per unit of work."""

    def make_store(self) -> SqliteStore:
        return SqliteStore(self.tmp_path / "solo.db", group_commit=False)
