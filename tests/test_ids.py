"""The ids coinecon makes for transactions, lots and events."""

from __future__ import annotations

import uuid

from coinecon._ids import random_id


def test_random_ids_are_version_4_uuids_in_hex() -> None:
    ids = [random_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(hex=text)
        assert parsed.hex == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
