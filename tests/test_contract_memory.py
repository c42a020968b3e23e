"""The storage contract suite against the in-memory adapter."""

from __future__ import annotations

import pytest

from coinecon.adapters.memory import MemoryStore
from coinecon.errors import StorageError
from coinecon.testing.contract import StoreContract, purchase, record


class TestMemoryStore(StoreContract):
    def make_store(self) -> MemoryStore:
        return MemoryStore()


def test_a_nested_unit_of_work_in_one_thread_is_refused() -> None:
    """As on SQLite, a thread's second unit of work is refused while its first
    is open (it would wait for itself); the first goes on unharmed."""
    store = MemoryStore()
    with store.unit_of_work() as uow:
        with pytest.raises(StorageError, match="already has a unit of work"):
            store.unit_of_work().__enter__()
        record(uow, purchase("tx-1", "alice", 1))
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.ledger.get("tx-1") is not None
