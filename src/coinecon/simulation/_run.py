"""The day-by-day simulation: a population driven through the real CoinEconomy."""

from __future__ import annotations

import bisect
import csv
import functools
import gc
import itertools
import json
import math
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol, final

import attrs

from coinecon.adapters.fake_payments import Decline, FakePaymentGateway, Pend
from coinecon.adapters.fake_payouts import FakePayoutGateway
from coinecon.clock import ManualClock
from coinecon.definitions import EconomyDefinition
from coinecon.economy import CoinEconomy
from coinecon.errors import CoineconError, InsufficientFunds, LimitExceeded, ValidationError
from coinecon.ledger.events import OutboxEvent
from coinecon.ledger.journal import AccountKind
from coinecon.money.money import Currency, Money
from coinecon.ports import Store
from coinecon.recharge.purchases import Purchase, PurchaseStatus
from coinecon.simulation._population import Population, Segment

__all__ = ["COMPARE_COLUMNS", "DAY_COLUMNS", "SimulationResult", "compare", "gini", "simulate"]

START = datetime(2026, 1, 5, tzinfo=UTC)
"""The first simulated day (a Monday), at midnight UTC."""

DAY_COLUMNS = (
    "day",
    "currency",
    "purchases",
    "declined",
    "pending",
    "refunds",
    "chargebacks",
    "gross",
    "tax",
    "fees",
    "net",
    "given_back",
    "coins_sold",
    "bonus_coins",
    "price_per_coin",
    "gifts",
    "coins_gifted",
    "creator_units",
    "stickers",
    "deferred_revenue",
    "recognised_revenue",
    "breakage",
    "losses",
    "creator_share",
    "owed_to_creators",
    "paid_out",
    "coins_issued",
    "coins_held",
    "coins_spent",
    "coins_expired",
)
"""The columns of ``days.csv``: one row per day and currency. Flows (what
happened that day) are ``purchases`` to ``stickers`` and ``paid_out``; the rest
are balances at the day's end. Money is in major units, exact. ``fees`` are
the buyer's fees and the platform's costs (processor fees, store
commissions), ``net`` what is left of ``gross`` after tax and fees, and
``given_back`` the money refunds and chargebacks returned."""


class Output(Protocol):
    """Where progress goes: anything with ``write`` and ``flush`` (a terminal)."""

    def write(self, text: str, /) -> object:
        """Write *text*."""
        ...

    def flush(self) -> object:
        """Show what was written."""
        ...


def gini(values: list[int]) -> Fraction:
    """The Gini coefficient of *values* (0: all equal; near 1: one has all), exact."""
    if not values or not sum(values):
        return Fraction(0)
    ordered = sorted(values)
    n = len(ordered)
    weighted = sum((2 * (i + 1) - n - 1) * value for i, value in enumerate(ordered))
    return Fraction(weighted, n * sum(ordered))


@final
@attrs.frozen
class SimulationResult:
    """What a run gives back (its outputs are written as it goes).

    Attributes:
        days: the days simulated.
        commands: the economy commands run (quotes, purchases, balances,
            gifts, items, age attestations, provider events, conversions,
            payouts, expiry sweeps, event deliveries and prunes).
        seconds: how long the run took.
        engine_seconds: of which inside the economy's commands.
        totals: the run's totals, as written to ``summary.json``.
        verified: whether ``verify()`` found the books clean at the end.
        problems: what it found otherwise.
    """

    days: int
    commands: int
    seconds: float
    engine_seconds: float
    totals: dict[str, Any]
    verified: bool
    problems: tuple[str, ...]


VISIT_MINUTES = 23 * 60 + 59
"""A visit comes at a minute of the day (UTC) drawn from 00:01 up to 23:58,
all alike; the day's expiry sweep, payouts and housekeeping run at 23:59."""

RETENTION = timedelta(days=1)
"""How long the simulated host keeps idempotency records and delivered
events before :meth:`~coinecon.ledger.wallets.Wallets.prune` forgets them:
every command of the simulation has a key of its own, used on one day only."""


