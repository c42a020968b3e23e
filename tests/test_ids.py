"""The ids coinecon makes for transactions, lots and events."""

from __future__ import annotations

import os
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
