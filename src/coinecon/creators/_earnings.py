"""Converting creators' earnings and paying them out, for
:class:`~coinecon.economy.CoinEconomy`: the checks, the transactions, the
payout records and what the provider's answers do to them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import attrs

from coinecon.creators import payouts as payout_records
from coinecon.creators import profiles
from coinecon.creators.conversion import ConversionRate, ConversionReceipt
from coinecon.creators.payout_gateway import PayoutOutcome, PayoutStatus
from coinecon.creators.payouts import Payout, PayoutPolicy
from coinecon.errors import (
    InsufficientFunds,
    InvalidAmountError,
    LimitExceeded,
    NotAvailableError,
    NotEligibleError,
    NotFoundError,
    ValidationError,
)
from coinecon.ledger import entries
from coinecon.ledger.idempotency import IdempotencyRecord, canonical_json
from coinecon.ledger.journal import (
    PLATFORM,
    AccountKey,
    AccountKind,
    Cause,
    Posting,
    Transaction,
    TransactionKind,
    metadata_pairs,
)
from coinecon.money.money import Currency, Money
from coinecon.money.units import Unit
from coinecon.ports import UnitOfWork
from coinecon.records import Record, put

__all__ = ["Earnings", "payable_account"]

MANY = 10_000
"""The most payouts read for one cap."""


def payable_account(creator: str, currency: Currency) -> AccountKey:
    """*creator*'s payable account in *currency*."""
    return AccountKey(AccountKind.CREATOR_PAYABLE, creator, currency)


def _payout_legs(creator: str, amount: Money, fee: Money, sign: int) -> tuple[Posting, ...]:
    """A payout's postings (*sign* 1), or those that give it back (-1): the
    amount out of the creator's payable account, what is sent into clearing,
    the fee into revenue."""
    currency = amount.currency
    legs = [
        Posting(payable_account(creator, currency), sign * amount.minor),
        Posting(
            entries.money_account(AccountKind.CLEARING, currency), -sign * (amount - fee).minor
        ),
    ]
    if fee.minor:
        legs.append(
            Posting(entries.money_account(AccountKind.REVENUE, currency), -sign * fee.minor)
        )
    return tuple(legs)