class _EventCounts:
    """The simulated host's event sink: counts what is delivered, by type."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def deliver(self, event: OutboxEvent) -> None:
        self.counts[event.type] += 1


def _threshold(chance: Fraction) -> float:
    """The float *t* with ``draw < t`` exactly when ``draw < chance``, for
    every draw of :meth:`random.Random.random` (a multiple of 2**-53 in
    [0, 1)): the exact comparison with a :class:`~fractions.Fraction`, at the
    cost of one between floats."""
    if chance >= 1:
        return 1.0
    if chance <= 0:
        return 0.0
    return math.ceil(chance * _DRAWS) / _DRAWS


_DRAWS = 2**53  # the draws of random() are multiples of 1 / _DRAWS


class _Odds:
    """A segment's chances as thresholds for draws (see :func:`_threshold`),
    and its gift mix and package choices made ready for them: the same
    draws decide the same way, without exact arithmetic on each one."""

    __slots__ = (
        "arrival",
        "choices",
        "gift_cumulative",
        "gift_names",
        "gifts_per_visit",
        "may_buy",
        "promotions",
        "segment",
        "sticker",
        "will_buy",
    )

    def __init__(self, segment: Segment) -> None:
        self.segment = segment
        self.arrival = _threshold(segment.arrival)
        self.sticker = _threshold(segment.sticker_rate)
        self.gifts_per_visit = float(segment.gifts_per_visit)
        self.gift_names = [name for name, _ in segment.gift_mix]
        self.gift_cumulative = list(
            itertools.accumulate(float(weight) for _, weight in segment.gift_mix)
        )
        # The most that promotions can raise the chance to buy: all that
        # raise it, stacked.
        boost = Fraction(1)
        for _, factor in segment.promotions:
            boost *= max(factor, Fraction(1))
        self.may_buy = _threshold(segment.purchase * boost)
        self.promotions = dict(segment.promotions)
        # The chance to buy given the promotions a quote applied, by them.
        self.will_buy: dict[tuple[str, ...], float] = {}
        # The packages within budget in a currency, by the currency: (SKU,
        # coins delivered, weight) in the price book's order.
        self.choices: dict[str, list[tuple[str, int, float]]] = {}

    def buy_threshold(self, promotions: tuple[str, ...]) -> float:
        """The threshold of the chance to buy a quote that applied *promotions*."""
        threshold = self.will_buy.get(promotions)
        if threshold is None:
            chance = self.segment.purchase
            for promotion in promotions:
                chance *= self.promotions.get(promotion, Fraction(1))
            threshold = self.will_buy[promotions] = _threshold(chance)
        return threshold


class _Viewer:
    __slots__ = ("attested", "coins", "index", "method", "name", "odds", "region")

    def __init__(self, index: int, odds: _Odds, region: str, method: str) -> None:
        self.index = index
        self.name = f"viewer-{index}"
        self.odds = odds  # and, through it, their segment
        self.region = region
        self.method = method
        self.attested = False
        # Their balance as the last command of theirs left it (None: not known,
        # since something outside their visits may have changed it).
        self.coins: int | None = None


def _pick(rng: random.Random, weights: tuple[tuple[str, Fraction], ...]) -> str:
    names = [name for name, _ in weights]
    cumulative = list(itertools.accumulate(float(weight) for _, weight in weights))
    return names[bisect.bisect_right(cumulative, rng.random() * cumulative[-1])]


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method; means here are small)."""
    if mean <= 0:
        return 0
    limit, product, count = pow(2.718281828459045, -mean), rng.random(), 0
    while product > limit:
        product *= rng.random()
        count += 1
    return count


def _major(minor: int, exponent: int) -> str:
    """*minor* units as an exact amount in major units."""
    return str(Decimal(minor).scaleb(-exponent))


def _check_fits(definition: EconomyDefinition, population: Population) -> None:
    """Refuse a population that names what the economy does not have (a run
    would quietly buy or send nothing of it)."""
    book = definition.price_book
    catalog = definition.catalog
    named = {
        "storefront": (
            {population.storefront},
            {storefront for package in book.packages for storefront, _ in package.prices},
        ),
        "region": ({code for code, _ in population.regions}, {code for code, _ in book.regions}),
        "payment method": (
            {method for method, weight in population.payment_methods if weight},
            {
                entry.method
                for entry in book.fees.payment_methods
                if not entry.storefronts or population.storefront in entry.storefronts
            },
        ),
        "package": (
            {sku for segment in population.segments for sku, _ in segment.packages},
            {package.sku for package in book.packages},
        ),
        "promotion": (
            {promo for segment in population.segments for promo, _ in segment.promotions},
            {promotion.id for promotion in book.promotions},
        ),
        "gift": (
            {gift for segment in population.segments for gift, _ in segment.gift_mix},
            set() if catalog is None else {gift.id for gift in catalog.gifts},
        ),
    }
    for what, (wanted, offered) in named.items():
        missing = sorted(wanted - offered)
        if missing:
            raise ValidationError(
                f"the population names {what} {missing[0]!r}, which the economy does not "
                f"offer (it offers: {', '.join(sorted(offered)) or 'none'})"
            )


