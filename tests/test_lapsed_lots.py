"""Lapsed lots: out of the balance and never spent from the instant they
lapse, whether or not the sweep has run; the sweep records the breakage.

A lot lapses when its expiry is at or before now. From then, ``balance()``
and ``lots()`` leave it out and no spend takes from it; every credit and
spend first expires the lapsed lots of its wallet in its own unit of work
(an ``EXPIRY`` transaction per lot, as ``expire()`` records), so the books
always explain the balance and ``verify()`` stays clean.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from coinecon import ManualClock, Money
from coinecon.adapters.memory import MemoryStore
from coinecon.adapters.sqlite import SqliteStore
from coinecon.errors import InsufficientFunds, NaiveDatetimeError, StorageError
from coinecon.ledger.events import OutboxEvent
from coinecon.ledger.journal import AccountKey, Cause, TransactionKind
from coinecon.ledger.lots import Lot, LotOrigin, SpendOrder, plan_spend, take_from_lots
from coinecon.ledger.wallets import CreditResult, Wallets
from coinecon.ports import Store
from coinecon.testing.contract import COIN, T0

DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)
ALICE = AccountKey.wallet("alice", COIN)
STORES = ("memory", "sqlite")


@contextmanager
def open_store(kind: str) -> Iterator[Store]:
    """A fresh, empty store of *kind*, closed (and its file removed) afterwards."""
    if kind == "memory":
        yield MemoryStore()
        return
    with tempfile.TemporaryDirectory(prefix="coinecon-lapsed-") as directory:
        store = SqliteStore(Path(directory) / "coins.db")
        try:
            yield store
        finally:
            store.close()


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    with open_store(request.param) as opened:
        yield opened


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def wallets(store: Store, clock: ManualClock) -> Wallets:
    return Wallets(store, clock=clock)


class _Sink:
    """Collects the events delivered to it."""

    def __init__(self) -> None:
        self.events: list[OutboxEvent] = []

    def deliver(self, event: OutboxEvent) -> None:
        self.events.append(event)


def promote(
    wallets: Wallets, key: str, coins: int, expires_at: datetime, holder: str = "alice"
) -> CreditResult:
    return wallets.credit(
        key,
        holder=holder,
        amount=COIN(coins),
        origin=LotOrigin.PROMOTION,
        cause=Cause("promotion", key),
        expires_at=expires_at,
    )


def grant(wallets: Wallets, key: str, coins: int, holder: str = "alice") -> CreditResult:
    return wallets.credit(
        key,
        holder=holder,
        amount=COIN(coins),
        origin=LotOrigin.BONUS,
        cause=Cause("bonus", key),
    )


def spend(wallets: Wallets, key: str, coins: int, holder: str = "alice") -> list[str]:
    """Spend *coins*; return the ids of the lots taken from."""
    result = wallets.spend(key, holder=holder, amount=COIN(coins), cause=Cause("item", key))
    return [c.lot_id for c in result.consumed]


def stored_lot(wallets: Wallets, lot_id: str) -> Lot:
    with wallets._store.unit_of_work() as uow:
        lot = uow.lots.get(lot_id)
    assert lot is not None
    return lot


def expiries(wallets: Wallets) -> list[tuple[str, int]]:
    """``(lot id, coins)`` of every EXPIRY on alice's wallet, oldest first."""
    page = wallets.history(ALICE, limit=1000, kinds={TransactionKind.EXPIRY})
    return [(e.cause.id, -e.amount) for e in reversed(page.entries)]


def books(wallets: Wallets) -> int:
    """Alice's balance in the books: the sum of her wallet's postings."""
    return wallets.balances([ALICE])[ALICE]


# -- the property ------------------------------------------------------------

credit_plans = st.lists(
    st.tuples(
        st.integers(0, 600),  # minutes after the previous credit
        st.integers(1, 100),  # coins
        st.none() | st.integers(1, 900),  # minutes to expiry, or never
    ),
    min_size=1,
    max_size=6,
)


