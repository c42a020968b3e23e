"""The ``coinecon`` command: ``python -m coinecon demo`` shows the library at work."""

from __future__ import annotations

import argparse
import io
import itertools
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from coinecon import (
    AccountKind,
    Cause,
    CoineconError,
    CoinEconomy,
    Currency,
    InsufficientFunds,
    ManualClock,
    Money,
    Rate,
    Rounding,
    TransactionKind,
    Unit,
    ValidationError,
    WalletFrozen,
    Wallets,
    export_statement,
)
from coinecon.adapters.fake_payments import Decline, FakePaymentGateway, Pend
from coinecon.adapters.sqlite import SqliteStore
from coinecon.ledger.journal import AccountKey, Posting
from coinecon.ledger.wallets import SpendResult
from coinecon.pricing import (
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
    gateway = FakePaymentGateway(clock=clock)
    with SqliteStore(path) as store:
        economy = CoinEconomy(
            price_book=_book(),
            store=store,
            gateway=gateway,
            clock=clock,
            bonus_expiry=timedelta(days=30),
            new_id=lambda: f"id-{next(numbers):04d}",
        )
        for holder, born in (("alice", date(1994, 4, 2)), ("carol", date(1988, 11, 9))):
            economy.attest_age(
                f"age-{holder}", holder=holder, region="US", source="id-check", birth_date=born
            )
        economy.attest_age("age-dan", holder="dan", region="US", source="app-store", adult=True)
        print("1. alice, carol and dan are of age (what is kept: the day they came of age):")
        kept = economy.profile("alice").attestation
        assert kept is not None  # noqa: S101 (attested just above)
        print(f"     alice: of age from {kept.adult_from}, vouched by {kept.source}")

        print("\n2. alice buys the 1,000-coin package on the web, paying by card:")
        quote = economy.quote("alice", region="US", sku="coins_1000")
        for line in (*quote.buyer_lines, *quote.platform_lines):
            print(f"     {line}")
        print(f"     the buyer pays {quote.total}; the platform keeps {quote.net_revenue}")
        bought = economy.purchase(quote, "pm_alice_visa", "order-1")
        print(
            f"     {bought.status.value}: alice has {economy.balance('alice')} "
            f"({bought.bonus_coins} bonus, for 30 days)"
        )

        _decline_and_pending(economy, gateway, clock)
        _gifts_then_a_chargeback(economy, gateway, clock, bought.id)
        _books(economy, store)


def _decline_and_pending(
    economy: CoinEconomy, gateway: FakePaymentGateway, clock: ManualClock
) -> None:
    print("\n3. dan's card is declined; carol pays by bank transfer, settled later:")
    gateway.script("pm_dan_card", Decline("insufficient_funds"))
    dan = economy.purchase(
        economy.quote("dan", region="US", sku="coins_500"), "pm_dan_card", "order-2"
    )
    print(f"     dan: {dan.status.value} ({dan.reason}); his wallet: {economy.balance('dan')}")
    gateway.script("pm_carol_bank", Pend())
    carol = economy.purchase(
        economy.quote("carol", region="US", sku="coins_500"), "pm_carol_bank", "order-3"
    )
    print(f"     carol: {carol.status.value}; her wallet: {economy.balance('carol')}")
    clock.advance(timedelta(hours=2))
    settled = economy.handle_payment_event(gateway.settle(carol.id))
    status = settled.purchase.status.value
    print(f"     the bank settles: {status}; her wallet: {economy.balance('carol')}")
    again = economy.handle_payment_event(gateway.events[-1])
    print(f"     the same event delivered twice: {again.status}")


def _gifts_then_a_chargeback(
    economy: CoinEconomy, gateway: FakePaymentGateway, clock: ManualClock, purchase_id: str
) -> None:
    wallets = economy.wallets
    print("\n4. alice sends three gifts to the creator bob; bob earns diamonds:")
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

    print("\n5. alice's bank charges her payment back after she spent most of it:")
    clock.advance(timedelta(days=3))
    charged_back = economy.handle_payment_event(gateway.charge_back(purchase_id))
    [reversal] = charged_back.purchase.reversals
    print(
        f"     {reversal.coins} coins taken back; {reversal.debt} were spent already: "
        f"alice's wallet is {economy.balance('alice')}, frozen until it is settled"
    )
    try:
        _send_gift(wallets, "gift-3", "rose", 99)
    except WalletFrozen as error:
        print(f"     another rose: refused, {error}")


def _books(economy: CoinEconomy, store: SqliteStore) -> None:
    wallets = economy.wallets
    print("\n6. the books:")
    report = economy.verify()
    print(f"     verify(): {'clean' if report.ok else report.problems}")
    accounts = [AccountKey.system(kind, _USD) for kind in _MONEY_KINDS]
    for account, balance in wallets.balances(accounts).items():
        print(f"     {account.kind.value:>16}: {Money.from_minor(balance, _USD)}")

    print("\n7. alice's statement, as an auditor would get it (CSV):")
    out = io.StringIO()
    export_statement(store, out, file_format="csv", account=AccountKey.wallet("alice", _COIN))
    for row in out.getvalue().splitlines():
        print(f"     {row}")


_USD = Currency.of("USD")
_MONEY_KINDS = (
    AccountKind.CLEARING,
    AccountKind.FEES,
    AccountKind.TAX_PAYABLE,
    AccountKind.DEFERRED_REVENUE,
    AccountKind.REVENUE,
    AccountKind.BREAKAGE,
    AccountKind.LOSSES,
)


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
