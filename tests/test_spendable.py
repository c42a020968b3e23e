"""A spend reads a wallet's lots in spend order, only as far as its amount is
covered: what a spend reads does not grow with the lots it does not need
(behaviours, not timings: ``benchmarks/scale.py`` times them)."""

from __future__ import annotations

import itertools
import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coinecon.adapters.memory import MemoryStore
from coinecon.adapters.sqlite import SqliteStore, _lots
from coinecon.clock import ManualClock
from coinecon.errors import InvalidTypeError, StorageError, ValidationError
from coinecon.ledger.journal import AccountKey, Cause
from coinecon.ledger.lots import MERGE_WINDOW, Lot, LotOrigin, SpendOrder, covering, merge_candidate
from coinecon.ledger.wallets import Wallets
from coinecon.money.money import Money
from coinecon.ports import Store
from coinecon.testing.contract import COIN, T0

ALICE = AccountKey.wallet("alice", COIN)


def fill(wallets: Wallets, lots: int, coins: int = 1) -> None:
    """Give alice *lots* lots of *coins* coins each, half of them bonus."""
    with wallets.batch() as bulk:
        for n in range(lots):
            bulk.credit(
                f"buy-{n}",
                holder="alice",
                amount=COIN(coins),
                origin=LotOrigin.BONUS if n % 2 else LotOrigin.PURCHASE,
                cause=Cause("purchase", f"p-{n}"),
                value=None if n % 2 else Money.from_minor(coins, "USD"),
            )


@pytest.mark.parametrize("order", list(SpendOrder))
def test_a_small_spend_from_a_wallet_of_many_lots_decodes_a_few(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, order: SpendOrder
) -> None:
    """However many lots the wallet holds, a spend of 3 coins from lots of 1
    decodes the 3 lots it takes from, and at most one more to compare."""
    decoded = 0
    real = _lots._lot  # type: ignore[attr-defined]

    def counting(line: Any, account: AccountKey | None = None) -> Lot:
        nonlocal decoded
        decoded += 1
        return real(line, account)

    for lots in (100, 1_000):
        with SqliteStore(tmp_path / f"{order.value}-{lots}.db") as store:
            wallets = Wallets(store, clock=ManualClock(T0), spend_order=order)
            fill(wallets, lots)
            monkeypatch.setattr(_lots, "_lot", counting)
            decoded = 0
            result = wallets.spend("gift", holder="alice", amount=COIN(3), cause=Cause("gift", "g"))
            monkeypatch.setattr(_lots, "_lot", real)
            assert len(result.consumed) == 3
            # The lots taken, and one more of each other group merged with theirs.
            assert decoded <= 4, (lots, decoded)


def test_spends_read_the_indexes_of_lots_in_order_without_sorting(tmp_path: Path) -> None:
    """Each query a spend makes walks a range of an index in the order it
    reads: no sort, no scan of the wallet's other lots."""
    with SqliteStore(tmp_path / "books.db") as store:
        Wallets(store)  # the file exists, at the latest schema
    with closing(sqlite3.connect(tmp_path / "books.db")) as db:

        def plan(sql: str, *parameters: object) -> str:
            return " ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", parameters))

        oldest = plan(_lots._OLDEST_FIRST, *[""] * 4)
        assert "USING INDEX lots_oldest_first" in oldest
        in_group = plan(_lots._IN_GROUP, *[""] * 4, 0, 1)
        assert "USING INDEX lots_spend_groups" in in_group
        assert in_group.count("<expr>=?") == 2  # the group is a range of the index
        lapsed = plan(_lots._LAPSED, *[""] * 5)
        assert "USING INDEX lots_spend_groups" in lapsed
        assert "<expr><?" in lapsed  # up to now, not the account's lots
        for found in (oldest, in_group, lapsed):
            assert "TEMP B-TREE" not in found


def test_a_spend_of_many_lots_stores_a_small_result_and_replays_whole(store: Store) -> None:
    """The stored result and the event of a spend that takes from 500 lots
    stay small; its replay answers with every lot, read from the store."""
    wallets = Wallets(store, clock=ManualClock(T0))
    fill(wallets, 500, coins=2)
    result = wallets.spend("all", holder="alice", amount=COIN(1_000), cause=Cause("gift", "g"))
    assert len(result.consumed) == 500
    assert result.value == {"USD": Money.from_minor(500, "USD")}
    stored = result.to_json()
    assert len(stored) < 150
    assert '"lots":500' in stored
    replayed = wallets.spend("all", holder="alice", amount=COIN(1_000), cause=Cause("gift", "g"))
    assert replayed == result
    assert wallets.consumption(result.transaction_id) == list(result.consumed)


