"""The money side of the books, and the credits and debits services build on.

Every purchased lot carries the money paid for it (its *value*). The ledger
keeps that money in accounts of the currency, beside the coins, in the same
transactions, with the usual sign of double-entry books: a debit is positive,
a credit negative. So an asset or a cost (``CLEARING``, ``FEES``, ``LOSSES``)
holds a positive balance, and what the platform owes or has earned
(``DEFERRED_REVENUE``, ``TAX_PAYABLE``, ``REVENUE``, ``BREAKAGE``) a negative
one:

* a purchased lot of value *v* is credited with ``CLEARING +v`` and
  ``DEFERRED_REVENUE -v``: the platform owes the coins' value until they are
  used;
* a spend moves the value of the coins it consumed from ``DEFERRED_REVENUE``
  to ``REVENUE``, and an expiry to ``BREAKAGE``;
* a credit to a wallet in debt (after a chargeback) settles the debt first,
  and the value of the coins that settle it reduces ``LOSSES``.

Hence ``DEFERRED_REVENUE`` holds, negated, exactly the value not yet
recognised of the lots: :func:`~coinecon.ledger.verification.verify_books`
checks it.

The functions here run inside a unit of work their caller opened and
commits: :class:`~coinecon.ledger.wallets.Wallets` and
:class:`~coinecon.economy.CoinEconomy` build every command of theirs from
them, so that no rule of the ledger is written twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import final

import attrs

from coinecon._checks import instance_of, optional_instance_of
from coinecon.errors import InvalidAmountError, StorageError
from coinecon.ledger.journal import (
    AccountKey,
    AccountKind,
    Cause,
    Metadata,
    MetadataValue,
    Posting,
    Transaction,
    TransactionKind,
    check_rules,
)
from coinecon.ledger.lots import Lot, LotConsumption, LotOrigin, SpendOrder, take_from_lots
from coinecon.money.money import Currency, Money
from coinecon.money.units import Unit
from coinecon.ports import UnitOfWork

__all__ = [
    "Credited",
    "Debited",
    "Grant",
    "lot_value_legs",
    "merge_legs",
    "money_account",
    "recognition_legs",
    "record",
    "record_credit",
    "record_debit",
]


def money_account(kind: AccountKind, currency: Currency) -> AccountKey:
    """The platform's account of *kind* in *currency*, shared: keys are
    immutable, and the money accounts take postings on most commands."""
    found = (kind, currency.code)
    key = _MONEY_KEYS.get(found)
    if key is None or key.asset != currency:
        key = AccountKey.system(kind, currency)
        _MONEY_KEYS[found] = key
    return key


_MONEY_KEYS: dict[tuple[AccountKind, str], AccountKey] = {}


def merge_legs(postings: Iterable[Posting]) -> tuple[Posting, ...]:
    """*postings* with the legs of each account summed into one, in the order
    each account first appears; an account whose legs sum to zero is left
    out (a transaction names each account once, with a non-zero amount)."""
    sums: dict[AccountKey, int] = {}
    for posting in postings:
        sums[posting.account] = sums.get(posting.account, 0) + posting.amount
    return tuple(Posting(account, amount) for account, amount in sums.items() if amount)


def lot_value_legs(value: Money) -> list[Posting]:
    """What the credit of a lot bought for *value* posts: the money into
    ``CLEARING``, owed as ``DEFERRED_REVENUE`` (nothing for a zero value)."""
    if not value.minor:
        return []
    return [
        Posting(money_account(AccountKind.CLEARING, value.currency), value.minor),
        Posting(money_account(AccountKind.DEFERRED_REVENUE, value.currency), -value.minor),
    ]


def recognition_legs(consumed: Iterable[LotConsumption], into: AccountKind) -> list[Posting]:
    """The postings that recognise the value of *consumed* coins: per
    currency, ``DEFERRED_REVENUE`` debited and *into* (``REVENUE``,
    ``BREAKAGE``, ``LOSSES``) credited by the value consumed."""
    totals: dict[Currency, int] = {}
    for consumption in consumed:
        value = consumption.value
        if value is not None and value.minor:
            totals[value.currency] = totals.get(value.currency, 0) + value.minor
    legs: list[Posting] = []
    for currency, minor in totals.items():
        legs.append(Posting(money_account(AccountKind.DEFERRED_REVENUE, currency), minor))
        legs.append(Posting(money_account(into, currency), -minor))
    return legs


def record(
    uow: UnitOfWork, transaction: Transaction, known: dict[AccountKey, int] | None = None
) -> dict[AccountKey, int]:
    """Check *transaction* against the current balances and record it; return
    the balances after. *known* holds balances its caller read in this unit
    of work already."""
    ledger = uow.ledger
    accounts = [posting.account for posting in transaction.postings]
    if known:
        missing = [account for account in accounts if account not in known]
        balances = dict(known)
        if missing:
            balances.update(ledger.balances(missing))
    else:
        balances = ledger.balances(accounts)
    after = check_rules(transaction, balances)
    ledger.record(transaction, after)
    return after


@final
@attrs.frozen
class Grant:
    """Coins a credit puts in a wallet as one lot.

    Attributes:
        coins: how many (positive).
        origin: where they come from.
        value: the money paid for them (purchased coins only).
        expires_at: when they expire, if they do.
    """

    coins: int
    origin: LotOrigin = attrs.field(validator=instance_of(LotOrigin))
    value: Money | None = attrs.field(default=None, validator=optional_instance_of(Money))
    expires_at: datetime | None = None


@final
@attrs.frozen
class Credited:
    """What :func:`record_credit` recorded.

    Attributes:
        transaction: the transaction.
        lots: the new lots, one per grant, in order (a lot whose coins all
            went to settle a debt holds nothing).
        settled: what the credit took from the new lots to settle the
            wallet's debt.
        balances: the balances after, of every account the transaction touched.
    """

    transaction: Transaction
    lots: tuple[Lot, ...]
    settled: tuple[LotConsumption, ...]
    balances: dict[AccountKey, int]


def record_credit(
    uow: UnitOfWork,
    *,
    transaction_id: str,
    new_id: Callable[[], str],
    kind: TransactionKind,
    wallet: AccountKey,
    grants: Sequence[Grant],
    now: datetime,
    key: str,
    cause: Cause,
    metadata: Metadata = (),
    also: Iterable[Posting] = (),
) -> Credited:
    """Record a credit of *grants* to *wallet*: the coins out of the unit's
    issuance account, one lot per grant, and, for each grant with a value,
    its money into ``CLEARING`` and ``DEFERRED_REVENUE``; plus the postings
    *also* (merged with those, account by account).

    A wallet in debt is settled first, out of the grants in order: the coins
    that settle it are consumed from their new lots at once (recorded as the
    transaction's consumption), and their value recognised against
    ``LOSSES``. The caller sweeps lapsed lots first and commits.
    """
    unit = wallet.asset
    assert isinstance(unit, Unit)  # noqa: S101 (a wallet holds a unit)
    coins = sum(grant.coins for grant in grants)
    issuance = AccountKey.issuance(unit)
    legs: list[Posting] = [Posting(issuance, -coins), Posting(wallet, coins)]
    for grant in grants:
        if grant.value is not None:
            legs.extend(lot_value_legs(grant.value))
    legs.extend(also)
    # Every account but LOSSES (a debt's, rare) read at once.
    known = uow.ledger.balances(list({posting.account: None for posting in legs}))
    debt = max(0, -known[wallet])
    lots: list[Lot] = []
    settled: list[LotConsumption] = []
    for grant in grants:
        lot = Lot.new(
            new_id(),
            wallet,
            grant.origin,
            grant.coins,
            now,
            transaction_id,
            value=grant.value,
            expires_at=grant.expires_at,
        )
        if debt:
            taken = min(debt, grant.coins)
            lot, consumption = lot.take(taken)
            settled.append(consumption)
            debt -= taken
        lots.append(lot)
    legs.extend(recognition_legs(settled, AccountKind.LOSSES))
    transaction = Transaction(
        id=transaction_id,
        kind=kind,
        postings=merge_legs(legs),
        occurred_at=now,
        idempotency_key=key,
        cause=cause,
        metadata=metadata,
    )
    after = record(uow, transaction, known)
    for lot in lots:
        uow.lots.add(lot)
    if settled:
        uow.lots.record_consumption(transaction.id, settled)
    return Credited(transaction, tuple(lots), tuple(settled), after)


@final
@attrs.frozen
class Debited:
    """What :func:`record_debit` recorded.

    Attributes:
        transaction: the transaction.
        consumed: what it took from the wallet's lots, in order.
        debt: the coins it debited beyond them (the wallet's new debt).
        balances: the balances after, of every account the transaction touched.
    """

    transaction: Transaction
    consumed: tuple[LotConsumption, ...]
    debt: int
    balances: dict[AccountKey, int]


def record_debit(
    uow: UnitOfWork,
    *,
    transaction_id: str,
    kind: TransactionKind,
    wallet: AccountKey,
    coins: int,
    sink: AccountKey,
    order: SpendOrder,
    now: datetime,
    key: str,
    cause: Cause,
    metadata: Metadata | Mapping[str, MetadataValue] = (),
    first: Sequence[str] = (),
    legs_for: Callable[[Sequence[LotConsumption]], Iterable[Posting]] | None = None,
    allow_debt: bool = False,
) -> Debited:
    """Record a debit of *coins* from *wallet* into *sink*, taking them from
    the lots with ids *first* (those still open and not lapsed, in that
    order), then from the wallet's other lots in *order*.

    *legs_for* gives the transaction's other postings from what was consumed
    (the money side: revenue recognised, a refund's losses). With
    *allow_debt* (a refund or chargeback), coins beyond the wallet's lots
    become its debt; otherwise the rules refuse the debit
    (:class:`~coinecon.errors.InsufficientFunds`). The caller sweeps lapsed
    lots first and commits. *metadata* is a mapping or the pairs a
    :class:`~coinecon.ledger.journal.Transaction` keeps, checked once, as
    the transaction is built (see
    :func:`~coinecon.ledger.journal.metadata_pairs`).
    """
    if type(coins) is not int or coins <= 0:
        raise InvalidAmountError(f"coins to debit must be a positive int, got {coins!r}")
    repository = uow.lots
    taken: list[tuple[Lot, LotConsumption]] = []
    held = 0  # the coins of the lots taken first, as stored
    wanted = coins
    for lot_id in first:
        lot = repository.get(lot_id)
        if lot is None or lot.account != wallet or not lot.remaining or lot.is_expired(now):
            continue
        part = min(wanted, lot.remaining)
        held += lot.remaining
        taken.append(lot.take(part))
        wanted -= part
        if not wanted:
            break
    debt = 0
    if wanted:
        skip = {lot.id for lot, _ in taken}
        # The lots taken first may come again in spend order: read past them.
        others = [
            lot
            for lot in repository.spendable(wallet, order, now, wanted + held)
            if lot.id not in skip and not lot.is_expired(now)
        ]
        available = sum(lot.remaining for lot in others)
        if available >= wanted:
            taken.extend(take_from_lots(others, wanted, order, now=now))
        elif allow_debt:
            if available:
                taken.extend(take_from_lots(others, available, order, now=now))
            debt = wanted - available
        else:
            debt = wanted  # the rules refuse it below, unless the lots disagree
    consumed = tuple(consumption for _, consumption in taken)
    legs: list[Posting] = [Posting(wallet, -coins), Posting(sink, coins)]
    if legs_for is not None:
        legs.extend(legs_for(consumed))
    transaction = Transaction(
        id=transaction_id,
        kind=kind,
        postings=merge_legs(legs),
        occurred_at=now,
        idempotency_key=key,
        cause=cause,
        metadata=metadata,
    )
    after = record(uow, transaction)
    if debt and not allow_debt:
        raise StorageError(
            f"the lots of {wallet} disagree with its balance; run verify(): "
            f"{coins - debt} of {coins} coins found in lots"
        )
    for lot, _ in taken:
        repository.update(lot)
    if consumed:
        repository.record_consumption(transaction.id, consumed)
    return Debited(transaction, consumed, debt, after)
