"""The storage contract suite against the in-memory adapter."""

from __future__ import annotations

import pytest
from dateutil.relativedelta import relativedelta

from coinecon.adapters.memory import MemoryStore
from coinecon.clock import ManualClock
from coinecon.ledger.journal import Cause
from coinecon.ledger.lots import LotOrigin
from coinecon.ledger.wallets import Wallets
from coinecon.testing.contract import COIN, T0, StoreContract, wallet


class TestMemoryStore(StoreContract):
    def make_store(self) -> MemoryStore:
        return MemoryStore()


def test_a_wallets_open_lots_cost_what_it_holds_not_what_it_ever_held() -> None:
    """Lots emptied are dropped from the wallet's open lots (and expiring ones
    from the list of expiring lots) at the commit that empties them; a
    rollback before that keeps them open."""
    store = MemoryStore()
    wallets = Wallets(store, clock=ManualClock(T0))
    alice = wallet("alice")
    for n in range(300):
        wallets.credit(
            f"c-{n}",
            holder="alice",
            amount=COIN(5),
            origin=LotOrigin.PROMOTION,
            cause=Cause("promo", str(n)),
            expires_in=relativedelta(days=30),
        )
        wallets.spend(f"s-{n}", holder="alice", amount=COIN(5), cause=Cause("gift", str(n)))
    state = store._state
    assert state.lots_by_account[alice] == []
    assert state.expiring == []
    assert len(state.lots) == 300  # kept: lots are read back by id
    wallets.credit(
        "last",
        holder="alice",
        amount=COIN(5),
        origin=LotOrigin.PROMOTION,
        cause=Cause("promo", "last"),
        expires_in=relativedelta(days=30),
    )
    with store.unit_of_work() as uow:
        (lot,) = uow.lots.open_lots(alice)
        uow.lots.update(lot.take(5)[0])
        assert uow.lots.open_lots(alice) == []
        uow.rollback()
        assert uow.lots.open_lots(alice) == [lot]
    assert len(state.lots_by_account[alice]) == len(state.expiring) == 1
    assert wallets.verify().ok


def test_a_long_unit_of_work_on_one_wallet_reads_only_its_open_lots() -> None:
    """In one batch of purchases and spends on one wallet, the lots it empties
    leave its open lots as they are emptied (not only at the commit), so the
    batch costs in proportion to its commands; rolled back, they are back."""
    store = MemoryStore()
    wallets = Wallets(store, clock=ManualClock(T0))
    alice = wallet("alice")
    wallets.credit(
        "first", holder="alice", amount=COIN(5), origin=LotOrigin.BONUS, cause=Cause("b", "0")
    )
    state = store._state

    def batch() -> None:
        with wallets.batch() as bulk:
            for n in range(200):
                bulk.credit(
                    f"c-{n}",
                    holder="alice",
                    amount=COIN(1),
                    origin=LotOrigin.BONUS,
                    cause=Cause("bonus", str(n)),
                )
                bulk.spend(f"s-{n}", holder="alice", amount=COIN(1), cause=Cause("gift", str(n)))
                # The open lots (the first lot's coins are spent first, oldest
                # first, while new lots wait), and one just emptied: not one per lot.
                assert len(state.lots_by_account[alice]) <= 7
            raise RuntimeError("roll it back")

    with pytest.raises(RuntimeError, match="roll it back"):
        batch()
    with store.unit_of_work() as uow:
        assert [lot.remaining for lot in uow.lots.open_lots(alice)] == [5]
        assert len(state.lots_by_account[alice]) == 1
    assert wallets.verify().ok