@pytest.mark.parametrize("kind", STORES)
@settings(max_examples=60, deadline=None)
@given(credited=credit_plans, later=st.integers(0, 1500), data=st.data())
def test_lapsed_lots_are_out_of_the_balance_and_never_spent(
    kind: str, credited: list[tuple[int, int, int | None]], later: int, data: st.DataObject
) -> None:
    """For any lots and any clock time: the balance is the coins of the lots
    not lapsed; a spend takes only from those, and one larger than they hold
    is refused even if lapsed coins would cover it; the books verify clean
    before and after the sweep."""
    with open_store(kind) as store:
        clock = ManualClock(T0)
        wallets = Wallets(store, clock=clock)
        lots: list[tuple[str, int, datetime | None]] = []  # id, coins, expiry
        swept: set[str] = set()
        for n, (after, coins, expires_in) in enumerate(credited):
            at = clock.advance(timedelta(minutes=after))
            # The credit sweeps the wallet's lots lapsed by now.
            swept |= {i for i, _, e in lots if e is not None and e <= at}
            if expires_in is None:
                result = grant(wallets, f"grant-{n}", coins)
                lots.append((result.lot_id, coins, None))
            else:
                expiry = at + timedelta(minutes=expires_in)
                result = promote(wallets, f"promo-{n}", coins, expiry)
                lots.append((result.lot_id, coins, expiry))
            unlapsed = sum(c for i, c, e in lots if i not in swept and (e is None or e > at))
            assert result.balance == COIN(unlapsed)

        now = clock.advance(timedelta(minutes=later))
        live = {i: c for i, c, e in lots if e is None or e > now}
        lapsed = {i: c for i, c, e in lots if i not in live and i not in swept}
        assert wallets.balance("alice", COIN) == COIN(sum(live.values()))
        assert [lot.id for lot in wallets.lots("alice", COIN)] == [i for i, *_ in lots if i in live]
        # Queries write nothing: the books still hold the coins not swept.
        assert books(wallets) == sum(live.values()) + sum(lapsed.values())
        assert wallets.verify().ok

        total = sum(live.values()) + sum(lapsed.values())
        coins = data.draw(st.integers(1, total + 3), label="coins to spend")
        if sum(live.values()) < coins <= total:
            event("refused, though the lapsed coins would cover it")
        if coins > sum(live.values()):
            with pytest.raises(InsufficientFunds) as refused:
                spend(wallets, "spend", coins)
            assert refused.value.balance == sum(live.values())
            # A refused spend keeps nothing, its sweep included.
            assert books(wallets) == total
            assert wallets.balance("alice", COIN) == COIN(sum(live.values()))
            swept_by_expire = {r.lot_id: r.expired.amount for r in wallets.expire()}
            assert swept_by_expire == lapsed
        else:
            taken = spend(wallets, "spend", coins)
            assert set(taken) <= set(live)
            assert wallets.balance("alice", COIN) == COIN(sum(live.values()) - coins)
            assert books(wallets) == sum(live.values()) - coins
            for lot_id in lapsed:
                assert stored_lot(wallets, lot_id).remaining == 0
            assert wallets.expire() == ()  # the spend swept them already
        # Every lot lapsed by now expired whole (nothing spends from a lapsed lot).
        assert dict(expiries(wallets)) == {i: c for i, c, e in lots if e is not None and e <= now}
        report = wallets.verify()
        assert report.ok, str(report)
        assert books(wallets) == wallets.balance("alice", COIN).amount


# -- the instant of lapse ----------------------------------------------------


def test_a_lot_lapses_at_its_expiry_instant(wallets: Wallets, clock: ManualClock) -> None:
    """One microsecond before its expiry a lot counts and is spent first; at
    the instant itself it no longer counts and is never spent."""
    promo = promote(wallets, "promo", 30, T0 + DAY)
    bonus = grant(wallets, "bonus", 50)
    clock.set(T0 + DAY - TICK)
    assert wallets.balance("alice", COIN) == COIN(80)
    assert [lot.id for lot in wallets.lots("alice", COIN)] == [promo.lot_id, bonus.lot_id]
    assert spend(wallets, "s-1", 5) == [promo.lot_id]

    clock.set(T0 + DAY)
    assert wallets.balance("alice", COIN) == COIN(50)
    assert [lot.id for lot in wallets.lots("alice", COIN)] == [bonus.lot_id]
    assert books(wallets) == 75  # not swept yet
    assert expiries(wallets) == []
    with pytest.raises(InsufficientFunds, match="holds 50, 20 short of 70"):
        spend(wallets, "s-2", 70)  # the 25 lapsed coins would have covered it
    assert spend(wallets, "s-3", 10) == [bonus.lot_id]
    assert expiries(wallets) == [(promo.lot_id, 25)]
    assert wallets.balance("alice", COIN) == COIN(40)
    assert books(wallets) == 40
    assert wallets.verify().ok


