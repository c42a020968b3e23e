"""Checking a price book: every problem at once, each saying where it is."""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction
from itertools import pairwise
from typing import TYPE_CHECKING

from coinecon.errors import PricingProblemError
from coinecon.money.money import Currency, Money
from coinecon.pricing.custom import CustomAmounts, TierMode
from coinecon.pricing.fees import Fee
from coinecon.pricing.packages import CoinPackage
from coinecon.pricing.problems import RULES, Problem
from coinecon.pricing.promotions import StackingPolicy

if TYPE_CHECKING:
    from coinecon.pricing.book import PriceBook

__all__ = ["check_book"]


def check_book(book: PriceBook) -> tuple[Problem, ...]:
    """Return every problem in *book*, errors and warnings, in a stable order,
    each with its rule's default severity (no override applied).

    See :meth:`PriceBook.check` for what is checked, and
    :data:`~coinecon.pricing.problems.RULES` for the rules.
    """
    return (
        *_regions(book),
        *_packages(book),
        *(_custom(book.custom) if book.custom is not None else ()),
        *_packages_against_custom(book),
        *_promotions(book),
        *_fees(book),
    )


def _problem(code: str, where: str, message: str) -> Problem:
    """A problem found by rule *code*, at the rule's default severity."""
    return Problem(RULES[code].severity, where, message, code=code)


def _market(currency: Currency, storefront: str) -> str:
    return f"{currency.code}/{storefront}"


def _regions(book: PriceBook) -> list[Problem]:
    if not book.regions:
        return [_problem("R001", "regions", "the book sells in no region")]
    problems = []
    priced = {price.currency for package in book.packages for _, price in package.prices}
    if book.custom is not None:
        priced |= {price.currency for _, price in book.custom.base_prices}
    sold = {currency for _, currency in book.regions}
    for region, currency in book.regions:
        if currency not in priced:
            problems.append(
                _problem(
                    "R002",
                    f"region {region}",
                    f"sells in {currency.code}, but nothing has a {currency.code} price",
                )
            )
    problems.extend(
        _problem(
            "R003",
            f"currency {currency.code}",
            f"prices are set in {currency.code}, but no region sells in it",
        )
        for currency in sorted(priced - sold, key=lambda c: c.code)
    )
    return problems


_Entry = tuple[CoinPackage, Money]
_DEARER = "P001"  # a smaller package costs more than a bigger one
_PER_COIN = "P002"  # a bigger package costs more per coin than a smaller one


def _packages(book: PriceBook) -> list[Problem]:
    """The packages of each market (currency and storefront) that cost more
    than a bigger one (P001), or more per coin than a smaller one (P002).

    Each pair of neighbouring sizes is compared (the dearest of the smaller
    size against the cheapest of the bigger one), then the worst pair of the
    market is added if it is not among them: problems grow with the number
    of packages, not with its square. A market is clean exactly when every
    pair of its packages is in order, so a book with any pair out of order
    has a problem.
    """
    markets: dict[tuple[str, str], list[_Entry]] = defaultdict(list)
    for package in book.packages:
        for storefront, price in package.prices:
            markets[price.currency.code, storefront].append((package, price))
    problems: list[Problem] = []
    for (currency, storefront), entries in sorted(markets.items()):
        market = f"{currency}/{storefront}"
        sizes: dict[int, list[_Entry]] = defaultdict(list)
        for entry in sorted(entries, key=lambda e: (e[0].delivered_coins, e[1].minor, e[0].sku)):
            sizes[entry[0].delivered_coins].append(entry)
        found: list[tuple[str, _Entry, _Entry]] = []
        for smaller, bigger in pairwise(sizes.values()):
            dearest, cheapest = max(smaller, key=_price), min(bigger, key=_price)
            if dearest[1] > cheapest[1]:
                found.append((_DEARER, dearest, cheapest))
            lowest, highest = min(smaller, key=_per_coin), max(bigger, key=_per_coin)
            if _per_coin(highest) > _per_coin(lowest):
                found.append((_PER_COIN, lowest, highest))
        for worst in _worst_pairs(list(sizes.values())):
            if worst not in found:
                found.append(worst)
        problems += [_package_problem(code, few, many, market) for code, few, many in found]
    return problems


def _price(entry: _Entry) -> tuple[int, str]:
    return entry[1].minor, entry[0].sku


def _per_coin(entry: _Entry) -> Fraction:
    return Fraction(entry[1].minor, entry[0].delivered_coins)