def test_lapsed_lots_of_a_wallet_of_many_are_swept_by_a_spend(store: Store) -> None:
    """A wallet with more lots than the adapters hold in memory: its lapsed
    lots are found from the index, swept, and never spent."""
    clock = ManualClock(T0)
    wallets = Wallets(store, clock=clock)
    fill(wallets, 40)
    with wallets.batch() as bulk:
        for n in range(3):
            bulk.credit(
                f"promo-{n}",
                holder="alice",
                amount=COIN(5),
                origin=LotOrigin.PROMOTION,
                cause=Cause("promotion", f"p-{n}"),
                expires_in=timedelta(days=1 + n),
            )
    clock.advance(timedelta(days=2))
    result = wallets.spend("gift", holder="alice", amount=COIN(6), cause=Cause("gift", "g"))
    assert [c.amount for c in result.consumed] == [5, 1]  # the promo that lasts, then a lot
    assert wallets.balance("alice", COIN) == COIN(40 + 5 - 6)
    assert wallets.verify().ok


ORIGINS = st.sampled_from(list(LotOrigin))
_WALLETS = itertools.count()


@st.composite
def lot_specs(draw: st.DrawFn) -> tuple[LotOrigin, int, int, int | None]:
    return (
        draw(ORIGINS),
        draw(st.integers(1, 9)),  # coins
        draw(st.integers(0, 5)),  # hours after T0 it was created
        draw(st.none() | st.integers(1, 8)),  # hours after creation it expires
    )


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    # As many wallets of a few lots as of more than the stores hold in memory (32).
    specs=st.integers(1, 64).flatmap(lambda n: st.lists(lot_specs(), min_size=n, max_size=n)),
    takes=st.lists(st.tuples(st.sampled_from(list(SpendOrder)), st.integers(1, 30)), max_size=6),
    now_hours=st.integers(0, 10),
    commit=st.booleans(),
)
def test_spendable_agrees_with_sorting_every_open_lot(
    store: Store,
    specs: list[tuple[LotOrigin, int, int, int | None]],
    takes: list[tuple[SpendOrder, int]],
    now_hours: int,
    commit: bool,
) -> None:
    """Whatever the lots and the spends taken from them (committed or rolled
    back), ``spendable`` answers as :func:`covering` over every open lot
    sorted in the order."""
    holder = f"h-{next(_WALLETS)}"  # a fresh wallet per example
    account = AccountKey.wallet(holder, COIN)
    now = T0 + timedelta(hours=now_hours)
    with store.unit_of_work() as uow:
        for n, (origin, coins, created, expires) in enumerate(specs):
            at = T0 + timedelta(hours=created)
            uow.lots.add(
                Lot.new(
                    f"{holder}-{n}",
                    account,
                    origin,
                    coins,
                    at,
                    f"tx-{n}",
                    value=Money.from_minor(coins, "EUR") if origin is LotOrigin.PURCHASE else None,
                    expires_at=None if expires is None else at + timedelta(hours=expires),
                )
            )
        uow.commit()
    with store.unit_of_work() as uow:
        for order, coins in takes:
            left = coins
            for lot in uow.lots.spendable(account, order, now, coins):
                taken = min(left, lot.remaining)
                uow.lots.update(lot.take(taken)[0])
                left -= taken
        if commit:
            uow.commit()
        else:
            uow.rollback()
        everything = uow.lots.open_lots(account)
        for order in SpendOrder:
            ordered = order.sort(everything)
            for coins in (1, 7, 40, 400):
                assert uow.lots.spendable(account, order, now, coins) == covering(
                    ordered, coins, now
                )


def test_covering_stops_at_the_first_lot_that_covers_and_passes_over_the_rest() -> None:
    """What :func:`covering` returns, pinned directly (the other tests use it
    as their model)."""
    t0 = T0
    wallet = ALICE

    def lot(name: str, coins: int, expires: timedelta | None = None) -> Lot:
        return Lot.new(
            name,
            wallet,
            LotOrigin.BONUS,
            coins,
            t0,
            "tx",
            expires_at=None if expires is None else t0 + expires,
        )

    emptied = lot("emptied", 4).take(4)[0]
    lapses_now = lot("lapses-now", 4, timedelta(hours=1))
    lapses_later = lot("later", 4, timedelta(hours=2))
    lots = [emptied, lapses_now, lot("a", 3), lot("b", 3), lot("c", 3)]
    now = t0 + timedelta(hours=1)  # lapses-now lapses at this instant
    assert [x.id for x in covering(lots, 3, now)] == ["a"]  # exactly covered: one lot
    assert [x.id for x in covering(lots, 4, now)] == ["a", "b"]
    assert [x.id for x in covering(lots, 100, now)] == ["a", "b", "c"]  # all when short
    before = now - timedelta(microseconds=1)
    assert [x.id for x in covering(lots, 4, before)] == ["lapses-now"]
    assert [x.id for x in covering([lapses_later, *lots[2:]], 4, now)] == ["later"]


