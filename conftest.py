"""Shared test configuration: hypothesis profiles, and the ``store`` fixture.

``dev`` (the default) is quick for local runs; ``ci`` is thorough and is what
``.ci/run`` selects with ``HYPOTHESIS_PROFILE=ci``. ``store`` gives each test
an empty memory store, then an empty SQLite store in a file of its own; a
module that needs other stores defines its own ``store``.
"""

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from coinecon.adapters.memory import MemoryStore
from coinecon.adapters.sqlite import SqliteStore
from coinecon.ports import Store

# Without the postgres extra (psycopg), its adapter and its tests are not collected.
if importlib.util.find_spec("psycopg") is None:
    collect_ignore_glob = [
        "src/coinecon/adapters/postgres/*",
        "tests/test_postgres_*.py",
        "tests/test_contract_postgres.py",
    ]

settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile(
    "ci",
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store of each kind the library ships, closed afterwards."""
    if request.param == "memory":
        yield MemoryStore()
        return
    with SqliteStore(tmp_path / "books.db") as sqlite:
        yield sqlite
