"""Verifying the books: recompute everything from the postings, report drift.

:func:`verify_books` is pure: it takes what a store holds and returns a
:class:`VerificationReport` listing every problem it finds, never raising for
one. :meth:`coinecon.ledger.wallets.Wallets.verify` runs it over a whole store.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import final

import attrs

from coinecon.ledger.journal import (
    AccountKey,
    AccountKind,
    Asset,
    Posting,
    RecordedPosting,
    Transaction,
    imbalance,
)
from coinecon.ledger.lots import Lot

__all__ = ["VerificationReport", "verify_books"]


@final
@attrs.frozen
class VerificationReport:
    """The outcome of a verification.

    Attributes:
        transactions: how many transactions were checked.
        postings: how many postings were checked.
        accounts: how many accounts were checked.
        problems: one readable line per problem found; empty when clean.
    """

    transactions: int
    postings: int
    accounts: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Whether no problem was found."""
        return not self.problems

    def __str__(self) -> str:
        head = (
            f"checked {self.transactions} transactions, {self.postings} postings, "
            f"{self.accounts} accounts: "
        )
        if self.ok:
            return head + "clean"
        return head + f"{len(self.problems)} problem(s)\n" + "\n".join(self.problems)


def verify_books(
    transactions: Iterable[Transaction],
    postings: Iterable[RecordedPosting],
    balances: Mapping[AccountKey, int],
    lots: Iterable[Lot],
) -> VerificationReport:
    """Recompute every balance from the postings and check the books.

    Checks that every transaction has postings that sum to zero per unit and
    currency and match the transaction as stored; that postings are in strictly
    increasing sequence; that every posting's running balance equals the sum of
    the account's postings up to it; that every stored balance equals the sum
    of its postings; that each unit and currency sums to zero over all
    accounts; that each wallet's lots hold exactly its (non-negative)
    balance; and that each currency's ``DEFERRED_REVENUE`` account holds
    (negated: it is a credit balance) exactly the value of the purchased lots
    not recognised yet (see :mod:`coinecon.ledger.entries`).

    It streams: *transactions* and *postings* are read once, side by side (a
    transaction's postings come together, in the order of the transactions,
    as every store keeps them), and what it holds is a running balance and a
    lot total per account and one transaction's postings, however long the
    ledger. Postings out of that order are still checked, at the cost of
    holding the transactions passed over.
    """
    problems: list[str] = []
    running: dict[AccountKey, int] = {}
    journal = _Journal(iter(transactions), problems)
    group: list[RecordedPosting] = []  # the postings of one transaction, in a row
    last_sequence = 0
    count = 0
    for posting in postings:
        count += 1
        if posting.sequence <= last_sequence:
            problems.append(f"posting sequence {posting.sequence} is not above {last_sequence}")
        last_sequence = posting.sequence
        balance = running.get(posting.account, 0) + posting.amount
        running[posting.account] = balance
        if balance != posting.balance_after:
            problems.append(
                f"{posting.account}: running balance after posting {posting.sequence} is "
                f"{posting.balance_after}, the postings sum to {balance}"
            )
        if group and group[0].transaction_id != posting.transaction_id:
            journal.check(group)
            group = []
        group.append(posting)
    if group:
        journal.check(group)
    journal.finish()

    accounts = set(balances) | set(running)
    problems.extend(
        f"{account}: stored balance {stored} differs from the sum of its postings "
        f"{computed} by {stored - computed}"
        for account in sorted(accounts, key=str)
        if (stored := balances.get(account, 0)) != (computed := running.get(account, 0))
    )

    problems.extend(_assets_that_do_not_sum_to_zero(running))
    problems.extend(_lots_that_disagree(lots, running))

    return VerificationReport(
        transactions=journal.seen,
        postings=count,
        accounts=len(accounts),
        problems=tuple(problems),
    )


_RECENT = 1000  # transactions remembered by verify_books to name postings that lie apart


