"""The ledger benchmark's workload, and how coinecon runs it.

10,000 holders and 100 creators. A command is a gift-shaped spend (1 to 50
coins from a random holder; the creator, chosen with Zipf-like popularity,
earns half as many diamonds, rounded down but at least one) or, about one
command in ten, a purchase (a new purchased lot of coins in a random holder's
wallet). Every holder starts with one purchased lot, credited untimed.

The commands are drawn from a seeded ``random.Random`` and prepared before any
clock starts (keys, holder names, amounts, coinecon's argument objects), so a
round times the ledger writes only, for coinecon and for the baselines alike.
"""

from __future__ import annotations

import itertools
import random
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from coinecon import Money, Unit
from coinecon.adapters.sqlite import SqliteStore
from coinecon.ledger.journal import AccountKey, Cause, Posting, TransactionKind
from coinecon.ledger.lots import LotOrigin
from coinecon.ledger.wallets import Wallets
from coinecon.money.units import UnitAmount

COIN, DIAMOND = Unit("COIN"), Unit("DIAMOND")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOLDERS = 10_000
CREATORS = 100
ZIPF_EXPONENT = 1.1
PURCHASE_EVERY = 10  # about one command in ten is a purchase
SEED_COINS = 1_000_000  # every holder's first lot: more than any run spends
SEED_VALUE = 9_999_00  # its price, in US cents
CURRENCY = "USD"


def holder_name(h: int) -> str:
    return f"holder-{h}"


def creator_name(c: int) -> str:
    return f"creator-{c}"


class Command(NamedTuple):
    """One command of the workload, with every argument made in advance."""

    key: str
    gift: bool  # a gift-shaped spend; else a purchase
    holder: int
    creator: int  # gifts only
    coins: int
    diamonds: int  # gifts only
    value: int  # purchases only: the price in cents
    # Strings and coinecon's argument objects, made before the clock starts
    holder_name: str
    creator_name: str
    cause_id: str
    amount: UnitAmount
    cause: Cause
    also: tuple[Posting, ...]
    money: Money | None


def _zipf_weights(count: int, exponent: float) -> list[float]:
    """Cumulative Zipf-like weights: the k-th most popular has 1 / k**exponent."""
    return list(itertools.accumulate(1 / k**exponent for k in range(1, count + 1)))


def _gift_legs(creator: int, diamonds: int) -> tuple[Posting, ...]:
    """A gift's other legs: the creator earns diamonds out of the diamond issuance."""
    return (
        Posting(AccountKey.issuance(DIAMOND), -diamonds),
        Posting(AccountKey.earnings(creator_name(creator), DIAMOND), diamonds),
    )


def gift_command(key: str, holder: int, creator: int, coins: int, diamonds: int, n: int) -> Command:
    """A gift-shaped spend: *coins* from *holder*; *creator* earns *diamonds*."""
    cause = Cause("gift", f"g-{n}")
    return Command(
        key,
        True,  # noqa: FBT003
        holder,
        creator,
        coins,
        diamonds,
        0,
        holder_name(holder),
        creator_name(creator),
        cause.id,
        COIN(coins),
        cause,
        _gift_legs(creator, diamonds),
        None,
    )


def purchase_command(key: str, holder: int, coins: int, value: int, n: int) -> Command:
    """A purchase: a new lot of *coins* in *holder*'s wallet, paid *value* cents."""
    cause = Cause("purchase", f"p-{n}")
    return Command(
        key,
        False,  # noqa: FBT003
        holder,
        -1,
        coins,
        0,
        value,
        holder_name(holder),
        "",
        cause.id,
        COIN(coins),
        cause,
        (),
        Money.from_minor(value, CURRENCY),
    )


def commands(
    count: int, *, seed: int, holders: int = HOLDERS, prefix: str = "cmd"
) -> list[Command]:
    """*count* commands of the workload, drawn from ``random.Random(seed)``."""
    rng = random.Random(seed)
    weights = _zipf_weights(CREATORS, ZIPF_EXPONENT)
    creators = range(CREATORS)
    made = []
    for n in range(count):
        key = f"{prefix}-{n}"
        holder = rng.randrange(holders)
        if rng.randrange(PURCHASE_EVERY) == 0:
            coins = rng.choice((100, 500, 1000, 5000))
            made.append(purchase_command(key, holder, coins, coins, n))  # a cent a coin
        else:
            creator = rng.choices(creators, cum_weights=weights)[0]
            coins = rng.randint(1, 50)
            made.append(gift_command(key, holder, creator, coins, max(1, coins // 2), n))
    return made


def run(wallets: Wallets, command: Command) -> None:
    """Run *command* through coinecon's ``Wallets``."""
    if command.gift:
        wallets.spend(
            command.key,
            holder=command.holder_name,
            amount=command.amount,
            cause=command.cause,
            kind=TransactionKind.GIFT,
            also=command.also,
        )
    else:
        wallets.credit(
            command.key,
            holder=command.holder_name,
            amount=command.amount,
            origin=LotOrigin.PURCHASE,
            cause=command.cause,
            value=command.money,
        )


def seed(wallets: Wallets, holders: int = HOLDERS) -> None:
    """Give each of *holders* holders one purchased lot of :data:`SEED_COINS`, in one batch."""
    value = Money.from_minor(SEED_VALUE, CURRENCY)
    with wallets.batch() as bulk:
        for h in range(holders):
            bulk.credit(
                f"seed-{h}",
                holder=holder_name(h),
                amount=COIN(SEED_COINS),
                origin=LotOrigin.PURCHASE,
                cause=Cause("purchase", f"seed-{h}"),
                value=value,
            )


_PROFILE_GIFTS = [c for c in commands(4096, seed=1, prefix="profile") if c.gift]


def gift(wallets: Wallets, key: str, n: int) -> None:
    """The *n*-th gift-shaped spend of a fixed sequence of the workload's
    gifts (for the profiling aid, which makes its own keys)."""
    command = _PROFILE_GIFTS[n % len(_PROFILE_GIFTS)]
    wallets.spend(
        key,
        holder=command.holder_name,
        amount=command.amount,
        cause=command.cause,
        kind=TransactionKind.GIFT,
        also=command.also,
    )


def seeded_file(path: Path, holders: int = HOLDERS) -> Path:
    """A coinecon SQLite file at *path* with :func:`seed` done, checkpointed so
    that it can be copied as one file (:func:`copy_file`)."""
    with SqliteStore(path) as store:
        seed(Wallets(store), holders)
    checkpoint(path)
    return path


def checkpoint(path: Path) -> None:
    """Move the WAL of the SQLite file at *path* into the file itself."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


_copies = itertools.count()


def copy_file(template: Path, directory: Path, name: str) -> Path:
    """A fresh copy of the checkpointed SQLite file *template* in *directory*."""
    target = directory / f"{name}-{next(_copies)}.db"
    shutil.copyfile(template, target)
    return target