def test_a_lot_lapses_at_the_instant_whatever_the_offset(
    wallets: Wallets, clock: ManualClock
) -> None:
    """The instant counts, not the wall-clock digits of its offset."""
    tokyo = timezone(timedelta(hours=9))
    promote(wallets, "promo", 30, (T0 + DAY).astimezone(tokyo))
    clock.set(T0 + DAY - TICK)
    assert wallets.balance("alice", COIN) == COIN(30)
    clock.set(T0 + DAY)
    assert wallets.balance("alice", COIN) == COIN(0)


def test_the_spend_plan_skips_lapsed_lots_given_now() -> None:
    """``plan_spend`` and ``take_from_lots`` never take from a lot lapsed at
    *now* (the instant included), whatever the order."""
    promo = Lot.new("promo", ALICE, LotOrigin.PROMOTION, 30, T0, "tx-1", expires_at=T0 + DAY)
    paid = Lot.new("paid", ALICE, LotOrigin.PURCHASE, 20, T0, "tx-2", value=Money("1", "USD"))
    for order in SpendOrder:
        assert [c.lot_id for c in plan_spend([promo, paid], 10, order, now=T0 + DAY)] == ["paid"]
        taken = take_from_lots([promo, paid], 20, order, now=T0 + DAY)
        assert [(lot.id, lot.remaining) for lot, _ in taken] == [("paid", 0)]
        with pytest.raises(InsufficientFunds, match="lots hold 20, 1 short of 21"):
            take_from_lots([promo, paid], 21, order, now=T0 + DAY)
        with pytest.raises(InsufficientFunds, match="lots hold 0, 5 short of 5"):
            plan_spend([promo], 5, order, now=T0 + DAY)
    assert [c.lot_id for c in plan_spend([promo, paid], 10, now=T0 + DAY - TICK)] == ["promo"]
    assert [c.lot_id for c in plan_spend([promo, paid], 10)] == ["promo"]  # no now: no check
    with pytest.raises(NaiveDatetimeError):
        plan_spend([promo, paid], 10, now=datetime(2026, 1, 2))  # noqa: DTZ001 (the point)


# -- the sweep -----------------------------------------------------------------


def test_a_command_sweeps_and_expire_does_not_sweep_again(
    wallets: Wallets, clock: ManualClock
) -> None:
    promo = promote(wallets, "promo", 30, T0 + DAY)
    grant(wallets, "bonus", 50)
    clock.set(T0 + 2 * DAY)
    spend(wallets, "s-1", 10)
    assert expiries(wallets) == [(promo.lot_id, 30)]
    assert stored_lot(wallets, promo.lot_id).remaining == 0
    assert wallets.expire() == ()
    clock.advance(DAY)
    assert wallets.expire() == ()
    assert expiries(wallets) == [(promo.lot_id, 30)]
    assert wallets.balances([AccountKey.expired(COIN)]) == {AccountKey.expired(COIN): 30}
    assert wallets.verify().ok


def test_a_credit_sweeps_its_wallet_first(wallets: Wallets, clock: ManualClock) -> None:
    """The credit's balance leaves the lapsed coins out, and the history
    shows their expiry just before the credit."""
    promo = promote(wallets, "promo", 30, T0 + DAY)
    clock.set(T0 + DAY)
    credit = grant(wallets, "bonus", 50)
    assert credit.balance == COIN(50)
    newest, expiry, _ = wallets.history(ALICE, limit=10).entries
    assert (newest.kind, newest.amount, newest.balance_after) == (TransactionKind.BONUS, 50, 50)
    assert (expiry.kind, expiry.amount, expiry.balance_after) == (TransactionKind.EXPIRY, -30, 0)
    assert expiry.cause == Cause("lot", promo.lot_id)
    assert wallets.verify().ok


