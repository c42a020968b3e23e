"""The wallet service at its edges: the cases a rewrite could get wrong
without other tests noticing (found by ``python3 tasks.py mutate``).

Limits are checked at the value allowed and the first refused; every refusal
by its error and message, since a later check would often refuse the same
input with another error; defaults (page sizes, sweep and delivery limits)
by what they return.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta

from coinecon import ManualClock, Money
from coinecon.adapters.memory import MemoryStore
from coinecon.adapters.sqlite import SqliteStore
from coinecon.errors import (
    IdempotencyConflict,
    InvalidAmountError,
    InvalidIdentifierError,
    InvalidTypeError,
    StorageError,
    TransferNotAllowed,
    ValidationError,
)
from coinecon.ledger.events import OutboxEvent
from coinecon.ledger.journal import AccountKey, Cause, Posting, PostingNotAllowed, TransactionKind
from coinecon.ledger.lots import LotOrigin, SpendOrder
from coinecon.ledger.wallets import CreditResult, Wallets
from coinecon.testing.contract import COIN, DIAMOND, T0

ALICE = AccountKey.wallet("alice", COIN)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def wallets(clock: ManualClock) -> Wallets:
    return Wallets(MemoryStore(), clock=clock)


def credit(
    wallets: Wallets, key: str, coins: int = 10, holder: str = "alice", **extra: Any
) -> CreditResult:
    arguments: dict[str, Any] = {"origin": LotOrigin.PROMOTION, "cause": Cause("promo", key)}
    arguments.update(extra)
    return wallets.credit(key, holder=holder, amount=COIN(coins), **arguments)


def buy(wallets: Wallets, key: str, coins: int, price: str = "1.00") -> CreditResult:
    return credit(wallets, key, coins, origin=LotOrigin.PURCHASE, value=Money(price, "USD"))


class Collect:
    def __init__(self) -> None:
        self.events: list[OutboxEvent] = []

    def deliver(self, event: OutboxEvent) -> None:
        self.events.append(event)


class TestConstruction:
    def test_the_spend_order_must_be_a_spend_order(self) -> None:
        with pytest.raises(InvalidTypeError, match="spend_order must be a SpendOrder"):
            Wallets(MemoryStore(), spend_order="oldest-first")  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("order", "first"),
        [(SpendOrder.PURCHASED_FIRST, "bought"), (SpendOrder.EXPIRING_FIRST, "bonus")],
    )
    def test_spends_follow_the_spend_order(
        self, clock: ManualClock, order: SpendOrder, first: str
    ) -> None:
        wallets = Wallets(MemoryStore(), clock=clock, spend_order=order)
        lots = {
            "bonus": credit(wallets, "bonus", origin=LotOrigin.BONUS).lot_id,
            "bought": buy(wallets, "bought", 10).lot_id,
        }
        spent = wallets.spend("s1", holder="alice", amount=COIN(4), cause=Cause("item", "i1"))
        assert [(c.lot_id, c.amount) for c in spent.consumed] == [(lots[first], 4)]
        with wallets.batch() as bulk:
            inner = bulk.spend("s2", holder="alice", amount=COIN(4), cause=Cause("item", "i2"))
        assert [(c.lot_id, c.amount) for c in inner.consumed] == [(lots[first], 4)]


class TestCredit:
    def test_a_purchase_needs_a_positive_value(self, wallets: Wallets) -> None:
        for value in (Money("0.00", "USD"), Money("-0.01", "USD"), None):
            with pytest.raises(InvalidAmountError, match="needs the positive money value paid"):
                credit(wallets, "p1", origin=LotOrigin.PURCHASE, value=value)
        assert buy(wallets, "p1", 10, "0.01").balance == COIN(10)

    @pytest.mark.parametrize("coins", [0, -1])
    def test_the_amount_must_be_positive(self, wallets: Wallets, coins: int) -> None:
        with pytest.raises(InvalidAmountError, match=f"amount must be positive, got {coins} COIN"):
            credit(wallets, "c1", coins)
        with pytest.raises(InvalidAmountError, match=f"amount must be positive, got {coins} COIN"):
            wallets.spend("s1", holder="alice", amount=COIN(coins), cause=Cause("item", "i"))

    def test_the_cause_must_be_a_cause(self, wallets: Wallets) -> None:
        with pytest.raises(InvalidTypeError, match="cause must be a Cause"):
            credit(wallets, "c1", cause="promo:c1")
        assert wallets.balance("alice", COIN) == COIN(0)

    def test_expires_in_must_be_a_duration(self, wallets: Wallets) -> None:
        with pytest.raises(InvalidTypeError, match="expires_in must be a relativedelta"):
            credit(wallets, "c1", expires_in=3600)

    def test_coins_may_not_expire_at_the_instant_they_are_credited(self, wallets: Wallets) -> None:
        with pytest.raises(ValidationError, match="the coins would expire at"):
            credit(wallets, "c1", expires_at=T0)
        with pytest.raises(ValidationError, match="the coins would expire at"):
            credit(wallets, "c1", expires_in=timedelta(0))
        later = credit(wallets, "c1", expires_at=T0 + timedelta(microseconds=1))
        assert later.expires_at == T0 + timedelta(microseconds=1)

    def test_another_expiry_under_the_same_key_conflicts(self, wallets: Wallets) -> None:
        first = credit(wallets, "c1", expires_in=timedelta(days=1))
        assert credit(wallets, "c1", expires_in=timedelta(days=1)) == first
        with pytest.raises(IdempotencyConflict):
            credit(wallets, "c1", expires_in=timedelta(days=2))
        with pytest.raises(IdempotencyConflict):
            credit(wallets, "c1", expires_in=relativedelta(days=1))
        with pytest.raises(IdempotencyConflict):
            credit(wallets, "c1", expires_at=T0 + timedelta(days=1))
        with pytest.raises(IdempotencyConflict):
            credit(wallets, "c1")


class TestSpend:
    def test_the_cause_must_be_a_cause(self, wallets: Wallets) -> None:
        credit(wallets, "c1")
        with pytest.raises(InvalidTypeError, match="cause must be a Cause"):
            wallets.spend("s1", holder="alice", amount=COIN(1), cause="item:i1")  # type: ignore[arg-type]
        assert wallets.balance("alice", COIN) == COIN(10)

    def test_also_must_hold_postings(self, wallets: Wallets) -> None:
        credit(wallets, "c1")
        also: list[Any] = [(AccountKey.earnings("bob", DIAMOND), 5)]
        with pytest.raises(InvalidTypeError, match="also must hold Posting values"):
            wallets.spend("s1", holder="alice", amount=COIN(1), cause=Cause("g", "1"), also=also)
        assert wallets.balance("alice", COIN) == COIN(10)

    def test_a_lot_lapses_at_its_expiry_instant(self, wallets: Wallets, clock: ManualClock) -> None:
        buy(wallets, "p1", 100)
        credit(wallets, "promo", 20, expires_in=timedelta(hours=1))
        clock.set(T0 + timedelta(hours=1))
        spent = wallets.spend("s1", holder="alice", amount=COIN(10), cause=Cause("item", "i1"))
        assert spent.balance == COIN(90)
        assert wallets.balances([AccountKey.expired(COIN)]) == {AccountKey.expired(COIN): 20}


class TestExpire:
    def test_the_limit_is_honoured(self, wallets: Wallets, clock: ManualClock) -> None:
        for n in range(3):
            credit(wallets, f"c{n}", holder=f"h{n}", expires_in=timedelta(hours=1))
        clock.advance(timedelta(hours=1))
        assert len(wallets.expire(limit=1)) == 1
        assert len(wallets.expire(limit=2)) == 2
        assert wallets.expire(limit=1) == ()

    @pytest.mark.parametrize("limit", [0, -1, "1"])
    def test_the_limit_must_be_a_positive_int(self, wallets: Wallets, limit: Any) -> None:
        with pytest.raises(InvalidAmountError, match="limit must be a positive int"):
            wallets.expire(limit=limit)

    def test_at_most_1000_lots_by_default(self, wallets: Wallets, clock: ManualClock) -> None:
        with wallets.batch() as bulk:
            for n in range(1001):
                credit(bulk, f"c{n}", 1, holder=f"h{n}", expires_in=timedelta(hours=1))
        clock.advance(timedelta(hours=1))
        assert len(wallets.expire()) == 1000
        assert len(wallets.expire()) == 1

    def test_an_expired_purchase_reports_the_value_left(
        self, wallets: Wallets, clock: ManualClock
    ) -> None:
        bought = credit(
            wallets,
            "p1",
            100,
            origin=LotOrigin.PURCHASE,
            value=Money("1.00", "USD"),
            expires_in=timedelta(days=1),
        )
        wallets.spend("s1", holder="alice", amount=COIN(30), cause=Cause("item", "i1"))
        clock.advance(timedelta(days=1))
        (expired,) = wallets.expire()
        assert (expired.lot_id, expired.expired, expired.value) == (
            bought.lot_id,
            COIN(70),
            Money("0.70", "USD"),
        )
        assert wallets.deferred_revenue() == {"USD": Money("0.00", "USD")}


class TestHistory:
    def test_pages_hold_50_entries_by_default(self, wallets: Wallets) -> None:
        for n in range(51):
            credit(wallets, f"c{n}", 1)
        page = wallets.history(ALICE)
        assert len(page.entries) == 50
        assert page.next_cursor is not None
        rest = wallets.history(ALICE, cursor=page.next_cursor)
        assert (len(rest.entries), rest.next_cursor) == (1, None)

    def test_a_page_that_holds_everything_has_no_next_cursor(self, wallets: Wallets) -> None:
        for n in range(3):
            credit(wallets, f"c{n}", 1)
        page = wallets.history(ALICE, limit=3)
        assert (len(page.entries), page.next_cursor) == (3, None)
        page = wallets.history(ALICE, limit=2)
        assert len(page.entries) == 2
        assert page.next_cursor == str(page.entries[-1].sequence)
        single = wallets.history(ALICE, limit=1)
        assert len(single.entries) == 1

    def test_limits_from_1_to_1000(self, wallets: Wallets) -> None:
        credit(wallets, "c1")
        assert len(wallets.history(ALICE, limit=1000).entries) == 1
        for limit in (0, 1001):
            with pytest.raises(InvalidAmountError, match="limit must be an int from 1 to 1000"):
                wallets.history(ALICE, limit=limit)

    def test_cursors_have_at_most_19_digits(self, wallets: Wallets) -> None:
        credit(wallets, "c1")
        assert wallets.history(ALICE, cursor="1" * 19).entries != ()
        with pytest.raises(InvalidIdentifierError, match="not a history cursor"):
            wallets.history(ALICE, cursor="1" * 20)

    @pytest.mark.parametrize("cursor", ["\u00b2", "\uff11\uff12", "1\u0663", "", "-1", " 1"])
    def test_a_cursor_is_ascii_digits(self, wallets: Wallets, cursor: str) -> None:
        """Other digits (superscripts, full-width, Arabic-Indic) are no cursor
        the service gave out: refused with the typed error, never a bare
        ValueError from int() nor read as a number."""
        credit(wallets, "c1")
        with pytest.raises(InvalidIdentifierError, match="not a history cursor"):
            wallets.history(ALICE, cursor=cursor)

    def test_the_account_must_be_an_account_key(self, wallets: Wallets) -> None:
        with pytest.raises(InvalidTypeError, match="account must be an AccountKey"):
            wallets.history("wallet:alice:COIN")  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "kinds", [["purchase"], [TransactionKind.PURCHASE, "spend"], ["spend", "purchase"]]
    )
    def test_kinds_must_be_transaction_kinds(self, wallets: Wallets, kinds: list[Any]) -> None:
        with pytest.raises(InvalidTypeError, match="kinds must be TransactionKind values"):
            wallets.history(ALICE, kinds=kinds)


class TestDeliverEvents:
    def test_at_most_100_events_by_default(self, wallets: Wallets) -> None:
        with wallets.batch() as bulk:
            for n in range(101):
                credit(bulk, f"c{n}", 1)
        sink = Collect()
        assert wallets.deliver_events(sink) == 100
        assert wallets.deliver_events(sink) == 1
        assert len(sink.events) == 101

    def test_the_limit_is_honoured(self, wallets: Wallets) -> None:
        for n in range(3):
            credit(wallets, f"c{n}", 1)
        sink = Collect()
        assert wallets.deliver_events(sink, limit=1) == 1
        assert wallets.deliver_events(sink, limit=2) == 2
        assert wallets.deliver_events(sink, limit=1) == 0

    @pytest.mark.parametrize("limit", [0, -1, "1", True])
    def test_the_limit_must_be_a_positive_int(self, wallets: Wallets, limit: Any) -> None:
        with pytest.raises(InvalidAmountError, match="limit must be a positive int"):
            wallets.deliver_events(Collect(), limit=limit)


def test_postings_in_also_are_kept(wallets: Wallets) -> None:
    credit(wallets, "c1")
    earnings = AccountKey.earnings("bob", DIAMOND)
    also = (Posting(AccountKey.issuance(DIAMOND), -5), Posting(earnings, 5))
    spent = wallets.spend(
        "g1",
        holder="alice",
        amount=COIN(10),
        cause=Cause("gift", "g1"),
        kind=TransactionKind.GIFT,
        also=also,
    )
    assert spent.balance == COIN(0)
    assert wallets.balances([earnings]) == {earnings: 5}


class TestAlsoLegs:
    """A spend's ``also`` legs may not post to any wallet: coins leave a
    wallet only by its holder's spend, with its lots."""

    def test_on_the_spenders_own_wallet_in_another_unit(self, wallets: Wallets) -> None:
        credit(wallets, "c1")
        wallets.credit(
            "d1", holder="alice", amount=DIAMOND(5), origin=LotOrigin.PROMOTION,
            cause=Cause("promo", "d1"),
        )  # fmt: skip
        with pytest.raises(PostingNotAllowed, match="also legs may not post to a wallet"):
            wallets.spend(
                "s1",
                holder="alice",
                amount=COIN(1),
                cause=Cause("gift", "s1"),
                also=(
                    Posting(AccountKey.wallet("alice", DIAMOND), -5),
                    Posting(AccountKey.spent(DIAMOND), 5),
                ),
            )
        assert wallets.balance("alice", DIAMOND) == DIAMOND(5)
        assert wallets.balance("alice", COIN) == COIN(10)

    def test_on_another_holders_wallet(self, wallets: Wallets) -> None:
        credit(wallets, "c1")
        credit(wallets, "c2", holder="bob")
        with pytest.raises(TransferNotAllowed, match="also legs may not post to a wallet"):
            wallets.spend(
                "s1",
                holder="alice",
                amount=COIN(1),
                cause=Cause("gift", "s1"),
                also=(
                    Posting(AccountKey.wallet("bob", COIN), -10),
                    Posting(AccountKey.spent(COIN), 10),
                ),
            )
        assert wallets.balance("bob", COIN) == COIN(10)
        assert wallets.verify().ok


