"""The ``coinecon`` command: ``python -m coinecon demo`` shows the library at work."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from coinecon import Money, Rate, Rounding, Unit, currencies, get_currency


def demo() -> None:
    """Print a short tour of what coinecon does today."""
    coin = Unit("COIN", "Coins")
    print("coinecon demo: exact money and virtual units\n")

    print("Prices in three currencies with different minor units:")
    for amount, code in (("4.99", "USD"), ("780", "JPY"), ("1.495", "KWD")):
        money = Money(amount, code)
        print(f"  {money!s:>12}  = {money.minor} minor units (exponent {money.currency.exponent})")

    print("\nA 15% discount on 9.99 USD, rounded half-up to the cent:")
    price = Money("9.99", "USD")
    discount = price.times(Rate("15%"), rounding=Rounding.HALF_UP)
    print(f"  {price} - {discount} = {price - discount}")

    print("\nSplitting 100.00 USD of gift revenue 70/30 and three ways; parts always add up:")
    revenue = Money(100, "USD")
    creator, platform = revenue.allocate([Rate("0.7"), Rate("0.3")])
    print(f"  creator {creator}, platform {platform}, sum {creator + platform}")
    thirds = revenue.split(3)
    print(f"  {', '.join(map(str, thirds))}  (sum {sum(thirds)})")

    print("\nVirtual units never mix with each other or with money:")
    print(f"  {coin(500)} + {coin(50)} bonus = {coin(500) + coin(50)}")
    try:
        coin(1) + Money(1, "USD")  # type: ignore[operator]
    except TypeError as error:
        print(f"  COIN + USD -> {type(error).__name__}: {error}")

    print("\nFloats are refused:")
    try:
        Money(0.1, "USD")  # type: ignore[arg-type]
    except TypeError as error:
        print(f"  Money(0.1, 'USD') -> {type(error).__name__}")

    known = currencies()
    print(
        f"\n{len(known)} currencies known (ISO 4217), e.g. {get_currency('CLF').name}: "
        f"exponent {get_currency('CLF').exponent}."
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``coinecon`` command line; return its exit status."""
    parser = argparse.ArgumentParser(prog="coinecon", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("demo", help="show a tour of the library (the default)")
    parser.parse_args(argv)
    demo()
    return 0


if __name__ == "__main__":
    sys.exit(main())
