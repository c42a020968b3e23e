"""What the SQLite tests that run real processes (crash, concurrency, outbox)
share: the wallet commands they run, and how a child process runs a test file.

Not a test module: test modules import it (``tests/`` is on pytest's path),
and so does a child, which :data:`LAUNCH` gives the same path.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence
from typing import Any

from coinecon import Money
from coinecon.errors import InsufficientFunds
from coinecon.ledger.journal import AccountKey, AccountKind, Cause, Posting, TransactionKind
from coinecon.ledger.lots import LotOrigin
from coinecon.ledger.wallets import Wallets
from coinecon.money.units import Unit
from coinecon.ports import Store
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


HOLDERS = ("alice", "bob", "carol")
"""Who buys and gifts in :func:`run_commands`."""


def run_commands(wallets: Wallets, tag: str, rounds: int, seed: int) -> dict[str, Any]:
    """Run *rounds* random commands (credits, gifts, and batches of a credit
    and two gifts; the first a gift no one can afford) on *wallets*; return
    those that committed and how many were refused for want of coins."""
    rng = random.Random(seed)
    committed: list[list[str | int]] = []
    refused = 0
    for i in range(rounds):
        holder = rng.choice(HOLDERS)
        key = f"{tag}-{i}"
        roll = rng.random()
        if i == 0:
            commands: list[list[str | int]] = [[key, "gift", holder, 10**12]]
        elif roll < 0.4:
            commands = [[key, "credit", holder, rng.randint(1, 20)]]
        elif roll < 0.85:
            commands = [[key, "gift", holder, rng.randint(1, 25)]]
        else:
            commands = [
                [f"{key}-a", "credit", holder, rng.randint(1, 10)],
                [f"{key}-b", "gift", holder, rng.randint(1, 25)],
                [f"{key}-c", "gift", holder, rng.randint(1, 5)],
            ]
        try:
            if len(commands) == 1:
                run_command(wallets, commands[0])
            else:
                with wallets.batch() as bulk:
                    for command in commands:
                        run_command(bulk, command)
        except InsufficientFunds:
            refused += 1  # a refused batch keeps none of its commands
        else:
            committed.extend(commands)
    return {"committed": committed, "refused": refused}


def check_books_after(store: Store, outcomes: list[dict[str, Any]]) -> list[str]:
    """Check that *store* holds exactly the commands the :func:`run_commands`
    *outcomes* committed, balance by balance, with ``verify()`` clean and no
    wallet below zero at any posting; return the transactions' keys in order."""
    committed = [command for outcome in outcomes for command in outcome["committed"]]
    keys = [str(command[0]) for command in committed]
    assert len(set(keys)) == len(keys)
    credited = dict.fromkeys(HOLDERS, 0)
    gifted = dict.fromkeys(HOLDERS, 0)
    for _key, operation, holder, coins in committed:
        assert isinstance(holder, str)
        assert isinstance(coins, int)
        (credited if operation == "credit" else gifted)[holder] += coins
    earned = sum(diamonds_for(int(c)) for _, operation, _, c in committed if operation == "gift")
    report = Wallets(store).verify()
    assert report.ok, str(report)
    assert report.transactions == len(committed)
    with store.unit_of_work() as uow:
        order = [str(t.idempotency_key) for t in uow.ledger.transactions()]
        postings = list(uow.ledger.postings())
        accounts = uow.ledger.accounts()
        events = uow.outbox.pending(limit=10 * len(committed) + 10)
    # No coin lost or created: the books hold exactly the commands that succeeded.
    assert sorted(order) == sorted(keys)
    assert len(events) == len(committed)
    expected = {
        **{AccountKey.wallet(h, COIN): credited[h] - gifted[h] for h in HOLDERS},
        AccountKey.issuance(COIN): -sum(credited.values()),
        AccountKey.spent(COIN): sum(gifted.values()),
        AccountKey.issuance(DIAMOND): -earned,
        AccountKey.earnings(CREATOR, DIAMOND): earned,
    }
    # The coins' side, account by account (verify() checked the money side).
    coins = {a for a in accounts if isinstance(a.asset, Unit)}
    assert coins <= set(expected)
    assert {account: accounts.get(account, 0) for account in expected} == expected
    for posting in postings:  # no wallet below zero, not even between commands
        if posting.account.kind in {AccountKind.WALLET, AccountKind.EARNINGS}:
            assert posting.balance_after >= 0, posting
    return order


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
