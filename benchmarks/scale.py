"""How costs grow as the books grow: each operation at three sizes, ten times apart.

Run with ``python3 tasks.py bench`` (every ``benchmarks/bench_*.py`` and this)
or ``.venv/bin/python benchmarks/scale.py`` (``--quick`` for sizes a tenth as
large, which checks the script, not the growth). For each row it prints the
time at each size and the growth exponent: the slope of log(time) against
log(size), fitted over the three sizes. An operation that should be flat has a
slope near 0 (the target is under 0.2); one linear in the size, near 1; one
quadratic, near 2. Absolute times vary from machine to machine; the slopes are
what to watch. docs/benchmarks.md explains each row.
"""

from __future__ import annotations

import argparse
import gc
import io
import itertools
import math
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import NamedTuple

from dateutil.relativedelta import relativedelta

from coinecon import Money
from coinecon.adapters.memory import MemoryStore
from coinecon.adapters.sqlite import SqliteStore
from coinecon.clock import ManualClock
from coinecon.export import export_ledger
from coinecon.ledger.journal import AccountKey, Cause, Posting, TransactionKind
from coinecon.ledger.lots import LotOrigin
from coinecon.ledger.wallets import Wallets
from coinecon.money.units import Unit
from coinecon.ports import Store
from coinecon.pricing import CoinPackage, PriceBook, Promotion, PromotionKind

COIN = Unit("COIN")
DIAMOND = Unit("DIAMOND")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOLDERS = 1000
CREATORS = 10
FLAT = 0.2  # the largest slope that counts as flat


class Row(NamedTuple):
    """One measured operation: what grows, and the seconds at each size."""

    name: str
    grows: str
    sizes: tuple[int, ...]
    seconds: tuple[float, ...]
    target: str  # "flat", "linear" or "" (measured, no target)
    unit: str = "s"


def slope(sizes: Sequence[int], values: Sequence[float]) -> float:
    """The least-squares slope of log(value) against log(size)."""
    xs = [math.log(s) for s in sizes]
    ys = [math.log(max(v, 1e-12)) for v in values]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def verdict(row: Row) -> str:
    exponent = slope(row.sizes, row.seconds)
    if row.target == "flat":
        return "PASS" if exponent < FLAT else "FAIL"
    if row.target == "linear":
        return "PASS" if exponent < 1 + FLAT else "FAIL"
    return ""


