"""The ids coinecon makes for transactions, lots and events."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from coinecon._ids import random_id


def test_random_ids_are_version_4_uuids_in_hex() -> None:
    ids = [random_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(hex=text)
        assert parsed.hex == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_draws_other_ids() -> None:
    """Without reseeding, a forked child would repeat its parent's next ids."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        os.write(write, random_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 32).decode()
    os.close(read)
    os.close(write)
    assert len(child) == 32
    assert child != random_id()


def test_coinecon_imports_where_os_cannot_fork() -> None:
    """Windows has no os.register_at_fork; coinecon must import all the same."""
    code = "import os; del os.fork, os.register_at_fork; import coinecon, coinecon.wallets"
    done = subprocess.run(  # noqa: S603 (our own interpreter, our own code)
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