def _worst_pairs(sizes: list[list[_Entry]]) -> list[tuple[str, _Entry, _Entry]]:
    """The pair of a market whose smaller package costs the most more than
    the bigger one, and the pair whose bigger package costs the most times
    as much per coin as the smaller one; in one pass, sizes ascending."""
    worst: list[tuple[str, _Entry, _Entry]] = []
    dearest: _Entry | None = None  # the dearest package of the sizes so far
    lowest: _Entry | None = None  # the lowest per coin of the sizes so far
    drop: tuple[int, _Entry, _Entry] | None = None
    rise: tuple[Fraction, _Entry, _Entry] | None = None
    for size in sizes:
        for entry in size:
            if dearest is not None and (
                drop is None or dearest[1].minor - entry[1].minor > drop[0]
            ):
                drop = (dearest[1].minor - entry[1].minor, dearest, entry)
            if lowest is not None and (
                rise is None or _per_coin(entry) / _per_coin(lowest) > rise[0]
            ):
                rise = (_per_coin(entry) / _per_coin(lowest), lowest, entry)
        top, bottom = max(size, key=_price), min(size, key=_per_coin)
        if dearest is None or _price(top) > _price(dearest):
            dearest = top
        if lowest is None or _per_coin(bottom) < _per_coin(lowest):
            lowest = bottom
    if drop is not None and drop[0] > 0:
        worst.append((_DEARER, drop[1], drop[2]))
    if rise is not None and rise[0] > 1:
        worst.append((_PER_COIN, rise[1], rise[2]))
    return worst


def _package_problem(code: str, few: _Entry, many: _Entry, market: str) -> Problem:
    (small, small_price), (big, big_price) = few, many
    if code == _DEARER:
        return _problem(
            _DEARER,
            f"package {small.sku}, {market}",
            f"costs {small_price} for {small.delivered_coins} coins, more than package "
            f"{big.sku} at {big_price} for {big.delivered_coins} coins",
        )
    return _problem(
        _PER_COIN,
        f"package {big.sku}, {market}",
        f"costs more per coin ({big_price} for {big.delivered_coins} coins) "
        f"than package {small.sku} ({small_price} for {small.delivered_coins} coins)",
    )


def _custom(custom: CustomAmounts) -> list[Problem]:
    problems = [
        _problem(_band_code(message), "custom amounts, tiers", message)
        for message in custom.band_problems(custom.tier_start, custom.max_coins)
    ]
    for lower, upper in pairwise(custom.tiers):
        if upper.discount < lower.discount:
            problems.append(
                _problem(
                    "C003",
                    f"custom amounts, tier {upper}",
                    f"the per-coin price rises with quantity: its discount {upper.discount} "
                    f"is below the {lower.discount} of tier {lower}",
                )
            )
    for currency, storefront in custom.markets():
        problems.extend(_custom_market(custom, currency, storefront))
    return problems


def _band_code(message: str) -> str:
    """C002 for an overlap of tiers, C001 for a gap, as
    :meth:`~coinecon.pricing.custom.CustomAmounts.band_problems` words them
    (the tests make both, so a change of wording cannot go unnoticed)."""
    return "C002" if " overlap at " in message else "C001"


def _custom_market(custom: CustomAmounts, currency: Currency, storefront: str) -> list[Problem]:
    market = _market(currency, storefront)
    base = custom.find_base_price(currency, storefront)
    if base is None:  # pragma: no cover (markets() lists only priced markets)
        return []
    problems = [
        _problem(
            "C004",
            f"custom amounts, {market}",
            f"{coins} coins cost less than one minor unit of {currency.code}: "
            "the price is not representable",
        )
        for coins in _cheapest_quantities(custom)
        if not custom.band_problems(1 if custom.mode is TierMode.GRADUATED else coins, coins)
        and custom.rounding.round(custom.exact_total(coins, base)) <= 0
    ]
    if custom.mode is TierMode.GRADUATED:
        return problems  # each band adds a positive amount: the total only grows
    for tier in custom.tiers:
        boundary = tier.min_coins
        if not custom.min_coins < boundary <= custom.max_coins:
            continue
        before = _tier_price(custom, boundary - 1, base, storefront)
        after = _tier_price(custom, boundary, base, storefront)
        if before is None or after is None:
            continue  # a gap or an overlap: reported above
        if after < before:
            problems.append(
                _problem(
                    "C005",
                    f"custom amounts, {market}, {boundary} coins",
                    f"the total drops from {before} for {boundary - 1} coins "
                    f"to {after} for {boundary} coins",
                )
            )
    return problems


def _tier_price(custom: CustomAmounts, coins: int, base: Money, storefront: str) -> Money | None:
    """The price of *coins* after the tier discount in volume mode; zero where
    it rounds to nothing (reported on its own), ``None`` where the tiers cannot
    price it (a gap or an overlap, reported on its own)."""
    if custom.band_problems(coins, coins):
        return None
    if custom.rounding.round(custom.exact_total(coins, base)) <= 0:
        return base.currency.zero()
    return custom.price(coins, base.currency, storefront)[1]


