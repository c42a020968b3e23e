"""The ``coinecon`` command: ``coinecon demo`` shows the library at work;
``verify``, ``balance``, ``history``, ``export`` and ``migrate`` work on a
SQLite store; ``check`` and ``quote`` on a definition file."""

from __future__ import annotations

import argparse
import io
import itertools
import sqlite3
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from coinecon import (
    AccountKind,
    CoineconError,
    CoinEconomy,
    ConversionRate,
    Currency,
    Gift,
    GiftCatalog,
    GiftReceipt,
    InsufficientFunds,
    ManualClock,
    Money,
    PayoutPolicy,
    Rate,
    RevenueShare,
    StorageError,
    StoreItem,
    ValidationError,
    WalletFrozen,
    __version__,
)
from coinecon._commands import add_commands
from coinecon.adapters.fake_payments import Decline, FakePaymentGateway, Pend
from coinecon.adapters.fake_payouts import Fail, FakePayoutGateway
from coinecon.adapters.sqlite import SqliteStore
from coinecon.definitions import DefinitionError
from coinecon.ledger.journal import AccountKey
from coinecon.pricing import (
    CoinPackage,
    Fee,
    FeeSchedule,
    PaymentMethodFee,
    PriceBook,
    TaxMode,
    TaxRule,
)

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
        _tour(path, f"in {path} (SQLite), kept")
        return
    with tempfile.TemporaryDirectory() as directory:
        _tour(
            Path(directory) / "coinecon-demo.db",
            "in a temporary SQLite file, deleted at the end (--db PATH keeps it)",
        )


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


_CATALOG = GiftCatalog(
    [
        Gift("rose", "Rose", 1, display={"animation": "rose.webp"}),
        Gift("rocket", "Rocket", 500, display={"animation": "rocket.webp"}),
        Gift("castle", "Castle", 800, display={"animation": "castle.webp"}, min_age=18),
    ],
    items=[StoreItem("wave", "Waving sticker", 3, display={"kind": "sticker"})],
)


def _send(economy: CoinEconomy, key: str, sender: str, gift: str, quantity: int = 1) -> GiftReceipt:
    return economy.send_gift(
        sender, "bob", gift, quantity, context="stream-1", region="US", idempotency_key=key
    )


def _tour(path: Path, where: str) -> None:
    print(f"coinecon demo: a small coin economy {where}\n")
    clock = ManualClock(_START)
    numbers = itertools.count(1)
    gateway = FakePaymentGateway(clock=clock)
    with SqliteStore(path) as store:
        payouts = FakePayoutGateway(clock=clock)
        economy = CoinEconomy(
            price_book=_book(),
            store=store,
            gateway=gateway,
            clock=clock,
            bonus_expiry=timedelta(days=30),
            new_id=lambda: f"id-{next(numbers):04d}",
            catalog=_CATALOG,
            revenue_share=RevenueShare("50%"),
            conversion_rate=ConversionRate({"USD": "0.005"}),
            payout_policy=PayoutPolicy(
                holding=timedelta(days=7),
                minimum=Money("1.00", "USD"),
                fee=Fee(fixed=[Money("0.25", "USD")]),
                clawback=True,
            ),
            payout_gateway=payouts,
        )
        for holder, born in (
            ("alice", date(1994, 4, 2)),
            ("carol", date(1988, 11, 9)),
            ("bob", date(1999, 7, 21)),
        ):
            economy.attest_age(
                f"age-{holder}", holder=holder, region="US", source="id-check", birth_date=born
            )
        economy.attest_age("age-dan", holder="dan", region="US", source="app-store", adult=True)
        print("1. alice, carol, dan and the creator bob are of age (kept: when they came of age):")
        kept = economy.profile("alice").attestation
        assert kept is not None  # noqa: S101 (attested just above)
        print(f"     alice: of age from {kept.adult_from}, vouched by {kept.source}")

        print("\n2. alice buys the 1,000-coin package on the web, paying by card:")
        quote = economy.quote("alice", region="US", sku="coins_1000")
        print("     what the buyer pays:")
        for line in quote.buyer_lines:
            print(f"       {line}")
        print("     what the platform pays out of it:")
        for line in quote.platform_lines:
            print(f"       {line}")
        print(f"     the buyer pays {quote.total}; the platform keeps {quote.net_revenue}")
        bought = economy.purchase(quote, "pm_alice_visa", "order-1")
        print(
            f"     {bought.status.value}: alice has {economy.balance('alice')} "
            f"({bought.bonus_coins} bonus, for 30 days)"
        )

        _decline_and_pending(economy, gateway, clock)
        _live_stream(economy, clock)
        _a_chargeback(economy, gateway, clock, bought.id)
        _earnings_and_payouts(economy, payouts, clock)
        _books(economy)


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


