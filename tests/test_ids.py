"""The ids coinecon makes for transactions, lots and events."""

from __future__ import annotations

import enum
import os
import subprocess
import sys
import time
import uuid

import pytest

from coinecon._ids import check_identifier, random_id
from coinecon.errors import InvalidIdentifierError


def test_random_ids_are_version_7_uuids_in_hex_ordered_by_their_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    ids = [random_id() for _ in range(2000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    stamps = []
    for text in ids:
        parsed = uuid.UUID(hex=text)
        assert parsed.hex == text
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        stamps.append(parsed.int >> 80)
    assert before <= stamps[0] and stamps[-1] <= after
    assert stamps == sorted(stamps)  # new ids land at the end of an index
    # Within one millisecond the 74 other bits are random, not a counter.
    low_bits = {uuid.UUID(hex=text).int & ((1 << 62) - 1) for text in ids}
    assert len(low_bits) == len(ids)


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
    code = "import os; del os.fork, os.register_at_fork; import coinecon, coinecon.ledger.wallets"
    done = subprocess.run(  # noqa: S603 (our own interpreter, our own code)
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("tx\n1", "a control character, U+000A, at position 2"),
        ("tx\u200b1", "an invisible formatting character, U+200B, at position 2"),
        ("\ud800", "a lone surrogate, U+D800, at position 0"),
        ("a\ue000", "a private-use character, U+E000, at position 1"),
        ("a\u2028b", "a line separator, U+2028, at position 1"),
        ("a\u00a0b", "a space other than ' ', U+00A0, at position 1"),
        ("a\U000e0080", "an unassigned code point, U+E0080, at position 1"),
    ],
)
def test_an_unprintable_identifier_is_refused_saying_which_character(text: str, why: str) -> None:
    with pytest.raises(InvalidIdentifierError) as raised:
        check_identifier(text, "cause id")
    assert why in str(raised.value)
    assert str(raised.value).startswith(f"cause id {text!r} contains ")


def test_a_str_subclass_is_an_identifier_like_its_text() -> None:
    class Holder(enum.StrEnum):
        ALICE = "alice"
        BAD = "al\nice"

    plain = check_identifier(Holder.ALICE, "holder")
    assert (plain, type(plain)) == ("alice", str)  # as plain text, wherever it is kept
    with pytest.raises(InvalidIdentifierError, match=r"a control character, U\+000A"):
        check_identifier(Holder.BAD, "holder")