def test_a_command_sweeps_only_its_own_wallet(wallets: Wallets, clock: ManualClock) -> None:
    promote(wallets, "alice-promo", 30, T0 + DAY)
    bobs = promote(wallets, "bob-promo", 20, T0 + DAY, holder="bob")
    grant(wallets, "alice-bonus", 5)
    clock.set(T0 + DAY)
    spend(wallets, "s-1", 5)
    bob = AccountKey.wallet("bob", COIN)
    assert wallets.balances([bob]) == {bob: 20}  # bob's lot waits for his next command or expire()
    assert wallets.balance("bob", COIN) == COIN(0)
    (swept,) = wallets.expire()
    assert swept.lot_id == bobs.lot_id
    assert wallets.verify().ok


def test_the_expiry_entry_explains_the_coins(wallets: Wallets, clock: ManualClock) -> None:
    """The EXPIRY transaction is caused by the lot, dated when the sweep ran,
    and names the instant the lot lapsed."""
    tokyo = timezone(timedelta(hours=9))
    promo = promote(wallets, "promo", 30, (T0 + DAY).astimezone(tokyo))
    grant(wallets, "bonus", 50)
    swept_at = clock.set(T0 + 3 * DAY)
    spend(wallets, "s-1", 10)
    spent, expiry = wallets.history(ALICE, limit=2).entries
    assert spent.kind is TransactionKind.SPEND
    assert expiry.kind is TransactionKind.EXPIRY
    assert expiry.sequence < spent.sequence
    assert expiry.cause == Cause("lot", promo.lot_id)
    assert expiry.idempotency_key == f"expiry:{promo.lot_id}"
    assert expiry.occurred_at == swept_at
    assert expiry.metadata == (("lapsed_at", "2026-01-02T00:00:00+00:00"),)
    assert (expiry.amount, expiry.balance_after) == (-30, 50)
    assert expiry.counterparties == (AccountKey.expired(COIN),)
    assert wallets.consumption(expiry.transaction_id)[0].lot_id == promo.lot_id


def test_expire_records_lapsed_at_too(wallets: Wallets, clock: ManualClock) -> None:
    promo = promote(wallets, "promo", 30, T0 + DAY)
    clock.set(T0 + 2 * DAY)
    (result,) = wallets.expire()
    transaction = wallets.transaction(result.transaction_id)
    assert transaction is not None
    assert transaction.meta == {"lapsed_at": (T0 + DAY).isoformat()}
    assert transaction.occurred_at == T0 + 2 * DAY
    assert transaction.cause == Cause("lot", promo.lot_id)


def test_the_sweep_in_a_command_announces_coins_expired(
    wallets: Wallets, clock: ManualClock
) -> None:
    promo = promote(wallets, "promo", 30, T0 + DAY)
    bought = wallets.credit(
        "paid",
        holder="alice",
        amount=COIN(100),
        origin=LotOrigin.PURCHASE,
        cause=Cause("purchase", "paid"),
        value=Money("1.00", "USD"),
        expires_at=T0 + DAY,
    )
    grant(wallets, "bonus", 50)
    sink = _Sink()
    wallets.deliver_events(sink)
    clock.set(T0 + DAY)
    assert wallets.deferred_revenue() == {"USD": Money("1.00", "USD")}  # until the sweep
    spend(wallets, "s-1", 10)
    assert wallets.deliver_events(sink) == 3
    first, second, spent = sink.events[-3:]
    assert [first.type, second.type, spent.type] == [
        "coins.expired",
        "coins.expired",
        "coins.spent",
    ]
    expired = {first.transaction_id: first, second.transaction_id: second}
    entries = wallets.history(ALICE, limit=10, kinds={TransactionKind.EXPIRY}).entries
    assert {e.transaction_id for e in entries} == set(expired)
    assert {e.cause.id for e in entries} == {promo.lot_id, bought.lot_id}
    assert all(event.occurred_at == T0 + DAY for event in sink.events[-3:])
    payloads = sorted(event.payload for event in (first, second))
    assert any(f'"lot_id":"{bought.lot_id}"' in p and '"value":[100,"USD"]' in p for p in payloads)
    assert any(f'"lot_id":"{promo.lot_id}"' in p and '"value":null' in p for p in payloads)
    assert wallets.deferred_revenue() == {"USD": Money("0.00", "USD")}