def timed(action: Callable[[], object], repeat: int) -> float:
    """The median seconds of one *action* over *repeat* runs."""
    gc.collect()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def peak_bytes(action: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        action()
        return float(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()


# -- books --------------------------------------------------------------------------


def gift(bulk: Wallets, key: str, holder: int, creator: int, coins: int) -> None:
    bulk.spend(
        key,
        holder=f"holder-{holder}",
        amount=COIN(coins),
        cause=Cause("gift", key),
        kind=TransactionKind.GIFT,
        also=(
            Posting(AccountKey.earnings(f"creator-{creator}", DIAMOND), coins),
            Posting(AccountKey.issuance(DIAMOND), -coins),
        ),
    )


def buy(bulk: Wallets, key: str, holder: int, coins: int) -> None:
    bulk.credit(
        key,
        holder=f"holder-{holder}",
        amount=COIN(coins),
        origin=LotOrigin.PURCHASE,
        cause=Cause("purchase", key),
        value=Money.from_minor(coins, "USD"),
    )


def fill(wallets: Wallets, commands: int, start: int) -> None:
    """*commands* more commands: a purchase for every holder once, then gifts
    of 1 coin to a few creators (creator 0 gets half), with a purchase now and
    then, in batches of 1,000."""
    n = start
    while n < start + commands:
        with wallets.batch() as bulk:
            for _ in range(min(1000, start + commands - n)):
                holder = n % HOLDERS
                if n < HOLDERS or n % 50 == 0:
                    buy(bulk, f"buy-{n}", holder, 1000)
                else:
                    gift(bulk, f"gift-{n}", holder, 0 if n % 2 else n % CREATORS, 1)
                n += 1


def _expire_rounds(wallets: Wallets, clock: ManualClock, tag: str, rounds: int) -> float:
    """The median seconds of ``expire()`` over *rounds* rounds, each of 100
    lots that lapsed since the last."""
    samples = []
    for r in range(rounds):
        with wallets.batch() as bulk:
            for n in range(100):
                bulk.credit(
                    f"promo-{tag}-{r}-{n}",
                    holder=f"holder-{n}",
                    amount=COIN(1),
                    origin=LotOrigin.PROMOTION,
                    cause=Cause("promotion", f"{tag}-{r}-{n}"),
                    expires_in=relativedelta(hours=1),
                )
        clock.advance(timedelta(hours=2))
        samples.append(timed(partial(wallets.expire, limit=100), 1))
    return statistics.median(samples)


def _gift_once(wallets: Wallets, keys: Iterator[int]) -> None:
    n = next(keys)
    gift(wallets, f"timed-gift-{n}", n % HOLDERS, 0, 1)


def _buy_once(wallets: Wallets, keys: Iterator[int]) -> None:
    n = next(keys)
    buy(wallets, f"timed-buy-{n}", n % HOLDERS, 10)


def _spend_once(wallets: Wallets, holder: str, keys: Iterator[int]) -> None:
    key = f"timed-spend-{next(keys)}"
    wallets.spend(key, holder=holder, amount=COIN(1), cause=Cause("item", key))


@contextmanager
def books(kind: str, directory: Path) -> Iterator[tuple[Store, Wallets, ManualClock]]:
    clock = ManualClock(T0)
    if kind == "memory":
        store: Store = MemoryStore()
        yield store, Wallets(store, clock=clock), clock
        return
    with SqliteStore(directory / f"scale-{time.monotonic_ns()}.db") as sqlite:
        yield sqlite, Wallets(sqlite, clock=clock), clock


# -- rows -----------------------------------------------------------------------------


def ledger_rows(kind: str, sizes: Sequence[int], directory: Path) -> list[Row]:
    """The operations that should not feel the ledger's size, on books grown
    to each size in turn."""
    times: dict[str, list[float]] = {
        name: []
        for name in (
            "spend",
            "credit",
            "balance",
            "history page",
            "history, filtered",
            "history, until long ago",
            "export_ledger, empty period",
            "expire 100 lots",
            "verify",
            "verify, peak memory",
        )
    }
    popular = AccountKey.earnings("creator-0", DIAMOND)
    keys = itertools.count()
    with books(kind, directory) as (store, wallets, clock):
        done = 0
        for size in sizes:
            fill(wallets, size - done, done)
            done = size
            times["spend"].append(timed(partial(_gift_once, wallets, keys), 50))
            times["credit"].append(timed(partial(_buy_once, wallets, keys), 50))
            times["balance"].append(timed(partial(wallets.balance, "holder-1", COIN), 50))
            times["history page"].append(timed(partial(wallets.history, popular, limit=50), 20))
            purchases = partial(
                wallets.history, popular, limit=50, kinds={TransactionKind.PURCHASE}
            )
            times["history, filtered"].append(timed(purchases, 3))
            long_ago = partial(wallets.history, popular, limit=50, until=T0 + timedelta(minutes=1))
            times["history, until long ago"].append(timed(long_ago, 3))
            nothing_since = partial(
                export_ledger,
                store,
                io.StringIO(),
                file_format="jsonl",
                since=clock.now() + timedelta(seconds=1),
            )
            times["export_ledger, empty period"].append(timed(nothing_since, 3))
            times["expire 100 lots"].append(_expire_rounds(wallets, clock, f"{size}", 5))
            times["verify"].append(timed(wallets.verify, 1))
            times["verify, peak memory"].append(peak_bytes(wallets.verify))
    targets = {"verify": "linear"}
    return [
        Row(
            f"{kind}: {name}",
            "transactions",
            tuple(sizes),
            tuple(values),
            targets.get(name, "flat"),
            "B" if "memory" in name else "s",
        )
        for name, values in times.items()
    ]


def open_lots_row(kind: str, sizes: Sequence[int], directory: Path) -> Row:
    """A spend from a wallet holding *size* small lots (of 1 coin each)."""
    seconds = []
    for size in sizes:
        with books(kind, directory) as (_store, wallets, _clock):
            with wallets.batch() as bulk:
                for n in range(size + 20):
                    bulk.credit(
                        f"lot-{n}",
                        holder="many",
                        amount=COIN(1),
                        origin=LotOrigin.BONUS,
                        cause=Cause("bonus", str(n)),
                    )
            seconds.append(timed(partial(_spend_once, wallets, "many", itertools.count()), 10))
    return Row(
        f"{kind}: spend 1 coin", "open lots of the wallet", tuple(sizes), tuple(seconds), "flat"
    )


def holders_row(kind: str, sizes: Sequence[int], directory: Path) -> Row:
    """The balance of a holder with no coins (which looks for the holder's
    other accounts) among *size* holders with coins."""
    seconds = []
    for size in sizes:
        with books(kind, directory) as (_store, wallets, _clock):
            with wallets.batch() as bulk:
                for n in range(size):
                    buy(bulk, f"holder-{n}", n, 10)
            seconds.append(timed(partial(wallets.balance, "newcomer", COIN), 50))
    return Row(f"{kind}: balance, empty wallet", "holders", tuple(sizes), tuple(seconds), "flat")


def purchase_row(kind: str, sizes: Sequence[int], directory: Path) -> Row:
    """A purchase through ``CoinEconomy`` (quote, charge, credit) on books
    that hold *size* purchases of 1,000 holders already, each buying once an
    hour, with a velocity limit and a maximum balance to check. (What the
    limits read is a holder's purchases of the last hour, which the velocity
    limit itself keeps few; a budget reads those of its period.)"""
    from bench_purchases import book as purchase_book  # noqa: PLC0415 (a sibling script)

    from coinecon.adapters.fake_payments import FakePaymentGateway  # noqa: PLC0415
    from coinecon.economy import CoinEconomy  # noqa: PLC0415
    from coinecon.recharge import EligibilityPolicy, LimitPolicy  # noqa: PLC0415

    keys = itertools.count()
    seconds = []
    with books(kind, directory) as (store, _, clock):
        economy = CoinEconomy(
            price_book=purchase_book(),
            store=store,
            gateway=FakePaymentGateway(clock=clock),
            clock=clock,
            eligibility=EligibilityPolicy(require_age=False),
            limits=LimitPolicy(purchases_per_hour=1_000_000, max_wallet_balance=10**12),
        )

        def purchase() -> None:
            n = next(keys)
            quote = economy.quote(f"holder-{n % HOLDERS}", region="US", sku="coins_100")
            economy.purchase(quote, "pm_card", f"order-{n}")

        done = 0
        for size in sizes:
            for _ in range(size - done):
                purchase()
                if done % HOLDERS == 0:
                    clock.advance(timedelta(hours=1))  # each holder buys once an hour
                done += 1
            seconds.append(timed(purchase, 50))
    return Row(f"{kind}: purchase", "purchases", tuple(sizes), tuple(seconds), "flat")


def gift_row(kind: str, sizes: Sequence[int], directory: Path) -> Row:
    """A gift through ``CoinEconomy.send_gift`` to the hot creator (who
    receives half of all gifts), on books that hold *size* gifts already,
    sent over days (earnings held a week), with the creator's carry, held
    earnings and both profiles read and written on every gift."""
    from bench_purchases import book as purchase_book  # noqa: PLC0415 (a sibling script)

    from coinecon.adapters.fake_payments import FakePaymentGateway  # noqa: PLC0415
    from coinecon.creators.payouts import PayoutPolicy  # noqa: PLC0415
    from coinecon.economy import CoinEconomy  # noqa: PLC0415
    from coinecon.gifts import Gift, GiftCatalog, GiftPolicy  # noqa: PLC0415
    from coinecon.recharge import EligibilityPolicy  # noqa: PLC0415

    keys = itertools.count()
    seconds = []
    with books(kind, directory) as (store, _, clock):
        economy = CoinEconomy(
            price_book=purchase_book(),
            store=store,
            gateway=FakePaymentGateway(clock=clock),
            clock=clock,
            eligibility=EligibilityPolicy(require_age=False),
            catalog=GiftCatalog([Gift("rose", "Rose", 1)]),
            gift_policy=GiftPolicy(creator_must_be_adult=False),
            payout_policy=PayoutPolicy(holding=timedelta(days=7)),
        )
        with economy.wallets.batch() as funding:
            for h in range(HOLDERS):
                buy(funding, f"fund-{h}", h, 1_000_000)
        with economy.batch() as bulk:
            for c in range(CREATORS):
                bulk.enroll_creator(f"enroll-{c}", creator=f"creator-{c}", region="US")

        def send(economy: CoinEconomy = economy) -> None:
            n = next(keys)
            creator = 0 if n % 2 else n % CREATORS
            economy.send_gift(
                f"holder-{n % HOLDERS}",
                f"creator-{creator}",
                "rose",
                context="live",
                region="US",
                idempotency_key=f"gift-{n}",
            )

        done = 0
        for size in sizes:
            while done < size:
                with economy.batch() as bulk:
                    for _ in range(min(1000, size - done)):
                        send(bulk)
                        done += 1
                clock.advance(timedelta(hours=6))  # four bursts a day
            seconds.append(timed(send, 50))
    return Row(f"{kind}: gift to the hot creator", "gifts", tuple(sizes), tuple(seconds), "flat")


def lots_ever_row(sizes: Sequence[int]) -> Row:
    """A spend on the memory store from a wallet that bought and spent
    *size* lots before."""
    seconds = []
    for size in sizes:
        wallets = Wallets(MemoryStore(), clock=ManualClock(T0))
        with wallets.batch() as bulk:
            for n in range(size):
                buy(bulk, f"b-{n}", 0, 1)
                bulk.spend(f"s-{n}", holder="holder-0", amount=COIN(1), cause=Cause("x", str(n)))
        buy(wallets, "last", 0, 100)
        seconds.append(timed(partial(_spend_once, wallets, "holder-0", itertools.count()), 20))
    return Row(
        "memory: spend 1 coin", "lots the wallet ever held", tuple(sizes), tuple(seconds), "flat"
    )


def promotion_row(years: Sequence[int]) -> Row:
    """Whether an hourly promotion is on, *years* tenths of a year after it
    started (``FREQ=HOURLY``, 30 minutes each)."""
    seconds = []
    now = datetime(2026, 6, 1, 12, 45, tzinfo=UTC)
    for tenths in years:
        promotion = Promotion(
            f"hourly-{tenths}",
            PromotionKind.BONUS_COINS,
            bonus_coins=5,
            start=now - timedelta(days=36.5 * tenths),
            rrule="FREQ=HOURLY",
            duration=timedelta(minutes=30),
            timezone="UTC",
        )
        seconds.append(timed(partial(promotion.is_active_at, now), 3))
    return Row(
        "pricing: is a promotion on",
        "tenths of years since its start",
        tuple(years),
        tuple(seconds),
        "flat",
    )


def check_rows(sizes: Sequence[int]) -> list[Row]:
    """``PriceBook.check()`` on a ladder of *size* packages whose price per
    coin rises with the coins (every pair is a problem)."""
    seconds = []
    problems = []
    for size in sizes:
        packages = [
            CoinPackage(
                f"p{n}", 100 * (n + 1), {"web": [Money.from_minor(100 * (n + 1) ** 2, "USD")]}
            )
            for n in range(size)
        ]
        book = PriceBook(regions={"US": "USD"}, packages=packages)
        seconds.append(timed(book.check, 1))
        problems.append(float(len(book.check())))
    return [
        Row("pricing: check()", "packages", tuple(sizes), tuple(seconds), "linear"),
        Row("pricing: check() problems", "packages", tuple(sizes), tuple(problems), "linear", "#"),
    ]


# -- output -------------------------------------------------------------------------


def show(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1e3:.3f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "B":
        return f"{value / 1e6:.2f} MB"
    return f"{value:,.0f}"


def print_row(row: Row) -> str:
    exponent = slope(row.sizes, row.seconds)
    cells = "  ".join(f"{show(v, row.unit):>10}" for v in row.seconds)
    target = {"flat": f"< {FLAT}", "linear": f"< {1 + FLAT}", "": ""}[row.target]
    outcome = verdict(row)
    print(
        f"{row.name:<38}{row.grows:<32}{','.join(f'{s:,}' for s in row.sizes):<22}"
        f"{cells}  {exponent:>6.2f}  {target:>6}  {outcome}".rstrip()
    )
    return outcome


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="sizes a tenth as large: checks the script"
    )
    parser.add_argument(
        "--only", choices=["memory", "sqlite", "pricing"], help="run these rows only"
    )
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    ledger = [s // scale for s in (2_000, 20_000, 200_000)]
    lots = [max(s // scale, 2) for s in (10, 100, 1000)]
    print(
        f"{'row':<38}{'grows with':<32}{'sizes':<22}{'at each size':>34}  {'slope':>6}  "
        f"{'target':>6}  verdict"
    )
    outcomes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for kind in ("memory", "sqlite"):
            if args.only not in (None, kind):
                continue
            sizes = ledger if kind == "memory" else [s // 2 for s in ledger]
            outcomes += [print_row(row) for row in ledger_rows(kind, sizes, directory)]
            outcomes.append(print_row(open_lots_row(kind, lots, directory)))
            outcomes.append(print_row(holders_row(kind, [s // 2 for s in ledger], directory)))
            purchases = [s // 4 for s in ledger] if kind == "memory" else [s // 8 for s in ledger]
            outcomes.append(print_row(purchase_row(kind, purchases, directory)))
            outcomes.append(print_row(gift_row(kind, purchases, directory)))
            if kind == "memory":
                outcomes.append(print_row(lots_ever_row([s // 2 for s in ledger])))
    if args.only in (None, "pricing"):
        outcomes.append(print_row(promotion_row([max(t // scale, 1) for t in (1, 10, 100)])))
        outcomes += [
            print_row(row) for row in check_rows([max(s // scale, 3) for s in (10, 100, 1000)])
        ]
    passed, failed = outcomes.count("PASS"), outcomes.count("FAIL")
    print(f"\ntargets: {passed} PASS, {failed} FAIL")
    return 0


if __name__ == "__main__":
    sys.exit(main())