class _Journal:
    """The transactions of :func:`verify_books`, read as their postings come."""

    def __init__(self, upcoming: Iterator[Transaction], problems: list[str]) -> None:
        self.upcoming = upcoming
        self.problems = problems
        # Transactions passed over while looking for the one of a group of
        # postings: none in books whose postings come in their transactions'
        # order, as every store's do.
        self.passed: dict[str, Transaction] = {}
        # The ids of the last transactions checked (a bounded few): postings
        # of one of them found again lie apart from the others of theirs.
        self.recent: dict[str, None] = {}
        self.seen = 0  # transactions read

    def check(self, recorded: list[RecordedPosting]) -> None:
        """Check *recorded*, the postings of one transaction that came together."""
        transaction_id = recorded[0].transaction_id
        transaction = self._find(transaction_id)
        if transaction is None:
            sequences = [p.sequence for p in recorded]
            self.problems.append(
                f"postings {sequences} belong to no transaction after those of the "
                "postings before them"
                if transaction_id in self.recent
                else f"postings {sequences} belong to no transaction"
            )
            return
        recent = self.recent
        recent[transaction_id] = None
        if len(recent) > _RECENT:
            del recent[next(iter(recent))]
        unbalanced = imbalance(recorded)
        if unbalanced:
            self.problems.append(f"transaction {transaction_id} does not balance: {unbalanced}")
        if _legs(transaction.postings) != _legs(recorded):
            self.problems.append(f"transaction {transaction_id}: recorded postings differ from it")

    def _find(self, transaction_id: str) -> Transaction | None:
        transaction = self.passed.pop(transaction_id, None)
        while transaction is None:
            candidate = next(self.upcoming, None)
            if candidate is None:
                return None
            self.seen += 1
            if candidate.id == transaction_id:
                return candidate
            self.passed[candidate.id] = candidate
        return transaction

    def finish(self) -> None:
        """Read the transactions left: they, and those passed over, have no postings."""
        for transaction in self.upcoming:
            self.seen += 1
            self.passed[transaction.id] = transaction
        self.problems.extend(
            f"transaction {transaction_id} has no postings" for transaction_id in self.passed
        )


def _assets_that_do_not_sum_to_zero(running: Mapping[AccountKey, int]) -> list[str]:
    per_asset: dict[Asset, int] = {}
    for account, balance in running.items():
        per_asset[account.asset] = per_asset.get(account.asset, 0) + balance
    return [
        f"{asset.code} does not sum to zero over all accounts: {total}"
        for asset, total in sorted(per_asset.items(), key=_by_code)
        if total
    ]


def _lots_that_disagree(lots: Iterable[Lot], running: Mapping[AccountKey, int]) -> list[str]:
    """Each wallet whose lots do not hold its (non-negative) balance, and each
    currency whose deferred revenue is not the value its lots have not
    recognised yet."""
    in_lots: dict[AccountKey, int] = {}
    deferred: dict[Asset, int] = {}
    for lot in lots:
        in_lots[lot.account] = in_lots.get(lot.account, 0) + lot.remaining
        value = lot.value
        if value is not None:
            owed = value.minor - lot.value_recognised
            deferred[value.currency] = deferred.get(value.currency, 0) + owed
    problems = [
        f"{account}: lots hold {in_lots.get(account, 0)} but the balance is "
        f"{running.get(account, 0)}"
        for account in sorted(
            set(in_lots) | {a for a in running if a.kind is AccountKind.WALLET}, key=str
        )
        if in_lots.get(account, 0) != max(running.get(account, 0), 0)
    ]
    in_books = {
        account.asset: -balance
        for account, balance in running.items()
        if account.kind is AccountKind.DEFERRED_REVENUE
    }
    problems.extend(
        f"deferred revenue in {asset.code} is {in_books.get(asset, 0)} but the lots have "
        f"{deferred.get(asset, 0)} of their value to recognise"
        for asset in sorted(set(in_books) | set(deferred), key=lambda a: a.code)
        if in_books.get(asset, 0) != deferred.get(asset, 0)
    )
    return problems


def _legs(postings: Iterable[Posting | RecordedPosting]) -> Counter[tuple[AccountKey, int]]:
    """Each (account, amount) leg of *postings*, with how often it occurs."""
    return Counter((posting.account, posting.amount) for posting in postings)


def _by_code(item: tuple[Asset, int]) -> tuple[str, str]:
    # A unit and a currency may share a code: the kind of asset breaks the tie.
    return item[0].code, type(item[0]).__name__