def _cheapest_quantities(custom: CustomAmounts) -> list[int]:
    """The quantities where the price is lowest for its tier: ``min_coins``, and
    in volume mode each tier start above it, where a bigger discount begins.

    Within one tier the exact total grows with the quantity, and rounding keeps
    that order, so if none of these rounds to zero, no quantity does. (In
    graduated mode the total grows everywhere.)
    """
    if custom.mode is TierMode.GRADUATED:
        return [custom.min_coins]
    starts = {
        t.min_coins for t in custom.tiers if custom.min_coins < t.min_coins <= custom.max_coins
    }
    return [custom.min_coins, *sorted(starts)]


def _packages_against_custom(book: PriceBook) -> list[Problem]:
    custom = book.custom
    if custom is None:
        return []
    problems = []
    for package in book.packages:
        coins = package.delivered_coins
        if not custom.min_coins <= coins <= custom.max_coins:
            continue
        for storefront, price in package.prices:
            if custom.find_base_price(price.currency, storefront) is None:
                continue
            try:
                same = custom.price(coins, price.currency, storefront)[1]
            except PricingProblemError:
                continue  # reported by the custom-amount checks
            if price > same:
                problems.append(
                    _problem(
                        "P003",
                        f"package {package.sku}, {_market(price.currency, storefront)}",
                        f"costs {price} for {coins} coins; the same custom amount costs {same}",
                    )
                )
    return problems


def _promotions(book: PriceBook) -> list[Problem]:
    problems = []
    sold_regions = {region for region, _ in book.regions}
    most = max(
        [p.coins for p in book.packages]
        + ([book.custom.max_coins] if book.custom is not None else []),
        default=0,
    )
    for promotion in book.promotions:
        where = f"promotion {promotion.id}"
        start, end = promotion.start, promotion.end
        if start is not None and end is not None and end <= start:
            problems.append(
                _problem("M001", where, f"its window [{start}, {end}) is empty: it never applies")
            )
        elif promotion.first_window_start() is None:
            problems.append(
                _problem(
                    "M002",
                    where,
                    "its recurrence has no occurrence inside its window: it never applies",
                )
            )
        if promotion.stacking_group is not None and book.stacking is StackingPolicy.BEST_SINGLE:
            problems.append(
                _problem(
                    "M003",
                    where,
                    f"stacking group {promotion.stacking_group!r} has no effect: the book "
                    "applies only the best single promotion",
                )
            )
        limit = promotion.max_redemptions_per_account
        if promotion.first_purchase and limit is not None and limit > 1:
            problems.append(
                _problem(
                    "M004",
                    where,
                    f"applies to first purchases only, so a limit of {limit} redemptions "
                    "per account can never be reached",
                )
            )
        problems.extend(
            _problem(
                "M005",
                where,
                f"applies in region {region}, where the book does not sell",
            )
            for region in sorted(promotion.regions - sold_regions)
        )
        if promotion.min_coins > most:
            problems.append(
                _problem(
                    "M006",
                    where,
                    f"needs at least {promotion.min_coins} coins, but the book sells at most "
                    f"{most}: it never applies",
                )
            )
    return problems


def _fee_currencies(fee: Fee, where: str, currencies: list[Currency]) -> list[Problem]:
    return [
        _problem(
            "F002",
            where,
            f"its {part} is not set in {currency.code}, a currency the book sells in",
        )
        for currency in currencies
        for part in fee.missing_currencies(currency)
    ]


def _fees(book: PriceBook) -> list[Problem]:
    fees = book.fees
    problems = []
    currencies = sorted({c for _, c in book.regions}, key=lambda c: c.code)
    if not fees.payment_methods:
        problems.append(
            _problem("F001", "fee schedule", "no payment method is accepted: nothing can be bought")
        )
    for method in fees.payment_methods:
        problems.extend(_fee_currencies(method.fee, f"payment method {method.method}", currencies))
    if fees.service_fee is not None:
        problems.extend(_fee_currencies(fees.service_fee, "service fee", currencies))
    taxed = {rule.region for rule in fees.taxes}
    sold = {region for region, _ in book.regions}
    problems.extend(
        _problem("F003", f"region {region}", "has no tax rule: no tax is charged there")
        for region in sorted(sold - taxed)
    )
    problems.extend(
        _problem("F004", f"tax rule {region}", f"the book does not sell in {region}")
        for region in sorted(taxed - sold)
    )
    return problems