class _Run:
    """One simulation: the economy, the population, and the day's counters."""

    def __init__(
        self,
        definition: EconomyDefinition,
        population: Population,
        store: Store,
        seed: int,
    ) -> None:
        self.definition = definition
        self.population = population
        self.seed = seed
        self.store = store
        self.clock = ManualClock(START)
        self.payments = FakePaymentGateway(clock=self.clock)
        self.payouts = FakePayoutGateway(clock=self.clock)
        counter = itertools.count(1)
        self.events = _EventCounts()
        self.economy = CoinEconomy(
            store=store,
            gateway=self.payments,
            payout_gateway=self.payouts,
            clock=self.clock,
            events=self.events,
            new_id=lambda: f"sim-{next(counter):012d}",
            **definition.economy_settings(),
        )
        self.book = definition.price_book
        self.catalog = self.economy.catalog
        _check_fits(definition, population)
        self.engine = 0.0
        self.commands = 0
        rng = random.Random(f"{seed}:population")
        regions = population.regions or tuple(
            (code, Fraction(1)) for code, _ in definition.price_book.regions
        )
        shares = tuple((str(n), s.share) for n, s in enumerate(population.segments))
        odds = [_Odds(segment) for segment in population.segments]
        self.viewers = [
            _Viewer(
                n,
                odds[int(_pick(rng, shares))],
                _pick(rng, regions),
                _pick(rng, population.payment_methods),
            )
            for n in range(population.viewers)
        ]
        exponent = float(population.zipf_exponent)
        self.creator_weights = list(
            itertools.accumulate(1 / (k + 1) ** exponent for k in range(population.creators))
        )
        self.creators = [f"creator-{k}" for k in range(population.creators)]
        self.creator_regions = [_pick(rng, regions) for _ in self.creators]
        self.later: dict[int, list[tuple[str, str]]] = defaultdict(list)  # day: (event, charge)
        self.day_counts: Counter[tuple[str, str]] = Counter()
        self.package_counts: Counter[str] = Counter()
        self.earned: Counter[str] = Counter()
        # Per currency, the money the providers hold by the simulation's own
        # count: taken for purchases less their fees, less given back and
        # paid out.
        self.cash: Counter[str] = Counter()
        self.attempts = itertools.count(1)  # purchase keys: one per attempt
        # The providers' outcomes, as thresholds for draws (see _threshold).
        payments = population.payments
        self.declined = _threshold(payments.decline)
        self.declined_or_pending = _threshold(payments.decline + payments.pending)
        self.refunded = _threshold(payments.refund)
        self.refunded_or_charged_back = _threshold(payments.refund + payments.chargeback)

    # -- the engine, timed -------------------------------------------------------------

    def call(self, command: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return command(*args, **kwargs)
        finally:
            self.engine += time.perf_counter() - started
            self.commands += 1

    # -- set-up ----------------------------------------------------------------------

    def enroll(self) -> None:
        for creator, region in zip(self.creators, self.creator_regions, strict=True):
            self.adult(creator, region)
            self.call(
                self.economy.enroll_creator, f"enroll-{creator}", creator=creator, region=region
            )

    def adult(self, holder: str, region: str) -> None:
        self.call(
            self.economy.attest_age,
            f"age-{holder}",
            holder=holder,
            region=region,
            source="simulation",
            adult=True,
        )

    # -- a day ------------------------------------------------------------------------

    def day(self, day: int) -> None:
        """One day: the providers' events at midnight (UTC), the visits, each
        at its own minute, in the order of their times, then the expiry
        sweep, the weekly payouts and the host's housekeeping at 23:59."""
        midnight = START + timedelta(days=day)
        self.clock.set(midnight)
        for event, charge in self.later.pop(day, []):
            self.provider_event(day, event, charge)
        # Who watches today, and when: each viewer's first two draws of the
        # day (the stream is drawn anew for the visit, which goes on from there).
        visits = []
        for viewer in self.viewers:
            rng = random.Random(f"{self.seed}:{day}:{viewer.index}")
            if rng.random() < viewer.odds.arrival:
                visits.append((rng.randrange(1, VISIT_MINUTES), viewer.index))
        visits.sort()
        for minute, index in visits:
            self.clock.set(midnight + timedelta(minutes=minute))
            rng = random.Random(f"{self.seed}:{day}:{index}")
            rng.random()
            rng.randrange(1, VISIT_MINUTES)
            self.visit(day, self.viewers[index], rng)
        self.clock.set(midnight + timedelta(minutes=VISIT_MINUTES))
        while self.call(self.economy.wallets.expire, limit=1000):
            for viewer in self.viewers:
                viewer.coins = None  # some lots lapsed: read balances again
        if day % 7 == 6:
            self.pay_creators(day)
        self.keep_house()

    def keep_house(self) -> None:
        """What a host does at the end of the day: deliver the outbox's events
        and forget what is kept only to answer retries and to deliver events."""
        while self.call(self.economy.deliver_events, limit=1000):
            pass
        self.call(self.economy.wallets.prune, older_than=self.clock.now() - RETENTION)
        # The fake providers forget what no event of theirs will follow (the
        # charges of refunds and chargebacks to come are kept) and the events
        # they emitted, which the economy has handled: the run's own memory
        # stays flat however many days it runs.
        coming = {charge for events in self.later.values() for _, charge in events}
        for request, _ in list(self.payments.charges()):
            if request.charge_id not in coming:
                self.payments.forget(request.charge_id)
        for payout, _ in list(self.payouts.payouts()):
            if payout.payout_id not in coming:
                self.payouts.forget(payout.payout_id)
        self.payments.events.clear()
        self.payouts.events.clear()

    def visit(self, day: int, viewer: _Viewer, rng: random.Random) -> None:
        odds = viewer.odds
        for _ in range(_poisson(rng, odds.gifts_per_visit)):
            cumulative = odds.gift_cumulative
            gift = self.catalog.get(
                odds.gift_names[bisect.bisect_right(cumulative, rng.random() * cumulative[-1])]
                if cumulative
                else rng.choice([g.id for g in self.catalog.gifts])
            )
            creator = self.creators[
                bisect.bisect_right(self.creator_weights, rng.random() * self.creator_weights[-1])
            ]
            if viewer.coins is None or viewer.coins < gift.price:
                have = self.call(self.economy.balance, viewer.name).amount
                viewer.coins = have
                if have < gift.price:
                    viewer.coins = None
                    if not self.buy(day, viewer, rng, gift.price - have):
                        return
            try:
                receipt = self.call(
                    self.economy.send_gift,
                    viewer.name,
                    creator,
                    gift.id,
                    context=f"day-{day}",
                    region=viewer.region,
                    idempotency_key=f"gift-{day}-{viewer.index}-{rng.random()}",
                )
            except (InsufficientFunds, CoineconError):
                viewer.coins = None
                return  # frozen, not eligible, or still short: the visit ends
            viewer.coins = receipt.balance.amount
            currency = self.book.currency_for(viewer.region).code
            self.day_counts[currency, "gifts"] += 1
            self.day_counts[currency, "coins_gifted"] += receipt.coins.amount
            self.day_counts[currency, "creator_units"] += receipt.earned.amount
            self.earned[creator] += receipt.earned.amount
        if odds.sticker and rng.random() < odds.sticker:
            items = [
                item
                for item in self.catalog.items_offered(viewer.region, self.clock.now())
                if item.consumable
            ]
            if items:
                item = rng.choice(items)
                try:
                    self.call(
                        self.economy.buy_item,
                        viewer.name,
                        item.id,
                        region=viewer.region,
                        idempotency_key=f"item-{day}-{viewer.index}",
                    )
                    viewer.coins = None
                    self.day_counts[self.book.currency_for(viewer.region).code, "stickers"] += 1
                except CoineconError:
                    pass  # too few coins: no sticker

    def choose(self, viewer: _Viewer, rng: random.Random, short: int) -> str | None:
        """The package *viewer* would buy to cover *short* coins, by their
        weights and price per coin: among those within their budget that cover
        it, or, if none does, among all within their budget; ``None`` if none
        is within their budget."""
        currency = self.book.currency_for(viewer.region)
        offered = viewer.odds.choices.get(currency.code)
        if offered is None:
            offered = viewer.odds.choices[currency.code] = self.within_budget(
                viewer.odds.segment, currency
            )
        choices = [(sku, weight) for sku, coins, weight in offered if coins >= short] or [
            (sku, weight) for sku, _, weight in offered
        ]
        if not choices:
            return None
        point = rng.random() * sum(weight for _, weight in choices)
        for name, weight in choices:
            point -= weight
            if point < 0:
                return name
        return choices[-1][0]

    def within_budget(self, segment: Segment, currency: Currency) -> list[tuple[str, int, float]]:
        """The packages *segment* considers that are within its budget in
        *currency*: (SKU, coins delivered, weight), in the price book's order."""
        wanted = dict(segment.packages)
        offered = []
        for package in self.book.packages:
            if wanted and package.sku not in wanted:
                continue
            price = package.find_price(currency, self.population.storefront)
            if price is None or price.amount > segment.budget:
                continue
            per_coin = price.minor / package.delivered_coins
            weight = float(wanted.get(package.sku, Fraction(1))) * per_coin ** -float(
                segment.price_sensitivity
            )
            offered.append((package.sku, package.delivered_coins, weight))
        return offered

    def buy(self, day: int, viewer: _Viewer, rng: random.Random, short: int) -> bool:
        """Maybe buy a package covering *short* coins; whether coins came in."""
        currency = self.book.currency_for(viewer.region)
        storefront = self.population.storefront
        sku = self.choose(viewer, rng, short)
        if sku is None:
            return False
        # Whether they buy: drawn first, so that a quote (the costly part) is
        # made only when a promotion on it could still make them buy.
        draw = rng.random()
        if draw >= viewer.odds.may_buy:
            return False
        if not viewer.attested:
            self.adult(viewer.name, viewer.region)
            viewer.attested = True
        try:
            quote = self.call(
                self.economy.quote,
                viewer.name,
                region=viewer.region,
                storefront=storefront,
                payment_method=viewer.method,
                sku=sku,
            )
        except CoineconError:
            return False  # not sold here, over a limit, not eligible
        if draw >= viewer.odds.buy_threshold(tuple(quote.promotions)):
            return False
        outcome = rng.random()
        if outcome < self.declined:
            self.payments.script(viewer.method, Decline("card_declined"))
        elif outcome < self.declined_or_pending:
            self.payments.script(viewer.method, Pend())
        code = currency.code
        try:
            purchase = self.call(
                self.economy.purchase, quote, viewer.method, f"buy-{next(self.attempts)}"
            )
        except CoineconError:
            return False
        if purchase.status is PurchaseStatus.DECLINED:
            self.day_counts[code, "declined"] += 1
            return False
        if purchase.status is PurchaseStatus.PENDING:
            self.day_counts[code, "pending"] += 1
            self.later[day + 1].append(("settle", purchase.id))
            return False
        self.count_purchase(day, purchase, rng)
        return True

    def count_purchase(self, day: int, purchase: Purchase, rng: random.Random) -> None:
        code = purchase.total.currency.code
        self.day_counts[code, "purchases"] += 1
        self.day_counts[code, "gross"] += purchase.total.minor
        self.day_counts[code, "tax"] += purchase.tax.minor
        self.day_counts[code, "net"] += purchase.value.minor - purchase.platform_costs.minor
        self.day_counts[code, "platform_costs"] += purchase.platform_costs.minor
        self.day_counts[code, "coins_sold"] += purchase.coins.amount
        self.day_counts[code, "bonus_coins"] += purchase.bonus_coins.amount
        self.package_counts[purchase.sku or "custom"] += 1
        draw = rng.random()
        if draw < self.refunded:
            self.later[day + rng.randint(1, 7)].append(("refund", purchase.id))
        elif draw < self.refunded_or_charged_back:
            self.later[day + rng.randint(7, 30)].append(("chargeback", purchase.id))

    def provider_event(self, day: int, event: str, charge: str) -> None:
        if event == "payout":
            self.call(self.economy.handle_payout_event, self.payouts.settle(charge))
            return
        if event == "settle":
            self.call(self.economy.handle_payment_event, self.payments.settle(charge))
            purchase = self.economy.purchase_of(charge)
            self.viewers[int(purchase.holder.removeprefix("viewer-"))].coins = None
            if purchase.status is PurchaseStatus.COMPLETED:
                self.count_purchase(day, purchase, random.Random(f"{self.seed}:{charge}"))
            return
        if event == "refund":
            made = self.payments.refund(charge)
        else:
            made = self.payments.charge_back(charge)
        self.call(self.economy.handle_payment_event, made)
        purchase = self.economy.purchase_of(charge)
        self.viewers[int(purchase.holder.removeprefix("viewer-"))].coins = None
        code = purchase.total.currency.code
        self.day_counts[code, "refunds" if event == "refund" else "chargebacks"] += 1
        if made.amount is not None:
            self.day_counts[code, "given_back"] += made.amount.minor

    def pay_creators(self, day: int) -> None:
        if self.economy.conversion_rate is None:
            return
        minimum = self.economy.payout_policy.minimum
        for creator, region in zip(self.creators, self.creator_regions, strict=True):
            currency = self.book.currency_for(region)
            try:
                self.call(
                    self.economy.convert,
                    creator,
                    currency.code,
                    idempotency_key=f"conv-{day}-{creator}",
                )
            except CoineconError:
                continue  # nothing free to convert, or worth less than a cent
            owed = self.economy.payable(creator).get(currency.code)
            floor = next((m for m in minimum if m.currency == currency), None)
            if owed is None or not owed.minor or (floor is not None and owed < floor):
                continue
            ask = functools.partial(
                self.call, self.economy.request_payout, creator, destination=f"bank-{creator}"
            )
            try:
                payout = ask(owed, idempotency_key=f"payout-{day}-{creator}")
            except LimitExceeded as refused:
                # Over a cap: what the cap leaves, if it is enough to pay out.
                left = refused.remaining
                if (
                    refused.limit != "payout-cap"
                    or not isinstance(left, Money)
                    or not left.minor
                    or (floor is not None and left < floor)
                ):
                    continue
                try:
                    payout = ask(left, idempotency_key=f"payout-{day}-{creator}-capped")
                except CoineconError:
                    continue
            except CoineconError:
                continue  # outside the schedule
            self.day_counts[currency.code, "paid_out"] += payout.amount.minor
            self.day_counts[currency.code, "payout_fees"] += payout.fee.minor
            self.later[day + 1].append(("payout", payout.id))  # it arrives the next day

    # -- metrics -----------------------------------------------------------------------

    def rows(self, day: int) -> Iterator[dict[str, str]]:
        """The day's rows (one per currency), and the day's counters reset."""
        with self.store.unit_of_work() as uow:
            accounts = uow.ledger.accounts()
        balances: Counter[tuple[str, str]] = Counter()
        coins: Counter[str] = Counter()
        unit = self.economy.unit.code
        for account, balance in accounts.items():
            asset = account.asset
            if isinstance(asset, Currency):
                balances[asset.code, account.kind.value] += balance
            elif asset.code == unit:
                coins[account.kind.value] += balance
            # (the creator unit's accounts: the earnings, counted from the receipts)
        currencies = sorted({code for code, _ in balances} | {c for c, _ in self.day_counts})
        for code in currencies:
            counts = self.day_counts
            digits = Currency.of(code).exponent

            def money(minor: int, digits: int = digits) -> str:
                return _major(minor, digits)

            sold = counts[code, "coins_sold"] + counts[code, "bonus_coins"]
            fees = counts[code, "gross"] - counts[code, "tax"] - counts[code, "net"]  # all others
            yield {
                "day": str(day),
                "currency": code,
                "purchases": str(counts[code, "purchases"]),
                "declined": str(counts[code, "declined"]),
                "pending": str(counts[code, "pending"]),
                "refunds": str(counts[code, "refunds"]),
                "chargebacks": str(counts[code, "chargebacks"]),
                "gross": money(counts[code, "gross"]),
                "tax": money(counts[code, "tax"]),
                "fees": money(fees),
                "net": money(counts[code, "net"]),
                "given_back": money(counts[code, "given_back"]),
                "coins_sold": str(counts[code, "coins_sold"]),
                "bonus_coins": str(counts[code, "bonus_coins"]),
                "price_per_coin": ""
                if not sold
                else str(
                    (Decimal(counts[code, "gross"]) / sold)
                    .scaleb(-digits)
                    .quantize(Decimal("0.000001"))
                ),
                "gifts": str(counts[code, "gifts"]),
                "coins_gifted": str(counts[code, "coins_gifted"]),
                "creator_units": str(counts[code, "creator_units"]),
                "stickers": str(counts[code, "stickers"]),
                "deferred_revenue": money(-balances[code, AccountKind.DEFERRED_REVENUE.value]),
                "recognised_revenue": money(-balances[code, AccountKind.REVENUE.value]),
                "breakage": money(-balances[code, AccountKind.BREAKAGE.value]),
                "losses": money(balances[code, AccountKind.LOSSES.value]),
                "creator_share": money(balances[code, AccountKind.CREATOR_SHARE.value]),
                "owed_to_creators": money(-balances[code, AccountKind.CREATOR_PAYABLE.value]),
                "paid_out": money(counts[code, "paid_out"]),
                "coins_issued": str(-coins[AccountKind.ISSUANCE.value]),
                "coins_held": str(coins[AccountKind.WALLET.value]),
                "coins_spent": str(coins[AccountKind.SPENT.value]),
                "coins_expired": str(coins[AccountKind.EXPIRED.value]),
            }
        for code in currencies:  # the money with the providers, by the day's flows
            self.cash[code] += (
                self.day_counts[code, "gross"]
                - self.day_counts[code, "platform_costs"]
                - self.day_counts[code, "given_back"]
                - (self.day_counts[code, "paid_out"] - self.day_counts[code, "payout_fees"])
            )
        self.conserved(day, coins, balances)
        self.day_counts.clear()

    def conserved(self, day: int, coins: Counter[str], balances: Counter[tuple[str, str]]) -> None:
        """Coins issued are held, spent or expired; each currency's money sums
        to zero; and the books' money with the providers (the clearing
        accounts) is what the simulation counted: taken for purchases less
        the providers' fees, less what refunds and chargebacks gave back and
        payouts paid out."""
        issued = -coins[AccountKind.ISSUANCE.value]
        accounted = sum(balance for kind, balance in coins.items() if kind != "issuance")
        if issued != accounted:
            raise ValidationError(
                f"day {day}: {issued} coins issued, but {accounted} are held, spent or expired"
            )
        per_currency: Counter[str] = Counter()
        for (code, _), balance in balances.items():
            per_currency[code] += balance
        for code, total in per_currency.items():
            if total:
                raise ValidationError(f"day {day}: {code} does not balance, off by {total}")
        for code in sorted(set(per_currency) | set(self.cash)):
            books = balances[code, AccountKind.CLEARING.value]
            if books != self.cash[code]:
                raise ValidationError(
                    f"day {day}: the books hold {books} {code} (minor units) with the "
                    f"providers, but {self.cash[code]} were taken (less the providers' fees), "
                    "less given back and paid out"
                )


def _add_up(totals: Counter[str], row: dict[str, str]) -> None:
    """Add a day's *row* to the run's *totals*: its flows summed, its
    balances as they stand at the day's end."""
    code = row["currency"]
    for key in ("purchases", "gifts", "refunds", "chargebacks", "stickers"):
        totals[f"{code}.{key}"] += int(row[key])
    for key in ("gross", "tax", "fees", "net", "given_back", "paid_out"):
        totals[f"{code}.{key}"] += Decimal(row[key])  # type: ignore[assignment]
    for key in ("deferred_revenue", "recognised_revenue", "breakage", "losses"):
        totals[f"{code}.{key}"] = Decimal(row[key])  # type: ignore[assignment]


class _AgedOut:
    """Keeps the cyclic garbage collector off what earlier days left.

    The books of a long run are millions of objects that live to its end;
    each full collection would read them all again. At the end of each day,
    after a collection of what is not frozen (the day's own objects),
    :func:`gc.freeze` sets what is left aside, so that later collections
    read only the objects of the days after. :meth:`done` puts them all
    back. Nothing is frozen unless *wanted*, nor when the process has
    frozen objects of its own (its freezing is left alone) or has turned
    the collector off.
    """

    def __init__(self, wanted: bool) -> None:
        self.active = wanted and gc.isenabled() and gc.get_freeze_count() == 0

    def day_done(self) -> None:
        if self.active:
            gc.collect()
            gc.freeze()

    def done(self) -> None:
        if self.active:
            gc.unfreeze()
            self.active = False


def simulate(
    definition: EconomyDefinition,
    population: Population,
    *,
    days: int,
    seed: int,
    store: Store,
    out: Path,
    progress: Output | None = None,
    gc_freeze: bool = False,
) -> SimulationResult:
    """Run *population* through the economy *definition* defines, on *store*
    (empty), for *days* days, drawing from *seed*; write ``days.csv``,
    ``packages.csv`` and ``summary.json`` into *out* as it goes.

    The same inputs give byte-identical outputs. Each day ends with a check
    that coins and money are conserved (:class:`ValidationError` if not);
    the run ends with ``verify()``.

    With *gc_freeze*, each day ends by setting aside from the cyclic garbage
    collector every object of the process that is left (:func:`gc.freeze`),
    above all the books of a memory store, so that later collections do not
    read them again and again: a long run in memory is a few per cent
    faster. They are given back (:func:`gc.unfreeze`) when the days are
    done, or if the run fails. It freezes *every* object of the process, and
    cyclic garbage among them waits for the end of the run to be collected:
    use it where the process is the simulation's own, as ``coinecon
    simulate`` does, not in a thread of a long-lived service. A process that
    has frozen objects of its own, or turned the collector off, is left as
    it is.
    """
    if type(days) is not int or days < 1:
        raise ValidationError(f"days is a positive int, got {days!r}")
    if type(seed) is not int:
        raise ValidationError(f"seed is an int, got {seed!r}")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    run = _Run(definition, population, store, seed)
    run.enroll()
    with (
        (out / "days.csv").open("w", newline="", encoding="utf-8") as days_file,
        (out / "packages.csv").open("w", newline="", encoding="utf-8") as packages_file,
    ):
        day_rows = csv.DictWriter(days_file, DAY_COLUMNS, lineterminator="\n")
        day_rows.writeheader()
        package_rows = csv.writer(packages_file, lineterminator="\n")
        package_rows.writerow(["day", "sku", "purchases"])
        totals: Counter[str] = Counter()
        ageing = _AgedOut(gc_freeze)
        try:
            for day in range(days):
                run.day(day)
                ageing.day_done()
                for sku, count in sorted(run.package_counts.items()):
                    package_rows.writerow([day, sku, count])
                    totals[f"packages.{sku}"] += count
                run.package_counts.clear()
                for row in run.rows(day):
                    day_rows.writerow(row)
                    _add_up(totals, row)
                if progress is not None:
                    elapsed = time.perf_counter() - started
                    rate = run.commands / elapsed if elapsed else 0.0
                    left = elapsed / (day + 1) * (days - day - 1)
                    progress.write(
                        f"\rday {day + 1}/{days}, {rate:,.0f} commands/s, {left:,.0f} s left "
                    )
                    progress.flush()
        finally:
            ageing.done()
    if progress is not None:
        progress.write("\n")
    report = run.economy.verify()
    seconds = time.perf_counter() - started
    earned = [run.earned[creator] for creator in run.creators]
    summary: dict[str, Any] = {
        "days": days,
        "seed": seed,
        "viewers": population.viewers,
        "creators": population.creators,
        "totals": {key: str(value) for key, value in sorted(totals.items())},
        "creator_earnings": sorted(earned),
        "creator_units_earned": sum(earned),
        "creator_gini": str(round(Decimal(gini(earned).numerator) / gini(earned).denominator, 6))
        if sum(earned)
        else "0",
        "events": dict(sorted(run.events.counts.items())),
        "verified": report.ok,
        "problems": list(report.problems),
    }
    (out / "summary.json").write_text(
        json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return SimulationResult(
        days=days,
        commands=run.commands,
        seconds=seconds,
        engine_seconds=run.engine,
        totals=summary,
        verified=report.ok,
        problems=tuple(report.problems),
    )


COMPARE_COLUMNS = ("metric", "a", "b", "difference", "spread", "interval", "real")
"""The columns of ``compare.csv``: per metric of ``summary.json``'s totals,
the means over the seeds of economy A and B, the mean difference (B - A),
the standard deviation of the per-seed differences, the half-width of a 95 %
interval for the mean difference (Student's t for the seeds less one degrees
of freedom, times the standard error; empty for one seed), and whether that
interval leaves out zero."""

_T975 = tuple(
    Decimal(t)
    for t in (
        "12.706",
        "4.303",
        "3.182",
        "2.776",
        "2.571",
        "2.447",
        "2.365",
        "2.306",
        "2.262",
        "2.228",
        "2.201",
        "2.179",
        "2.160",
        "2.145",
        "2.131",
        "2.120",
        "2.110",
        "2.101",
        "2.093",
        "2.086",
        "2.080",
        "2.074",
        "2.069",
        "2.064",
        "2.060",
        "2.056",
        "2.052",
        "2.048",
        "2.045",
        "2.042",
    )
)
"""Student's t at 97.5 % for 1 to 30 degrees of freedom (to three decimals)."""


def t975(degrees: int) -> Decimal:
    """Student's t at 97.5 % (a two-sided 95 % interval) for *degrees*
    degrees of freedom: from the table to 30, then the value of the next
    smaller tabulated degrees (40, 60, 120: never narrower than it should be)."""
    if degrees < 1:
        raise ValidationError(f"degrees of freedom are at least 1, got {degrees}")
    if degrees <= len(_T975):
        return _T975[degrees - 1]
    for at_least, value in ((120, "1.980"), (60, "2.000"), (40, "2.021")):
        if degrees >= at_least:
            return Decimal(value)
    return _T975[-1]


def compare(
    first: EconomyDefinition,
    second: EconomyDefinition,
    population: Population,
    *,
    days: int,
    seeds: list[int],
    stores: Callable[[], Store],
    out: Path,
    gc_freeze: bool = False,
) -> list[dict[str, str]]:
    """Run *first* (A) and *second* (B) on the same *population* and the same
    draws (common random numbers: each viewer's day has its own stream) for
    every seed of *seeds*, into ``out/a/seed-S`` and ``out/b/seed-S``; write
    and return the differences (``compare.csv``, :data:`COMPARE_COLUMNS`).

    Args:
        first: economy A.
        second: economy B.
        population: who uses them.
        days: how many days each run lasts.
        seeds: one run of each economy per seed.
        stores: makes an empty store for each run.
        out: where the runs' outputs and ``compare.csv`` go.
        gc_freeze: what :func:`simulate` does with it, for each run.
    """
    if not seeds:
        raise ValidationError("compare needs at least one seed")
    differences: dict[str, list[Decimal]] = defaultdict(list)
    means: dict[str, list[list[Decimal]]] = defaultdict(lambda: [[], []])
    for seed in seeds:
        found = []
        for side, definition in (("a", first), ("b", second)):
            result = simulate(
                definition,
                population,
                days=days,
                seed=seed,
                store=stores(),
                out=out / side / f"seed-{seed}",
                gc_freeze=gc_freeze,
            )
            found.append({k: Decimal(v) for k, v in result.totals["totals"].items()})
        for key in sorted(set(found[0]) | set(found[1])):
            a, b = found[0].get(key, Decimal(0)), found[1].get(key, Decimal(0))
            differences[key].append(b - a)
            means[key][0].append(a)
            means[key][1].append(b)
    rows = []
    count = len(seeds)
    for key, values in sorted(differences.items()):
        mean = sum(values, Decimal(0)) / count
        spread = (
            (sum(((v - mean) ** 2 for v in values), Decimal(0)) / (count - 1)).sqrt()
            if count > 1
            else Decimal(0)
        )
        interval = t975(count - 1) * spread / Decimal(count).sqrt() if count > 1 else None
        rows.append(
            {
                "metric": key,
                "a": _short(sum(means[key][0], Decimal(0)) / count),
                "b": _short(sum(means[key][1], Decimal(0)) / count),
                "difference": _short(mean),
                "spread": _short(spread),
                "interval": "" if interval is None else _short(interval),
                "real": "" if interval is None else str(abs(mean) > interval).lower(),
            }
        )
    out.mkdir(parents=True, exist_ok=True)
    with (out / "compare.csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, COMPARE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _short(value: Decimal) -> str:
    """*value* to 4 decimal places (means and spreads are not money)."""
    return str(value.quantize(Decimal("0.0001")))