def test_queries_write_nothing_between_lapse_and_sweep(
    wallets: Wallets, clock: ManualClock
) -> None:
    promote(wallets, "promo", 30, T0 + DAY)
    clock.set(T0 + 2 * DAY)
    before = wallets.verify()
    assert wallets.balance("alice", COIN) == COIN(0)
    assert wallets.lots("alice", COIN) == []
    entries = wallets.history(ALICE).entries
    assert [(e.kind, e.balance_after) for e in entries] == [(TransactionKind.PROMOTION, 30)]
    assert wallets.verify() == before
    assert books(wallets) == 30
    sink = _Sink()
    assert wallets.deliver_events(sink) == 1
    assert [e.type for e in sink.events] == ["coins.credited"]


def test_a_replay_after_the_lapse_sweeps_nothing(wallets: Wallets, clock: ManualClock) -> None:
    """A replayed command returns its first result and writes nothing, its
    wallet's lapsed lots included."""
    promote(wallets, "promo", 30, T0 + DAY)
    grant(wallets, "bonus", 50)
    first = wallets.spend("s-1", holder="alice", amount=COIN(5), cause=Cause("item", "s-1"))
    clock.set(T0 + DAY)
    again = wallets.spend("s-1", holder="alice", amount=COIN(5), cause=Cause("item", "s-1"))
    assert again == first
    assert expiries(wallets) == []
    assert books(wallets) == 75
    assert wallets.balance("alice", COIN) == COIN(50)


def test_a_batch_sweeps_like_single_commands(wallets: Wallets, clock: ManualClock) -> None:
    promo = promote(wallets, "promo", 30, T0 + DAY)
    grant(wallets, "bonus", 50)
    clock.set(T0 + DAY)
    with wallets.batch() as bulk:
        assert bulk.balance("alice", COIN) == COIN(50)
        spend(bulk, "s-1", 10)
        assert bulk.balance("alice", COIN) == COIN(40)
        assert grant(bulk, "bonus-2", 5).balance == COIN(45)
        assert bulk.expire() == ()
    assert expiries(wallets) == [(promo.lot_id, 30)]
    assert wallets.balance("alice", COIN) == COIN(45)
    assert wallets.verify().ok


def test_a_failed_batch_keeps_no_sweep(wallets: Wallets, clock: ManualClock) -> None:
    promote(wallets, "promo", 30, T0 + DAY)
    grant(wallets, "bonus", 50)
    clock.set(T0 + DAY)

    def void_batch() -> None:
        with wallets.batch() as bulk:
            spend(bulk, "s-1", 10)
            with suppress(InsufficientFunds):
                spend(bulk, "s-2", 1000)

    with pytest.raises(StorageError):
        void_batch()
    assert expiries(wallets) == []
    assert books(wallets) == 80
    assert wallets.balance("alice", COIN) == COIN(50)


def test_many_lapsed_lots_are_swept_soonest_first(wallets: Wallets, clock: ManualClock) -> None:
    ids = [promote(wallets, f"promo-{n}", n + 1, T0 + DAY * (5 - n)).lot_id for n in range(5)]
    clock.set(T0 + 10 * DAY)
    assert grant(wallets, "bonus", 7).balance == COIN(7)
    assert expiries(wallets) == [(ids[n], n + 1) for n in reversed(range(5))]
    assert wallets.verify().ok


def test_lots_read_back_from_sqlite_lapse_alike(tmp_path: Path) -> None:
    """After a reopen (nothing held in memory), the lots read back lapse at
    the same instant, and a credit sweeps them from the file."""
    clock = ManualClock(T0)
    with SqliteStore(tmp_path / "coins.db") as store:
        promo = promote(Wallets(store, clock=clock), "promo", 30, T0 + DAY)
    clock.set(T0 + DAY)
    with SqliteStore(tmp_path / "coins.db") as store:
        wallets = Wallets(store, clock=clock)
        assert wallets.balance("alice", COIN) == COIN(0)
        assert grant(wallets, "bonus", 5).balance == COIN(5)
        assert expiries(wallets) == [(promo.lot_id, 30)]
        assert stored_lot(wallets, promo.lot_id).remaining == 0
        assert wallets.verify().ok
