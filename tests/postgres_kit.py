"""The PostgreSQL server the PostgreSQL tests run against, and fresh stores on it.

The server is ``COINECON_POSTGRES`` (a conninfo string) if set, else the one
on 127.0.0.1:5432, database ``test``, as the current user or ``postgres``.
Each store works in a schema of its own, with a random name, dropped
afterwards. Without a server the tests skip, saying why; with ``CI`` set
they fail instead.
"""

from __future__ import annotations

import functools
import getpass
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

psycopg = pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is not installed")

from coinecon.adapters.postgres import PostgresStore  # noqa: E402


@functools.cache
def _find_server() -> tuple[str | None, str]:
    """A conninfo that connects, or ``None`` and why none does."""
    given = os.environ.get("COINECON_POSTGRES")
    if given:
        candidates = [given]
    else:
        base = "host=127.0.0.1 port=5432 dbname=test connect_timeout=3"
        candidates = [f"{base} user={getpass.getuser()}", f"{base} user=postgres"]
    problems = []
    for conninfo in candidates:
        try:
            with psycopg.connect(conninfo):
                return conninfo, ""
        except psycopg.Error as error:
            problems.append(f"{conninfo!r}: {str(error).strip()}")
    return None, "no PostgreSQL server to test against: " + "; ".join(problems)


def conninfo() -> str:
    """The server's conninfo; skip the test (fail it in CI) without one."""
    found, reason = _find_server()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set: the PostgreSQL tests may not skip)")
        pytest.skip(reason)
    return found


def new_schema() -> str:
    """A schema name no other test uses."""
    return f"coinecon_test_{uuid.uuid4().hex[:16]}"


def drop_schema(schema: str) -> None:
    """Drop *schema* and everything in it (if it exists)."""
    with psycopg.connect(conninfo(), autocommit=True) as connection:
        connection.execute(
            psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                psycopg.sql.Identifier(schema)
            )
        )


@contextmanager
def fresh_store(**options: Any) -> Iterator[PostgresStore]:
    """A :class:`PostgresStore` on a new schema, dropped afterwards."""
    schema = new_schema()
    try:
        with PostgresStore(conninfo(), schema=schema, **options) as store:
            yield store
    finally:
        drop_schema(schema)
