"""What the SQLite tests that run real processes (crash, concurrency, outbox)
share: the wallet commands they run, and how a child process runs a test file.

Not a test module: test modules import it (``tests/`` is on pytest's path),
and so does a child, which :data:`LAUNCH` gives the same path.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from coinecon import Money
from coinecon.ledger.journal import AccountKey, Cause, Posting, TransactionKind
from coinecon.ledger.lots import LotOrigin
from coinecon.ledger.wallets import Wallets
from coinecon.testing.contract import COIN, DIAMOND

CREATOR = "creator"
"""Who earns the diamonds of every gift."""

Command = Sequence[str | int]
"""``(idempotency key, "credit" or "gift", holder, coins)``."""


def diamonds_for(coins: int) -> int:
    """What the creator earns for a gift of *coins* (never zero)."""
    return (coins + 1) // 2


def buy(wallets: Wallets, key: str, holder: str, coins: int) -> str:
    """Credit *holder* with *coins* purchased at one cent each; the result's JSON."""
    return wallets.credit(
        key,
        holder=holder,
        amount=COIN(coins),
        origin=LotOrigin.PURCHASE,
        cause=Cause("purchase", key),
        value=Money.from_minor(coins, "USD"),
    ).to_json()


def send_gift(wallets: Wallets, key: str, holder: str, coins: int) -> str:
    """A gift-shaped spend: *holder*'s *coins* spent, and :func:`diamonds_for`
    them earned by :data:`CREATOR` in the same transaction; the result's JSON."""
    earned = diamonds_for(coins)
    return wallets.spend(
        key,
        holder=holder,
        amount=COIN(coins),
        cause=Cause("gift", key),
        kind=TransactionKind.GIFT,
        also=(
            Posting(AccountKey.issuance(DIAMOND), -earned),
            Posting(AccountKey.earnings(CREATOR, DIAMOND), earned),
        ),
    ).to_json()


def run_command(wallets: Wallets, command: Command) -> str:
    """Run one :data:`Command`; return its result as the JSON its replay must match."""
    key, operation, holder, coins = command
    assert isinstance(key, str)
    assert isinstance(holder, str)
    assert isinstance(coins, int)
    if operation == "credit":
        return buy(wallets, key, holder, coins)
    return send_gift(wallets, key, holder, coins)


# A child loads the test file by path (pytest imports it under a name a child
# could not import) with its folder on the path, so that it runs the very code
# the parent checks with, and exits with the file's child_main(arguments).
LAUNCH = (
    "import importlib.util, os, sys\n"
    "sys.path.insert(0, os.path.dirname(sys.argv[1]))\n"
    "spec = importlib.util.spec_from_file_location('coinecon_child', sys.argv[1])\n"
    "module = importlib.util.module_from_spec(spec)\n"
    "sys.modules['coinecon_child'] = module\n"
    "spec.loader.exec_module(module)\n"
    "sys.exit(module.child_main(sys.argv[2:]))\n"
)


def child_command(test_file: str, *arguments: str) -> list[str]:
    """The command that runs ``child_main(arguments)`` of *test_file* in a new process."""
    return [sys.executable, "-c", LAUNCH, test_file, *arguments]
