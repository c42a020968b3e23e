"""The storage contract suite against the in-memory adapter."""

from __future__ import annotations

from coinecon.adapters.memory import MemoryStore
from coinecon.testing.contract import StoreContract


class TestMemoryStore(StoreContract):
    def make_store(self) -> MemoryStore:
        return MemoryStore()