def test_spend_order_keys_are_the_values_of_the_sqlite_index(tmp_path: Path) -> None:
    """``SpendOrder.key``'s groups are what SQLite's index expressions give
    (the adapters must agree on the order); each group's lots then follow
    their expiry, creation and id."""
    path = tmp_path / "books.db"
    lots = [
        Lot.new(
            f"{origin.value}-{expires}",
            ALICE,
            origin,
            5,
            T0,
            "tx",
            value=Money.from_minor(5, "USD") if origin is LotOrigin.PURCHASE else None,
            expires_at=None if expires is None else T0 + timedelta(days=expires),
        )
        for origin in LotOrigin
        for expires in (None, 3)
    ]
    with SqliteStore(path) as store, store.unit_of_work() as uow:
        for lot in lots:
            uow.lots.add(lot)
        uow.commit()
    with closing(sqlite3.connect(path)) as db:
        groups = dict(
            db.execute(
                "SELECT id, json_array(expires_at IS NULL, origin = 'purchase') FROM lots"
            ).fetchall()
        )
    for lot in lots:
        lasting, bought = (int(v) for v in groups[lot.id].strip("[]").split(","))
        assert SpendOrder.EXPIRING_FIRST.key(lot)[:2] == (lasting, int(bought and lasting))
        assert SpendOrder.PURCHASED_FIRST.key(lot)[:2] == (1 - bought, lasting)
        when = lot.expires_at or lot.created_at
        for order in (SpendOrder.EXPIRING_FIRST, SpendOrder.PURCHASED_FIRST):
            assert order.key(lot)[2:] == (when, lot.created_at, lot.id)
        assert SpendOrder.OLDEST_FIRST.key(lot) == (lot.created_at, lot.id)


def daily(wallets: Wallets, key: str, coins: int = 1, **options: Any) -> str:
    return wallets.credit(
        key,
        holder="alice",
        amount=COIN(coins),
        origin=LotOrigin.PROMOTION,
        cause=Cause("daily", key),
        **options,
    ).lot_id


def test_merged_origins_keep_one_lot_for_many_small_credits(store: Store) -> None:
    """A year of daily rewards is one lot; the ledger still has each credit;
    spends, replays and the books agree."""
    clock = ManualClock(T0)
    wallets = Wallets(store, clock=clock, merge_origins={LotOrigin.PROMOTION})
    first = daily(wallets, "day-0")
    for day in range(1, 365):
        clock.advance(timedelta(days=1))
        assert daily(wallets, f"day-{day}") == first
    assert daily(wallets, "day-5") == first  # a replay
    [lot] = wallets.lots("alice", COIN)
    assert (lot.id, lot.amount, lot.remaining) == (first, 365, 365)
    assert wallets.balance("alice", COIN) == COIN(365)
    wallets.spend("gift", holder="alice", amount=COIN(100), cause=Cause("gift", "g"))
    assert daily(wallets, "day-365") == first
    assert [lot.remaining for lot in wallets.lots("alice", COIN)] == [266]
    history = wallets.history(AccountKey.wallet("alice", COIN), limit=500).entries
    assert len(history) == 367
    assert wallets.verify().ok