def test_a_cursor_is_at_most_the_largest_sequence(wallets: Wallets) -> None:
    credit(wallets, "c1")
    largest = str(2**63 - 1)
    assert len(wallets.history(ALICE, cursor=largest).entries) == 1
    with pytest.raises(InvalidIdentifierError, match="not a history cursor"):
        wallets.history(ALICE, cursor=str(2**63))


class TestOnAStoreThatRunsCommands:
    """On a store with ``run`` (SQLite with group commit) the commands go
    through it: their results come back, and the wallets a batch is open on
    still refuse to be used inside it."""

    def test_results_come_back(self, tmp_path: Path, clock: ManualClock) -> None:
        wallets = Wallets(SqliteStore(tmp_path / "coins.db"), clock=clock)
        result = credit(wallets, "c1")
        assert result.balance == COIN(10)
        spent = wallets.spend("s1", holder="alice", amount=COIN(4), cause=Cause("x", "1"))
        assert spent.balance == COIN(6)

    def test_the_wallets_of_an_open_batch_refuse(self, tmp_path: Path, clock: ManualClock) -> None:
        wallets = Wallets(SqliteStore(tmp_path / "coins.db"), clock=clock)
        with pytest.raises(StorageError, match="this thread has a batch open"), wallets.batch():
            credit(wallets, "c1")
        assert wallets.balance("alice", COIN) == COIN(0)
