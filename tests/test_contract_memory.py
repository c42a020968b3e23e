"""The storage contract suite against the in-memory adapter."""

from __future__ import annotations

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