class Earnings:
    """Converts creators' earnings into money owed, and pays it out."""

    def __init__(
        self,
        *,
        creator_unit: Unit,
        rate: ConversionRate | None,
        policy: PayoutPolicy,
        new_id: Callable[[], str],
        announce: Callable[..., None],
        tallies: int = 1,
    ) -> None:
        self.tallies = tallies
        self.creator_unit = creator_unit
        self.rate = rate
        self.policy = policy
        self.new_id = new_id
        self.announce = announce

    # -- conversion ------------------------------------------------------------------

    def convert(
        self,
        uow: UnitOfWork,
        *,
        creator: str,
        currency: Currency,
        units: int | None,
        key: str,
        digest: str,
        now: datetime,
    ) -> ConversionReceipt:
        """Convert *units* (``None``: all that may be) of *creator*'s
        earnings into money owed in *currency*, in one transaction."""
        rate = self.rate
        if rate is None:
            raise NotAvailableError("this economy has no conversion rate: pass conversion_rate=")
        unit = self.creator_unit
        earned = AccountKey.earnings(creator, unit)
        # The balance first, then what is held: a gift that lands between the
        # two reads is then counted as held and not as earned, so a store
        # whose reads do not take turns (PostgreSQL) converts less, never
        # earnings still held.
        balance = uow.ledger.balances([earned])[earned]
        kept = [profiles.load_tally(uow, creator, tally) for tally in range(self.tallies)]
        held = sum(tally.holding(now) for tally in kept)
        free = balance - held
        wanted = free if units is None else units
        if wanted > free or wanted <= 0:
            raise InsufficientFunds(
                f"insufficient funds: {creator} may convert {max(free, 0)} of their {balance} "
                f"{unit.code} now ({held} still held)",
                account=earned,
                balance=max(free, 0),
                requested=wanted,
            )
        conversion = rate.convert(wanted, currency, now)
        if not conversion.units or not conversion.money.minor:
            raise InvalidAmountError(
                f"{wanted} {unit.code} are worth less than one minor unit of {currency.code}: "
                f"convert at least {rate.fewest(currency, now)}"
            )
        money = conversion.money
        payable = payable_account(creator, currency)
        legs = [
            Posting(earned, -conversion.units),
            Posting(AccountKey.issuance(unit), conversion.units),
        ]
        if money.minor:
            legs += [
                Posting(entries.money_account(AccountKind.CREATOR_SHARE, currency), money.minor),
                Posting(payable, -money.minor),
            ]
        transaction_id = self.new_id()
        after = entries.record(
            uow,
            Transaction(
                id=transaction_id,
                kind=TransactionKind.CONVERSION,
                postings=tuple(legs),
                occurred_at=now,
                idempotency_key=key,
                cause=Cause("conversion", transaction_id),
            ),
        )
        for tally in kept:
            if tally.held and tally.holding(now) != sum(n for _, n in tally.held):
                profiles.save(uow, tally.release(now), now)
        receipt = ConversionReceipt(
            id=transaction_id,
            creator=creator,
            units=unit(conversion.units),
            money=money,
            left=unit(conversion.left),
            rate=conversion.rate,
            earnings=unit(after[earned]),
            payable=Money.from_minor(
                -(after[payable] if payable in after else self._owed(uow, payable)), currency
            ),
            converted_at=now,
        )
        result = canonical_json(receipt.to_data())
        self.announce(
            uow, "earnings.converted", now, result, transaction_id, event_id=transaction_id
        )
        uow.idempotency.add(IdempotencyRecord(key, digest, result, now))
        return receipt

    @staticmethod
    def _owed(uow: UnitOfWork, payable: AccountKey) -> int:
        return uow.ledger.balances([payable])[payable]

    # -- payouts ---------------------------------------------------------------------

    def open_payout(
        self,
        uow: UnitOfWork,
        *,
        creator: str,
        amount: Money,
        destination: str,
        key: str,
        digest: str,
        now: datetime,
    ) -> Payout:
        """Check and record a payout of *amount* to *creator*, its money out
        of their payable account, in one transaction (the caller asks the
        provider after the commit)."""
        policy = self.policy
        profile = profiles.load(uow, creator)
        if profile.suspended is not None:
            raise NotEligibleError(
                f"{creator} is suspended: {profile.suspended}", holder=creator, reason="suspended"
            )
        if not policy.schedule.is_open_at(now):
            raise NotAvailableError(f"payouts are not open at {now.isoformat()}")
        currency = amount.currency
        payable = payable_account(creator, currency)
        owed = -uow.ledger.balances([payable])[payable]
        least = policy.least(currency)
        if least is not None and amount < least:
            raise LimitExceeded(
                f"a payout is at least {least}, not {amount}",
                limit="payout-minimum",
                allowed=least,
                remaining=Money.from_minor(max(owed, 0), currency),
            )
        cap = policy.cap(currency)
        if cap is not None:
            since = cap.period_start(now)
            paid = sum(
                (
                    p.amount
                    for p in self.payouts_since(uow, creator, since)
                    if p.amount.currency == currency and not p.status.returned
                ),
                Money.from_minor(0, currency),
            )
            left = cap.amount - paid
            if amount > left:
                raise LimitExceeded(
                    f"payouts are capped at {cap.amount} a {cap.period.value.removesuffix('ly')}"
                    f"; {left} remains of it",
                    limit="payout-cap",
                    allowed=cap.amount,
                    remaining=left,
                )
        fee = policy.fee_on(amount)
        if fee >= amount:
            raise ValidationError(f"a payout of {amount} would all go in its fee of {fee}")
        payout_id = self.new_id()
        transaction_id = self.new_id()
        net = amount - fee
        entries.record(
            uow,
            Transaction(
                id=transaction_id,
                kind=TransactionKind.PAYOUT,
                postings=_payout_legs(creator, amount, fee, 1),
                occurred_at=now,
                idempotency_key=key,
                cause=Cause("payout", payout_id),
                metadata=metadata_pairs(
                    {"destination": destination, "fee": fee.minor, "net": net.minor}
                ),
            ),
        )
        payout = Payout(
            id=payout_id,
            creator=creator,
            amount=amount,
            fee=fee,
            destination=destination,
            status=PayoutStatus.REQUESTED,
            idempotency_key=key,
            created_at=now,
            updated_at=now,
            transaction_id=transaction_id,
        )
        payout = self.save(uow, payout)
        uow.records.add(Record.new(payout_records.OPEN_KIND, payout_id, PLATFORM, now, {}))
        self.announce(uow, "payout.requested", now, self.event(payout), transaction_id)
        uow.idempotency.add(
            IdempotencyRecord(key, digest, canonical_json({"payout": payout_id}), now)
        )
        return payout

    def apply(
        self,
        uow: UnitOfWork,
        payout: Payout,
        status: PayoutStatus,
        now: datetime,
        *,
        reference: str | None = None,
        reason: str | None = None,
    ) -> Payout | None:
        """Move *payout* to *status* (what the provider said); return it as
        it stands after, or ``None`` if that changes nothing (it is there or
        past it already). A failure or reversal gives its money back."""
        current = payout.status
        if current.returned or current is status:
            return None
        if status is PayoutStatus.SENT and current is not PayoutStatus.REQUESTED:
            return None
        if status is PayoutStatus.FAILED and current is PayoutStatus.SETTLED:
            status = PayoutStatus.REVERSED  # it failed after it arrived: it came back
        returned_by = None
        if status.returned:
            returned_by = self._give_back(uow, payout, now)
        payout = self.save(
            uow,
            attrs.evolve(
                payout,
                status=status,
                updated_at=now,
                reference=reference if reference is not None else payout.reference,
                reason=reason if status.returned else payout.reason,
                returned_by=returned_by,
            ),
        )
        if current.open and not status.open:
            uow.records.remove(payout_records.OPEN_KIND, payout.id)
        self.announce(uow, f"payout.{status.value}", now, self.event(payout), returned_by)
        return payout

    def answer(
        self, uow: UnitOfWork, payout: Payout, outcome: PayoutOutcome | None, now: datetime
    ) -> Payout | None:
        """Apply the provider's *outcome* (``None``: it never received the
        payout, which then fails)."""
        if outcome is None:
            if payout.status is not PayoutStatus.REQUESTED:
                return None
            return self.apply(
                uow, payout, PayoutStatus.FAILED, now, reason="the provider never received it"
            )
        return self.apply(
            uow, payout, outcome.status, now, reference=outcome.reference, reason=outcome.reason
        )

    def _give_back(self, uow: UnitOfWork, payout: Payout, now: datetime) -> str:
        transaction_id = self.new_id()
        entries.record(
            uow,
            Transaction(
                id=transaction_id,
                kind=TransactionKind.PAYOUT,
                postings=_payout_legs(payout.creator, payout.amount, payout.fee, -1),
                occurred_at=now,
                idempotency_key=f"payout-return:{payout.id}",
                cause=Cause("payout", payout.id),
                metadata=metadata_pairs({"returned": True}),
            ),
        )
        return transaction_id

    @staticmethod
    def save(uow: UnitOfWork, payout: Payout) -> Payout:
        """Store *payout* (new, or over the version it was read at)."""
        record = payout.record()
        put(uow.records, record)
        return attrs.evolve(payout, version=record.version)

    @staticmethod
    def load(uow: UnitOfWork, payout_id: str) -> Payout:
        """The payout with this id."""
        record = uow.records.get(payout_records.KIND, payout_id)
        if record is None:
            raise NotFoundError(f"no payout {payout_id!r}")
        return Payout.from_record(record)

    @staticmethod
    def payouts_since(uow: UnitOfWork, creator: str, since: datetime) -> list[Payout]:
        """*creator*'s payouts asked for since *since*."""
        return [
            Payout.from_record(record)
            for record in uow.records.of_owner(
                payout_records.KIND, creator, since=since, limit=MANY
            )
        ]

    @staticmethod
    def event(payout: Payout) -> str:
        """The payload of a payout's events."""
        return canonical_json(
            {
                "payout": payout.id,
                "creator": payout.creator,
                "currency": payout.amount.currency.code,
                "amount": payout.amount.minor,
                "fee": payout.fee.minor,
                "status": payout.status.value,
                "reference": payout.reference,
                "reason": payout.reason,
            }
        )