def test_what_never_merges(store: Store) -> None:
    """Coins that expire, other origins, purchases (refused as a policy), and
    a lot past the newest few free ones open lots of their own."""
    clock = ManualClock(T0)
    wallets = Wallets(store, clock=clock, merge_origins=[LotOrigin.PROMOTION])
    first = daily(wallets, "a")
    clock.advance(timedelta(seconds=1))  # "newest" is by creation time, then id
    assert daily(wallets, "b", expires_in=timedelta(days=3)) != first
    bonus = wallets.credit(
        "c", holder="alice", amount=COIN(1), origin=LotOrigin.BONUS, cause=Cause("b", "c")
    ).lot_id
    assert bonus != first
    for n in range(8):  # eight newer free lots of another origin: the promotion is past them
        clock.advance(timedelta(seconds=1))
        wallets.credit(
            f"adj-{n}",
            holder="alice",
            amount=COIN(1),
            origin=LotOrigin.ADJUSTMENT,
            cause=Cause("support", f"{n}"),
            metadata={"staff": "sam", "reason": "goodwill"},
        )
    assert daily(wallets, "d") not in (first, bonus)
    assert wallets.verify().ok
    with pytest.raises(ValidationError, match="never merge"):
        Wallets(store, merge_origins={LotOrigin.PURCHASE})
    with pytest.raises(InvalidTypeError):
        Wallets(store, merge_origins=LotOrigin.PROMOTION)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError):
        Wallets(store, merge_origins=["promotion"])  # type: ignore[list-item]
    with pytest.raises(InvalidTypeError):
        Wallets(store, merge_origins=5)  # type: ignore[arg-type]


def test_a_lot_that_disagrees_with_the_balance_is_a_storage_error() -> None:
    """A store whose one lot holds fewer coins than the balance says: the
    spend refuses with StorageError, and nothing is written."""
    store = MemoryStore()
    wallets = Wallets(store, clock=ManualClock(T0))
    lot_id = wallets.credit(
        "k", holder="alice", amount=COIN(5), origin=LotOrigin.BONUS, cause=Cause("b", "1")
    ).lot_id
    with store.unit_of_work() as uow:
        lot = uow.lots.get(lot_id)
        assert lot is not None
        uow.lots.update(lot.take(3)[0])  # behind the service's back
        uow.commit()
    with pytest.raises(StorageError, match="disagree with its balance"):
        wallets.spend("s", holder="alice", amount=COIN(4), cause=Cause("g", "1"))
    assert wallets.balance("alice", COIN) == COIN(5)


def test_merging_into_a_wallet_of_many_lots_and_in_a_batch(store: Store) -> None:
    """A wallet of more lots than the stores hold in memory merges alike, and
    so does a batch (whose commands share one unit of work)."""
    clock = ManualClock(T0)
    wallets = Wallets(store, clock=clock, merge_origins={LotOrigin.PROMOTION})
    fill(wallets, 40)  # purchases and bonuses: never merged into
    clock.advance(timedelta(seconds=1))
    first = daily(wallets, "day-0")
    with wallets.batch() as bulk:
        for day in range(1, 20):
            clock.advance(timedelta(days=1))
            assert daily(bulk, f"day-{day}") == first
    assert daily(wallets, "day-20") == first
    merged = [lot for lot in wallets.lots("alice", COIN) if lot.id == first]
    assert [(lot.amount, lot.remaining) for lot in merged] == [(21, 21)]
    assert len(wallets.lots("alice", COIN)) == 41
    wallets.spend("all", holder="alice", amount=COIN(61), cause=Cause("g", "all"))
    assert wallets.balance("alice", COIN) == COIN(0)
    assert wallets.verify().ok


def test_merge_candidate_looks_among_the_newest_open_lasting_free_lots() -> None:
    """Pinned directly (the contract tests use it as their model)."""

    def lot(name: str, origin: LotOrigin, minutes: int, **options: Any) -> Lot:
        return Lot.new(name, ALICE, origin, 5, T0 + timedelta(minutes=minutes), "tx", **options)

    assert MERGE_WINDOW == 8  # as docs/ledger.md and Wallets' docstring say
    promo = lot("promo", LotOrigin.PROMOTION, 0)
    newer = [lot(f"adj-{n}", LotOrigin.ADJUSTMENT, 10 + n) for n in range(MERGE_WINDOW)]
    assert merge_candidate([promo, *newer[:-1]], LotOrigin.PROMOTION) == promo
    assert merge_candidate([promo, *newer], LotOrigin.PROMOTION) is None  # past the window
    emptied = lot("emptied", LotOrigin.PROMOTION, 50).take(5)[0]
    expiring = lot("expiring", LotOrigin.PROMOTION, 60, expires_at=T0 + timedelta(days=1))
    bought = lot("bought", LotOrigin.PURCHASE, 70, value=Money.from_minor(5, "USD"))
    assert merge_candidate([promo, emptied, expiring, bought], LotOrigin.PROMOTION) == promo
    assert merge_candidate([promo, bought], LotOrigin.PURCHASE) is None
    assert merge_candidate([], LotOrigin.PROMOTION) is None