def _live_stream(economy: CoinEconomy, clock: ManualClock) -> None:
    print("\n4. bob goes live (stream-1); alice and carol send gifts; bob earns half in diamonds:")
    economy.enroll_creator("enroll-bob", creator="bob", region="US")
    clock.advance(timedelta(minutes=5))
    rose = _send(economy, "gift-1", "alice", "rose")
    print(f"     alice: a rose (1 COIN): bob earns {rose.earned}, {rose.carry} carried")
    roses = _send(economy, "gift-2", "alice", "rose", 3)
    print(f"     alice: 3 roses: bob earns {roses.earned} (1/2 + 3/2 = 2), {roses.carry} carried")
    rocket = _send(economy, "gift-3", "alice", "rocket")
    value = ", ".join(str(money) for money in rocket.value) or "nothing: bonus coins only"
    print(
        f"     alice: a rocket (500 COIN, bought for {value}, now revenue): "
        f"bob earns {rocket.earned}"
    )
    try:
        _send(economy, "gift-4", "alice", "castle")
    except InsufficientFunds as error:
        print(f"     alice: a castle (800 COIN): refused, {error.shortfall} coins short")
    replay = _send(economy, "gift-3", "alice", "rocket")
    print(f"     the rocket again, same idempotency key: the same receipt, {replay.balance} left")
    carol = _send(economy, "gift-5", "carol", "rocket")
    print(f"     carol: a rocket: bob earns {carol.earned}")
    sticker = economy.buy_item("carol", "wave", 2, region="US", idempotency_key="item-1")
    economy.use_item("carol", "wave", context="chat-1", idempotency_key="use-1")
    print(
        f"     carol buys {sticker.quantity} waving stickers ({sticker.coins}, the platform's "
        "alone) and waves once in the chat"
    )
    print(f"     bob's earnings: {economy.earnings('bob')}, held for a week")


def _a_chargeback(
    economy: CoinEconomy, gateway: FakePaymentGateway, clock: ManualClock, purchase_id: str
) -> None:
    print("\n5. alice's bank charges her payment back after she gifted some of her coins:")
    clock.advance(timedelta(days=3))
    charged_back = economy.handle_payment_event(gateway.charge_back(purchase_id))
    [reversal] = charged_back.purchase.reversals
    print(
        f"     {reversal.coins} coins taken back; {reversal.debt} were spent already: "
        f"alice's wallet is {economy.balance('alice')}, frozen until it is settled"
    )
    print(
        "     the policy claws back what her gifts earned bob, still held: "
        f"bob's earnings are {economy.earnings('bob')}"
    )
    try:
        _send(economy, "gift-6", "alice", "rose")
    except WalletFrozen as error:
        print(f"     another rose: refused, {error}")


def _earnings_and_payouts(
    economy: CoinEconomy, payouts: FakePayoutGateway, clock: ManualClock
) -> None:
    print("\n6. a week later bob converts his earnings (a diamond is half a cent) and is paid:")
    clock.advance(timedelta(days=5))
    converted = economy.convert("bob", "USD", idempotency_key="convert-1")
    print(
        f"     {converted.units} make {converted.money}; {converted.left} waits for a "
        "partner to make a whole cent"
    )
    payouts.script("acct_bob_old", Fail("account_closed"))
    failed = economy.request_payout(
        "bob", Money("1.00", "USD"), destination="acct_bob_old", idempotency_key="payout-1"
    )
    print(
        f"     a payout to his old account: {failed.status.value} ({failed.reason}); "
        f"the money is back: he is owed {economy.payable('bob')['USD']}"
    )
    sent = economy.request_payout(
        "bob", Money("1.00", "USD"), destination="acct_bob", idempotency_key="payout-2"
    )
    clock.advance(timedelta(days=1))
    settled = economy.handle_payout_event(payouts.settle(sent.id)).payout
    print(
        f"     a payout of {sent.amount} (fee {sent.fee}, {sent.net} sent): "
        f"{settled.status.value}; he is owed {economy.payable('bob')['USD']}"
    )


def _books(economy: CoinEconomy) -> None:
    wallets = economy.wallets
    print("\n7. the books:")
    report = economy.verify()
    print(f"     verify(): {'clean' if report.ok else report.problems}")
    accounts = [AccountKey.system(kind, _USD) for kind in _MONEY_KINDS]
    for account, balance in wallets.balances(accounts).items():
        print(f"     {account.kind.value:>16}: {Money.from_minor(balance, _USD)}")
    for step, holder in ((8, "bob"), (9, "alice")):
        print(f"\n{step}. {holder}'s statement, as an auditor would get it (CSV):")
        out = io.StringIO()
        economy.statement(holder, out, file_format="csv")
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
    AccountKind.CREATOR_SHARE,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``coinecon`` command line; return its exit status: 0 done, 1
    a problem found (the books do not verify) or a refusal, 2 a usage error
    or a file that cannot be read. An error is one line on stderr, never a
    traceback."""
    parser = argparse.ArgumentParser(prog="coinecon", description=__doc__)
    parser.add_argument("--version", action="version", version=f"coinecon {__version__}")
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser(
        "demo",
        help="show a tour of the library (the default)",
        description="a tour of a live-stream coin economy on a SQLite file",
        epilog="examples:\n  coinecon demo\n  coinecon demo --db demo.db   (keeps the file)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "--db", type=Path, help="keep the demo's SQLite file here (default: a temporary file)"
    )
    add_commands(commands)
    arguments = parser.parse_args(argv)
    try:
        command = getattr(arguments, "run", None)
        if command is None:
            demo(getattr(arguments, "db", None))
            return 0
        status: int = command(arguments, sys.stdout)
    except StorageError as error:
        print(f"coinecon: {error}", file=sys.stderr)
        return 2
    except DefinitionError as error:  # several problems: one line, and where to see them
        count = len(error.problems)
        source = error.problems[0].source if error.problems else "the definition"
        print(
            f"coinecon: {source} has {count} problem{'s' if count != 1 else ''} "
            f"(the first: {error.problems[0].where}: {error.problems[0].message}); "
            f"coinecon check {source} lists them",
            file=sys.stderr,
        )
        return 1
    except CoineconError as error:
        print(f"coinecon: {error}", file=sys.stderr)
        return 1
    except (OSError, sqlite3.Error) as error:
        print(f"coinecon: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("coinecon: interrupted", file=sys.stderr)
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
