"""The storage contract suite against the PostgreSQL adapter, in a fresh schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from coinecon.ports import Store
from coinecon.testing.contract import StoreContract
from postgres_kit import fresh_store


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        self.tmp_path = tmp_path
        with fresh_store(pool_size=12) as store:
            yield store
