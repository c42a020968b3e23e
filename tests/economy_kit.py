"""A small economy for the recharge tests: a book, a clock, a fake provider.

Not a test module: test modules import it (``tests/`` is on pytest's path).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from coinecon import (
    BorneBy,
    CoinPackage,
    Fee,
    FeeSchedule,
    ManualClock,
    Money,
    PaymentMethodFee,
    PriceBook,
    Promotion,
    PromotionKind,
    Rate,
    TaxMode,
    TaxRule,
    Unit,
)
from coinecon.adapters.fake_payments import FakePaymentGateway
from coinecon.adapters.fake_payouts import FakePayoutGateway
from coinecon.creators import RevenueShare
from coinecon.creators.conversion import ConversionRate
from coinecon.creators.payouts import PayoutPolicy
from coinecon.economy import CoinEconomy
from coinecon.gifts import Gift, GiftCatalog, GiftPolicy
from coinecon.ledger.events import OutboxEvent
from coinecon.ports import Store
from coinecon.recharge import EligibilityPolicy, LimitPolicy

COIN = Unit("COIN")
T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)
BIRTHDAY = date(1990, 5, 17)


def book(*, welcome: bool = False) -> PriceBook:
    """Three packages (the bigger ones with bonus coins), a card fee the
    buyer pays, an app-store commission, and US sales tax added on top."""
    packages = [
        CoinPackage(
            f"coins_{coins}",
            coins,
            {"web": [Money(price, "USD"), Money(price, "EUR")], "ios": [Money(price, "USD")]},
            bonus_coins=bonus,
        )
        for coins, bonus, price in ((100, 0, "0.99"), (500, 25, "4.99"), (1_000, 100, "9.99"))
    ]
    fees = FeeSchedule(
        payment_methods=[
            PaymentMethodFee(
                "card",
                Fee(Rate("2.9%"), fixed=[Money("0.30", "USD"), Money("0.30", "EUR")]),
            ),
            PaymentMethodFee("wallet", Fee(Rate("1%")), borne_by=BorneBy.BUYER),
        ],
        store_commissions={"ios": Rate("30%")},
        taxes=[TaxRule("US", Rate("8.875%"), TaxMode.EXCLUSIVE, label="sales tax")],
    )
    promotions = (
        [Promotion("welcome", PromotionKind.FIRST_PURCHASE_BONUS, bonus_coins=50)]
        if welcome
        else []
    )
    return PriceBook(
        regions={"US": "USD", "FR": "EUR", "KR": "USD"},
        packages=packages,
        fees=fees,
        promotions=promotions,
    )


CATALOG = GiftCatalog(
    [
        Gift("rose", "Rose", 1, display={"animation": "rose.webp", "kind": "sticker"}),
        Gift("heart", "Heart", 5),
        Gift("lion", "Lion", 299, regions={"US", "FR"}, min_age=18),
    ]
)
"""The gifts the kit's economy offers: a one-coin rose, a heart, and a lion
for adults in the US and France."""


class Sink:
    """An event sink that keeps what it is given."""

    def __init__(self) -> None:
        self.events: list[OutboxEvent] = []

    def deliver(self, event: OutboxEvent) -> None:
        self.events.append(event)

    def types(self) -> list[str]:
        return [event.type for event in self.events]


class Kit:
    """An economy on *store* with its clock, fake provider and sink."""

    def __init__(
        self,
        store: Store,
        *,
        eligibility: EligibilityPolicy | None = None,
        limits: LimitPolicy | None = None,
        welcome: bool = False,
        bonus_expiry: timedelta | None = None,
        catalog: GiftCatalog | None = None,
        revenue_share: RevenueShare | None = None,
        gift_policy: GiftPolicy | None = None,
        conversion_rate: ConversionRate | None = None,
        payout_policy: PayoutPolicy | None = None,
        payout_gateway: FakePayoutGateway | None = None,
    ) -> None:
        self.store = store
        self.clock = ManualClock(T0)
        self.gateway = FakePaymentGateway(clock=self.clock)
        self.sink = Sink()
        self.economy = CoinEconomy(
            price_book=book(welcome=welcome),
            store=store,
            gateway=self.gateway,
            events=self.sink,
            clock=self.clock,
            eligibility=eligibility
            if eligibility is not None
            else EligibilityPolicy(age_of_majority={"KR": 19}),
            limits=limits,
            bonus_expiry=bonus_expiry,
            catalog=catalog if catalog is not None else CATALOG,
            revenue_share=revenue_share,
            gift_policy=gift_policy,
            conversion_rate=conversion_rate,
            payout_policy=payout_policy,
            payout_gateway=payout_gateway,
        )

    def adult(self, holder: str, region: str = "US") -> None:
        self.economy.attest_age(
            f"age-{holder}-{region}",
            holder=holder,
            region=region,
            source="id-check",
            birth_date=BIRTHDAY,
        )

    def creator(self, creator: str = "cat", region: str = "US") -> None:
        """*creator*, of age in *region* and enrolled to receive gifts there."""
        self.adult(creator, region)
        self.economy.enroll_creator(f"enroll-{creator}", creator=creator, region=region)

    def buy(self, holder: str = "alice", sku: str = "coins_500", key: str | None = None) -> None:
        """*holder* buys *sku* with a card the provider approves."""
        quote = self.economy.quote(holder, region="US", sku=sku)
        self.economy.purchase(quote, "pm_card", key or f"buy-{holder}-{sku}-{self.clock.now()}")

    def events(self) -> list[str]:
        """The types of the events delivered since the last call."""
        self.sink.events.clear()
        while self.economy.deliver_events(limit=100):
            pass
        return self.sink.types()
