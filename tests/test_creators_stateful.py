"""Stateful test of the creator side: gifts (replayed too), store items,
creators' own rates changing, time passing over a holding period,
conversions, payouts and every answer and event of the payout provider,
against a simple model.

After every step: ``verify()`` is clean; each viewer's coins, each
creator's earnings, carry, held units and the money owed to them are what
the model says; what creators were credited plus what they carry is exactly
the sum of their shares of every gift (invariant 3, with carry); and the
creator unit's issuance account is exactly the negated sum of all earnings.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from coinecon import AccountKey, Currency, Fee, Money, Rate
from coinecon.adapters.fake_payouts import Fail, FakePayoutGateway, Raise, Settle, Step
from coinecon.adapters.memory import MemoryStore
from coinecon.adapters.sqlite import SqliteStore
from coinecon.creators.conversion import ConversionRate
from coinecon.creators.payout_gateway import PayoutStatus
from coinecon.creators.payouts import PayoutPolicy
from coinecon.economy import DIAMOND
from coinecon.errors import InsufficientFunds
from coinecon.gifts import Gift, GiftPolicy, StoreItem
from coinecon.recharge.eligibility import EligibilityPolicy
from economy_kit import CATALOG, COIN, Kit

VIEWERS = ("ann", "bob")
CREATORS = ("cat", "dan")
GIFTS = {"rose": 1, "heart": 5, "star": 50, "lion": 299}
SCRIPTS: dict[str, tuple[Step, ...]] = {
    "send": (),
    "settle": (Settle(),),
    "fail": (Fail("closed"),),
    "lost": (Raise(TimeoutError("no answer")),),
    "taken": (Raise(TimeoutError("no answer"), sent=True),),
}
USD = Currency.of("USD")
HOLDING = timedelta(hours=2)


class Creators(RuleBasedStateMachine):
    store_kind = "memory"
    tallies = 1

    payouts = Bundle("payouts")

    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryStore() if self.store_kind == "memory" else self._sqlite()
        self.fake = FakePayoutGateway()
        self.kit = Kit(
            self.store,
            eligibility=EligibilityPolicy(require_age=False),
            catalog=CATALOG.with_item(StoreItem("wave", "Wave", 3)).with_gift(
                Gift("star", "Star", 50)
            ),
            conversion_rate=ConversionRate({"USD": "0.05"}),
            payout_policy=PayoutPolicy(holding=HOLDING, fee=Fee(Rate("1%"))),
            payout_gateway=self.fake,
            gift_policy=GiftPolicy(tallies=self.tallies),
        )
        self.economy = self.kit.economy
        self.fake_clock = self.kit.clock
        for creator in CREATORS:
            self.kit.creator(creator)
        for viewer in VIEWERS:
            self.kit.adult(viewer)  # the lion is for adults
        self.keys = 0
        self.coins = dict.fromkeys(VIEWERS, 0)
        self.shares = dict.fromkeys(CREATORS, Fraction(0))  # sum of coins x rate
        self.credited = dict.fromkeys(CREATORS, 0)
        self.converted = dict.fromkeys(CREATORS, 0)
        self.held: dict[str, list[tuple[datetime, int]]] = {c: [] for c in CREATORS}
        self.owed = dict.fromkeys(CREATORS, 0)  # minor units of USD
        self.rates = dict.fromkeys(CREATORS, Rate("50%"))
        self.returned: set[str] = set()
        # Every run starts with coins to send, and creators owed money.
        for viewer in VIEWERS:
            self.buy(viewer)
            for creator in CREATORS:
                self.send_gift(viewer, creator, "star", 2, replay=False)
        self.time_passes(HOLDING.seconds // 3600 + 1)
        for creator in CREATORS:
            self.convert(creator)

    def _sqlite(self) -> SqliteStore:
        self._directory = tempfile.TemporaryDirectory()
        return SqliteStore(Path(self._directory.name) / "books.db")

    def teardown(self) -> None:
        if isinstance(self.store, SqliteStore):
            self.store.close()
            self._directory.cleanup()

    def key(self, what: str) -> str:
        self.keys += 1
        return f"{what}-{self.keys}"

    def held_now(self, creator: str) -> int:
        now = self.fake_clock.now()
        return sum(units for at, units in self.held[creator] if at > now)

    # -- viewers ------------------------------------------------------------------------

    @rule(viewer=st.sampled_from(VIEWERS))
    def buy(self, viewer: str) -> None:
        self.kit.buy(viewer, "coins_500", key=self.key("buy"))
        self.coins[viewer] += 525

    @rule(
        viewer=st.sampled_from(VIEWERS),
        creator=st.sampled_from(CREATORS),
        gift=st.sampled_from(sorted(GIFTS)),
        quantity=st.integers(1, 3),
        replay=st.booleans(),
    )
    def send_gift(self, viewer: str, creator: str, gift: str, quantity: int, replay: bool) -> None:
        key = self.key("gift")
        coins = GIFTS[gift] * quantity

        def send() -> object:
            return self.economy.send_gift(
                viewer, creator, gift, quantity, context="live", region="US", idempotency_key=key
            )

        if coins > self.coins[viewer]:
            with pytest.raises(InsufficientFunds):
                send()
            return
        receipt = send()
        if replay:
            assert send() == receipt
        self.coins[viewer] -= coins
        share = coins * self.rates[creator].fraction
        self.shares[creator] += share
        earned = receipt.earned.amount  # type: ignore[attr-defined]
        self.credited[creator] += earned
        if earned:
            released = self.economy.payout_policy.released_at(self.fake_clock.now())
            self.held[creator].append((released, earned))

    @rule(viewer=st.sampled_from(VIEWERS), quantity=st.integers(1, 20))
    def buy_sticker(self, viewer: str, quantity: int) -> None:
        key = self.key("item")
        if 3 * quantity > self.coins[viewer]:
            with pytest.raises(InsufficientFunds):
                self.economy.buy_item(viewer, "wave", quantity, region="US", idempotency_key=key)
            return
        self.economy.buy_item(viewer, "wave", quantity, region="US", idempotency_key=key)
        self.coins[viewer] -= 3 * quantity

    # -- creators -----------------------------------------------------------------------

    @rule(creator=st.sampled_from(CREATORS), percent=st.sampled_from((0, 30, 50, 70, 100)))
    def set_rate(self, creator: str, percent: int) -> None:
        rate = Rate.percent(percent)
        self.economy.set_creator_rate(self.key("rate"), creator=creator, rate=rate)
        self.rates[creator] = rate

    @rule(hours=st.integers(1, 40))
    def time_passes(self, hours: int) -> None:
        self.fake_clock.advance(timedelta(hours=hours))

    @rule(creator=st.sampled_from(CREATORS))
    def convert(self, creator: str) -> None:
        free = self.credited[creator] - self.converted[creator] - self.held_now(creator)
        key = self.key("convert")
        if free <= 0:
            with pytest.raises(InsufficientFunds):
                self.economy.convert(creator, "USD", idempotency_key=key)
            return
        units = free if free < 20 else free // 2  # all, or half of it
        receipt = self.economy.convert(
            creator, "USD", units=None if units == free else units, idempotency_key=key
        )
        assert receipt.units == DIAMOND(units)
        assert receipt.money == Money.from_minor(units * 5, USD)  # five cents a unit
        self.converted[creator] += units
        self.owed[creator] += units * 5

    @rule(
        target=payouts,
        creator=st.sampled_from(CREATORS),
        cents=st.integers(1, 300),
        script=st.sampled_from(sorted(SCRIPTS)),
    )
    def request_payout(self, creator: str, cents: int, script: str) -> str:
        key = self.key("payout")
        destination = f"acct-{self.keys}"
        self.fake.script(destination, *SCRIPTS[script])
        amount = Money.from_minor(cents, USD)
        if cents > self.owed[creator]:
            with pytest.raises(InsufficientFunds):
                self.economy.request_payout(
                    creator, amount, destination=destination, idempotency_key=key
                )
            return ""
        payout = self.economy.request_payout(
            creator, amount, destination=destination, idempotency_key=key
        )
        self.owed[creator] -= cents
        if payout.status.returned:
            self.owed[creator] += cents
            self.returned.add(payout.id)
        expected = {
            "send": PayoutStatus.SENT,
            "settle": PayoutStatus.SETTLED,
            "fail": PayoutStatus.FAILED,
            "lost": PayoutStatus.REQUESTED,
            "taken": PayoutStatus.REQUESTED,
        }[script]
        assert payout.status is expected
        return payout.id

    @rule(payout_id=payouts, what=st.sampled_from(("settle", "fail", "reverse")))
    def provider_says(self, payout_id: str, what: str) -> None:
        if not payout_id:
            return
        outcome = self.fake.lookup(payout_id)
        if outcome is None:
            return  # the provider never received it: nothing to say
        status = outcome.status
        if what == "settle" and status is PayoutStatus.SENT:
            event = self.fake.settle(payout_id)
        elif what == "fail" and status is PayoutStatus.SENT:
            event = self.fake.fail(payout_id)
        elif what == "reverse" and status is not PayoutStatus.FAILED:
            event = self.fake.reverse(payout_id)
        else:
            return
        self._apply(self.economy.handle_payout_event(event).payout)
        assert self.economy.handle_payout_event(event).status == "duplicate"

    @rule()
    def reconcile(self) -> None:
        for payout in self.economy.reconcile_payouts(older_than=timedelta(0)):
            self._apply(payout)

    def _apply(self, payout: object) -> None:
        status = payout.status  # type: ignore[attr-defined]
        payout_id = payout.id  # type: ignore[attr-defined]
        if status.returned and payout_id not in self.returned:
            self.returned.add(payout_id)
            self.owed[payout.creator] += payout.amount.minor  # type: ignore[attr-defined]

    # -- invariants --------------------------------------------------------------------

    @invariant()
    def the_books_verify(self) -> None:
        assert self.economy.verify().ok

    @invariant()
    def balances_are_the_models(self) -> None:
        for viewer in VIEWERS:
            assert self.economy.balance(viewer) == COIN(self.coins[viewer])
        for creator in CREATORS:
            profile = self.economy.creator(creator)
            assert self.economy.earnings(creator) == DIAMOND(
                self.credited[creator] - self.converted[creator]
            )
            assert self.credited[creator] + profile.carry == self.shares[creator]
            assert 0 <= profile.carry < self.tallies  # each tally carries less than one
            assert profile.holding(self.fake_clock.now()) == self.held_now(creator)
            owed = self.economy.payable(creator).get("USD", Money.from_minor(0, USD))
            assert owed == Money.from_minor(self.owed[creator], USD)

    @invariant()
    def issuance_mirrors_the_earnings(self) -> None:
        issuance = AccountKey.issuance(DIAMOND)
        issued = self.economy.wallets.balances([issuance])[issuance]
        assert -issued == sum(self.economy.earnings(c).amount for c in CREATORS)


Creators.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestCreatorsInMemory = Creators.TestCase


class CreatorsOnSqlite(Creators):
    store_kind = "sqlite"


CreatorsOnSqlite.TestCase.settings = settings(
    max_examples=15,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestCreatorsOnSqlite = pytest.mark.slow(CreatorsOnSqlite.TestCase)


class CreatorsInTallies(Creators):
    """The same, with each creator's carry and held earnings kept in two tallies (ann's
    gifts in one, bob's in the other, the profile)."""

    tallies = 2


CreatorsInTallies.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestCreatorsInTallies = CreatorsInTallies.TestCase
