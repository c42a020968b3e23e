"""Baseline (c): the bookkeeping of ``Wallets`` on ``MemoryStore``, in plain Python.

Dicts and lists, written the plain way: a running balance per account; an
idempotency record per key holding the request (its fingerprint: a tuple,
compared exactly) and the first result; each wallet's lots, consumed oldest
first (the workload's lots never expire and are all purchased, so this is
also coinecon's expiring-first order), each recognising its money value as
its coins go, rounded down; and a journal: a list of transactions, a list of
postings with the balance after each, the lots each spend consumed, and an
outbox of events. It refuses an overdraft before it writes anything, so it
needs no undo log.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from _workload import CURRENCY, SEED_COINS, SEED_VALUE, Command, holder_name

Account = tuple[str, str, str]  # kind, owner, unit
_SPENT: Account = ("spent", "@platform", "COIN")
_COIN_ISSUANCE: Account = ("issuance", "@platform", "COIN")
_DIAMOND_ISSUANCE: Account = ("issuance", "@platform", "DIAMOND")


class Overdraft(Exception):
    """The wallet holds fewer coins than the command spends."""


class Conflict(Exception):
    """An idempotency key reused for another request."""


class PlainBooks:
    """Baseline (c). :meth:`run` returns ``(transaction id, lots consumed or
    the new lot's id, wallet balance after)``, the first one again on a replay."""

    def __init__(self) -> None:
        self.balances: dict[Account, int] = {}
        self.idempotency: dict[str, tuple[tuple[object, ...], tuple[object, ...]]] = {}
        self.lots: dict[
            str, list[list[int]]
        ] = {}  # holder -> [id, amount, remaining, value, recognised]
        self.transactions: list[tuple[int, str, str, str, datetime]] = []
        self.postings: list[tuple[int, Account, int, int]] = []
        self.consumed: dict[int, list[tuple[int, int, int]]] = {}
        self.outbox: list[tuple[str, int, tuple[object, ...]]] = []
        self._ids = itertools.count(1)

    def seed(self, holders: int) -> None:
        for h in range(holders):
            self.purchase(f"seed-{h}", holder_name(h), SEED_COINS, SEED_VALUE, f"seed-{h}")

    def run(self, command: Command) -> tuple[object, ...]:
        if command.gift:
            return self.gift(
                command.key,
                command.holder_name,
                command.creator_name,
                command.coins,
                command.diamonds,
                command.cause_id,
            )
        return self.purchase(
            command.key, command.holder_name, command.coins, command.value, command.cause_id
        )

    def _replay(self, key: str, request: tuple[object, ...]) -> tuple[object, ...] | None:
        record = self.idempotency.get(key)
        if record is None:
            return None
        if record[0] != request:
            raise Conflict(key)
        return record[1]

    def _post(self, transaction: int, account: Account, amount: int) -> int:
        after = self.balances.get(account, 0) + amount
        self.balances[account] = after
        self.postings.append((transaction, account, amount, after))
        return after

    def gift(
        self, key: str, holder: str, creator: str, coins: int, diamonds: int, cause: str
    ) -> tuple[object, ...]:
        request = ("gift", holder, creator, coins, diamonds, cause)
        first = self._replay(key, request)
        if first is not None:
            return first
        wallet = ("wallet", holder, "COIN")
        if self.balances.get(wallet, 0) < coins:
            raise Overdraft(key)
        transaction = next(self._ids)
        self.transactions.append((transaction, "gift", key, cause, datetime.now(UTC)))
        left = self._post(transaction, wallet, -coins)
        self._post(transaction, _SPENT, coins)
        self._post(transaction, _DIAMOND_ISSUANCE, -diamonds)
        self._post(transaction, ("earnings", creator, "DIAMOND"), diamonds)
        lots = self.lots[holder]
        consumed = []
        wanted = coins
        while wanted:
            lot = lots[0]
            take = min(wanted, lot[2])
            lot[2] -= take
            wanted -= take
            recognised = lot[3] * (lot[1] - lot[2]) // lot[1]
            consumed.append((lot[0], take, recognised - lot[4]))
            lot[4] = recognised
            if not lot[2]:
                lots.pop(0)
        self.consumed[transaction] = consumed
        result = (transaction, tuple(consumed), left)
        self.idempotency[key] = (request, result)
        self.outbox.append(("coins.spent", transaction, result))
        return result

    def purchase(
        self, key: str, holder: str, coins: int, value: int, cause: str
    ) -> tuple[object, ...]:
        request = ("purchase", holder, coins, value, CURRENCY, cause)
        first = self._replay(key, request)
        if first is not None:
            return first
        transaction = next(self._ids)
        self.transactions.append((transaction, "purchase", key, cause, datetime.now(UTC)))
        self._post(transaction, _COIN_ISSUANCE, -coins)
        after = self._post(transaction, ("wallet", holder, "COIN"), coins)
        lot = next(self._ids)
        self.lots.setdefault(holder, []).append([lot, coins, coins, value, 0])
        result = (transaction, lot, after)
        self.idempotency[key] = (request, result)
        self.outbox.append(("coins.credited", transaction, result))
        return result
