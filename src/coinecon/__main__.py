"""The ``coinecon`` command: ``python -m coinecon demo`` shows the library at work."""

from __future__ import annotations

import argparse
import io
import itertools
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from coinecon import (
    Cause,
    CoineconError,
    InsufficientFunds,
    LotOrigin,
    ManualClock,
    Money,
    Rate,
    Rounding,
    TransactionKind,
    Unit,
    ValidationError,
    Wallets,
    export_statement,
)
from coinecon.adapters.sqlite import SqliteStore
from coinecon.ledger.journal import AccountKey, Posting
from coinecon.ledger.wallets import SpendResult
from coinecon.pricing import (
    BuyerHistory,
    CoinPackage,
    Fee,
    FeeSchedule,
    PaymentMethodFee,
    PriceBook,
    TaxMode,
    TaxRule,
)

_COIN, _DIAMOND = Unit("COIN", "Coins"), Unit("DIAMOND", "Diamonds")
_START = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)


def demo(path: Path | None = None) -> None:
    """Print a tour of a small coin economy, kept in a new SQLite file at
    *path* (a temporary one if ``None``).

    Raises:
        ValidationError: if a file exists at *path* (the demo never writes
            into an existing store).
    """
    if path is not None:
        if path.exists():
            raise ValidationError(f"{path} exists; the demo writes only to a new file")
        _tour(path)
        return
    with tempfile.TemporaryDirectory() as directory:
        _tour(Path(directory) / "coinecon-demo.db")


def _book() -> PriceBook:
    packages = [
        CoinPackage(f"coins_{coins}", coins, {"web": [Money(price, "USD")]}, bonus_coins=bonus)
        for coins, bonus, price in ((100, 0, "0.99"), (500, 25, "4.99"), (1_000, 100, "9.99"))
    ]
    fees = FeeSchedule(
        payment_methods=[
            PaymentMethodFee("card", Fee(Rate("2.9%"), fixed=[Money("0.30", "USD")])),
        ],
        taxes=[TaxRule("US", Rate("8.875%"), TaxMode.EXCLUSIVE, label="sales tax")],
    )
    return PriceBook(regions={"US": "USD"}, packages=packages, fees=fees)


def _send_gift(wallets: Wallets, key: str, gift: str, coins: int) -> SpendResult:
    """Alice sends *gift* worth *coins* to bob, who earns half of them in
    diamonds, rounded down."""
    diamonds = _COIN(coins).times(Rate("50%"), rounding=Rounding.FLOOR).amount
    return wallets.spend(
        key,
        holder="alice",
        amount=_COIN(coins),
        cause=Cause("gift", gift),
        kind=TransactionKind.GIFT,
        also=(
            Posting(AccountKey.issuance(_DIAMOND), -diamonds),
            Posting(AccountKey.earnings("bob", _DIAMOND), diamonds),
        ),
    )


def _tour(path: Path) -> None:
    print(f"coinecon demo: a small coin economy in {path.name} (SQLite)\n")
    clock = ManualClock(_START)
    numbers = itertools.count(1)
    book = _book()
    with SqliteStore(path) as store:
        wallets = Wallets(store, clock=clock, new_id=lambda: f"id-{next(numbers):04d}")

        print("1. alice buys the 1,000-coin package on the web, paying by card:")
        quote = book.quote(
            account="alice",
            region="US",
            storefront="web",
            payment_method="card",
            sku="coins_1000",
            now=clock.now(),
            history=BuyerHistory(first_purchase=True),
            validity=timedelta(minutes=15),
        )
        for line in (*quote.buyer_lines, *quote.platform_lines):
            print(f"     {line}")
        print(f"     the buyer pays {quote.total}; the platform keeps {quote.net_revenue}")
        wallets.credit(
            "order-1",
            holder="alice",
            amount=quote.coins,
            origin=LotOrigin.PURCHASE,
            cause=Cause("order", "1"),
            value=quote.net_revenue,
        )
        credited = wallets.credit(
            "order-1-bonus",
            holder="alice",
            amount=quote.bonus_coins,
            origin=LotOrigin.BONUS,
            cause=Cause("order", "1"),
            expires_in=timedelta(days=30),
        )
        print(f"     alice's wallet: {credited.balance} ({quote.bonus_coins} bonus, for 30 days)")

        print("\n2. alice sends three gifts to the creator bob; bob earns diamonds:")
        gifts = (("rose", 99), ("rocket", 500), ("castle", 800))
        for n, (gift, coins) in enumerate(gifts):
            clock.advance(timedelta(minutes=5))
            try:
                sent = _send_gift(wallets, f"gift-{n}", gift, coins)
            except InsufficientFunds as error:
                print(f"     {gift} ({_COIN(coins)}): refused, {error.shortfall} coins short")
                continue
            value = ", ".join(str(money) for money in sent.value.values()) or "bonus coins only"
            print(f"     {gift} ({_COIN(coins)}): alice has {sent.balance} left; value {value}")
        replay = _send_gift(wallets, "gift-0", *gifts[0])
        print(f"     the rose again, same idempotency key: replayed, balance {replay.balance}")
        earned = wallets.balances([AccountKey.earnings("bob", _DIAMOND)])
        print(f"     bob has earned {_DIAMOND(sum(earned.values()))}")

        print("\n3. the books:")
        report = wallets.verify()
        print(f"     verify(): {'clean' if report.ok else report.problems}")
        for code, money in wallets.deferred_revenue().items():
            print(f"     deferred revenue ({code}): {money} of coins bought but not yet spent")

        print("\n4. alice's statement, as an auditor would get it (CSV):")
        out = io.StringIO()
        export_statement(store, out, file_format="csv", account=AccountKey.wallet("alice", _COIN))
        for row in out.getvalue().splitlines():
            print(f"     {row}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``coinecon`` command line; return its exit status."""
    parser = argparse.ArgumentParser(prog="coinecon", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("demo", help="show a tour of the library (the default)")
    run.add_argument(
        "--db", type=Path, help="keep the demo's SQLite file here (default: a temporary file)"
    )
    arguments = parser.parse_args(argv)
    try:
        demo(getattr(arguments, "db", None))
    except CoineconError as error:
        print(f"coinecon: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
