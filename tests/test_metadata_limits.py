"""Metadata is for a few facts about a transaction, kept with it forever:
its size is limited, and over a limit the command is refused with a typed
error naming the limit, and nothing is kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from coinecon import MetadataTooLargeError, ValidationError
from coinecon.adapters.memory import MemoryStore
from coinecon.adapters.sqlite import SqliteStore
from coinecon.clock import ManualClock
from coinecon.ledger.journal import (
    MAX_METADATA_BYTES,
    MAX_METADATA_KEYS,
    MAX_METADATA_VALUE,
    AccountKey,
    Cause,
    MetadataValue,
    Posting,
    Transaction,
    TransactionKind,
    metadata_pairs,
)
from coinecon.ledger.lots import LotOrigin
from coinecon.ledger.wallets import Wallets
from coinecon.ports import Store
from coinecon.testing.contract import COIN, T0

LONG = "x" * MAX_METADATA_VALUE
# 8 values of 1,020 characters with 4-character keys: 8,192 bytes exactly.
_FULL: dict[str, MetadataValue] = {f"k{n:03d}": "y" * 1020 for n in range(8)}
AT_THE_LIMITS: list[dict[str, MetadataValue]] = [
    {f"k{n}": n for n in range(MAX_METADATA_KEYS)},
    {"note": LONG},
    {"big": 2**63 - 1, "small": -(2**63), "yes": True, "no": False, "none": None},
    # 8 values of 1,020 characters with 4-character keys: 8,192 bytes exactly.
    {f"k{n:03d}": "y" * 1020 for n in range(MAX_METADATA_BYTES // 1024)},
]
OVER: list[tuple[dict[str, MetadataValue], str, int, int]] = [
    ({f"k{n}": n for n in range(MAX_METADATA_KEYS + 1)}, "keys", MAX_METADATA_KEYS, 33),
    ({"note": LONG + "x"}, "value", MAX_METADATA_VALUE, 1025),
    ({"note": "é" * (MAX_METADATA_VALUE + 1)}, "value", MAX_METADATA_VALUE, 1025),
    ({"big": 2**63}, "integer", 64, 65),
    ({"big": 2**64 - 1}, "integer", 64, 65),
    ({"small": -(2**63) - 1}, "integer", 64, 65),
    ({f"k{n:03d}": "y" * 1020 for n in range(8)} | {"z": 0}, "bytes", MAX_METADATA_BYTES, 8194),
    ({**{f"k{n:03d}": "y" * 1020 for n in range(8)}, "z": None}, "bytes", MAX_METADATA_BYTES, 8197),
    (_FULL | {"z": ""}, "bytes", MAX_METADATA_BYTES, 8193),
    # Characters are counted for the value limit, bytes for the total.
    ({f"k{n}": "é" * 600 for n in range(7)}, "bytes", MAX_METADATA_BYTES, 8414),
]


@pytest.mark.parametrize("metadata", AT_THE_LIMITS)
def test_metadata_at_its_limits_is_kept(metadata: dict[str, MetadataValue]) -> None:
    assert dict(metadata_pairs(metadata)) == metadata


@pytest.mark.parametrize(("metadata", "limit", "allowed", "got"), OVER)
def test_metadata_over_a_limit_is_refused_naming_it(
    metadata: dict[str, MetadataValue], limit: str, allowed: int, got: int
) -> None:
    with pytest.raises(MetadataTooLargeError, match=r"at most|64-bit") as raised:
        metadata_pairs(metadata)
    assert (raised.value.limit, raised.value.allowed, raised.value.got) == (limit, allowed, got)
    assert isinstance(raised.value, ValidationError)


@pytest.mark.parametrize(("metadata", "limit", "allowed", "got"), OVER[:2])
def test_a_command_with_metadata_over_a_limit_keeps_nothing(
    metadata: dict[str, MetadataValue], limit: str, allowed: int, got: int
) -> None:
    wallets = Wallets(MemoryStore(), clock=ManualClock(T0))
    with pytest.raises(MetadataTooLargeError):
        wallets.credit(
            "c1",
            holder="alice",
            amount=COIN(5),
            origin=LotOrigin.BONUS,
            cause=Cause("bonus", "c1"),
            metadata=metadata,
        )
    assert wallets.balance("alice", COIN) == COIN(0)
    assert wallets.verify().transactions == 0
    wallets.credit(  # the key stays free
        "c1", holder="alice", amount=COIN(5), origin=LotOrigin.BONUS, cause=Cause("bonus", "c1")
    )
    assert wallets.balance("alice", COIN) == COIN(5)


@pytest.mark.parametrize("adapter", ["memory", "sqlite"])
def test_metadata_stored_before_the_limits_reads_back(adapter: str, tmp_path: Path) -> None:
    """The limits apply to new transactions: books written before them,
    with metadata over them, read back whole."""
    store: Store = MemoryStore() if adapter == "memory" else SqliteStore(tmp_path / "b.db")
    old = {f"k{n}": 2**70 for n in range(40)}
    transaction = Transaction._stored(
        "tx-old",
        TransactionKind.ADJUSTMENT,
        (Posting(AccountKey.issuance(COIN), -5), Posting(AccountKey.wallet("alice", COIN), 5)),
        T0,
        "old-key",
        Cause("import", "old"),
        tuple(old.items()),
    )
    with pytest.raises(MetadataTooLargeError):
        Transaction(
            transaction.id,
            transaction.kind,
            transaction.postings,
            T0,
            "old-key",
            transaction.cause,
            old,
        )
    with store.unit_of_work() as uow:
        uow.ledger.record(
            transaction, {AccountKey.issuance(COIN): -5, AccountKey.wallet("alice", COIN): 5}
        )
        uow.commit()
    wallets = Wallets(store, clock=ManualClock(T0))
    found = wallets.transaction("tx-old")
    assert found is not None
    assert found.meta == old
    (entry,) = wallets.history(AccountKey.wallet("alice", COIN)).entries
    assert dict(entry.metadata) == old
    assert wallets.verify().transactions == 1
    if isinstance(store, SqliteStore):
        store.close()


def test_a_lone_surrogate_is_sized_not_refused() -> None:
    assert metadata_pairs({"note": "\ud800"}) == (("note", "\ud800"),)
