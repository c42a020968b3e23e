"""What the parts of :class:`~coinecon.economy.CoinEconomy` share: its
settings, and the reading and writing of its records and events."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from coinecon.errors import NotFoundError, StorageError, ValidationError
from coinecon.ledger import entries
from coinecon.ledger.events import OutboxEvent
from coinecon.ledger.idempotency import canonical_json
from coinecon.ledger.journal import AccountKey, Posting, Transaction
from coinecon.ledger.lots import LotOrigin, SpendOrder
from coinecon.ledger.wallets import Wallets
from coinecon.money.money import Money
from coinecon.money.units import Unit
from coinecon.ports import UnitOfWork
from coinecon.pricing import PriceBook
from coinecon.recharge import disputes, profiles, purchases
from coinecon.recharge.disputes import Case
from coinecon.recharge.eligibility import EligibilityPolicy
from coinecon.recharge.gateway import PaymentEvent, PaymentEventType
from coinecon.recharge.limits import LimitPolicy
from coinecon.recharge.profiles import HolderProfile
from coinecon.recharge.purchases import Purchase
from coinecon.records import put

if TYPE_CHECKING:
    from dateutil.relativedelta import relativedelta

EVENT_KIND = "payment-event"
"""The record kind of provider events (owned by their charge's purchase)."""
MANY = 10_000
"""The most records read for one decision (the purchases of a budget's period)."""


@attrs.frozen
class Context:
    """An economy's settings and its access to records and events."""

    unit: Unit
    wallets: Wallets
    new_id: Callable[[], str]
    order: SpendOrder
    bonus_expiry: relativedelta | timedelta | None
    price_book: PriceBook
    eligibility: EligibilityPolicy
    limits: LimitPolicy
    validity: timedelta

    @staticmethod
    def purchase(uow: UnitOfWork, purchase_id: str) -> Purchase:
        """The purchase with this id."""
        record = uow.records.get(purchases.KIND, purchase_id)
        if record is None:
            raise NotFoundError(f"no purchase {purchase_id!r}")
        return Purchase.from_record(record)

    @staticmethod
    def save(uow: UnitOfWork, purchase: Purchase) -> Purchase:
        """Store *purchase* (new, or over the version of its record it was
        read at: a stale one is refused); return it at its new version."""
        record = purchase.record()
        put(uow.records, record)
        return attrs.evolve(purchase, version=record.version)

    @staticmethod
    def profile(uow: UnitOfWork, holder: str) -> HolderProfile:
        """*holder*'s profile (empty if none is stored)."""
        record = uow.records.get(profiles.KIND, holder)
        return HolderProfile(holder) if record is None else HolderProfile.from_record(record)

    @staticmethod
    def save_profile(uow: UnitOfWork, profile: HolderProfile, now: datetime) -> HolderProfile:
        """Store *profile* (new, or over the version it was read at);
        return it at its new version."""
        record = profile.record(now)
        put(uow.records, record)
        return attrs.evolve(profile, version=record.version, created_at=record.created_at)

    @staticmethod
    def case(uow: UnitOfWork, case_id: str) -> Case:
        """The case with this id."""
        record = uow.records.get(disputes.KIND, case_id)
        if record is None:
            raise NotFoundError(f"no case {case_id!r}")
        return Case.from_record(record)

    def announce(
        self,
        uow: UnitOfWork,
        event_type: str,
        now: datetime,
        payload: str,
        transaction_id: str | None = None,
        *,
        event_id: str | None = None,
    ) -> None:
        """Store an event in the outbox, delivered after the commit."""
        uow.outbox.add(
            OutboxEvent(
                id=event_id if event_id is not None else self.new_id(),
                type=event_type,
                occurred_at=now,
                payload=payload,
                transaction_id=transaction_id,
            )
        )

    def slices(
        self, uow: UnitOfWork, transaction: Transaction, debt: int, now: datetime
    ) -> list[entries.Grant]:
        """Grants that give back what *transaction* took: first *debt* free
        coins (they cancel the debt it made, if that is still owed), then one
        like each slice of a lot it consumed (its origin, value and expiry,
        if that has not passed)."""
        grants = [entries.Grant(debt, LotOrigin.ADJUSTMENT)] if debt else []
        for consumption in uow.lots.consumption(transaction.id):
            lot = uow.lots.get(consumption.lot_id)
            if lot is None:
                raise StorageError(f"lot {consumption.lot_id} is missing")
            value = consumption.value if consumption.value and consumption.value.minor else None
            expiry = lot.expires_at if lot.expires_at is not None and lot.expires_at > now else None
            grants.append(entries.Grant(consumption.amount, lot.origin, value, expiry))
        return grants

    def restoring(
        self, uow: UnitOfWork, transaction: Transaction, wallet: AccountKey, now: datetime
    ) -> tuple[list[entries.Grant], list[Posting]]:
        """What gives back what *transaction* took from *wallet*: its
        :meth:`slices`, and every other posting of it undone, less the money
        legs the credit of the grants posts itself."""
        grants = self.slices(uow, transaction, 0, now)
        legs = [Posting(p.account, -p.amount) for p in transaction.postings if p.account != wallet]
        legs.extend(uncredited(grants))
        return grants, legs


def uncredited(grants: list[entries.Grant]) -> list[Posting]:
    """The value legs that crediting *grants* posts itself, negated: for the
    ``also`` of a credit whose other legs already move that money."""
    return [
        Posting(p.account, -p.amount)
        for grant in grants
        if grant.value is not None
        for p in entries.lot_value_legs(grant.value)
    ]


def text(value: object, what: str) -> str:
    """*value*, if it is non-empty text of at most 1,000 characters."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{what} must be non-empty text, got {value!r}")
    if len(value) > 1000:
        raise ValidationError(f"{what} holds at most 1000 characters, got {len(value)}")
    return value


def event_data(event: PaymentEvent) -> dict[str, Any]:
    """A provider event as JSON."""
    return {
        "type": event.type.value,
        "charge_id": event.charge_id,
        "occurred_at": event.occurred_at.astimezone(UTC).isoformat(),
        "amount": None if event.amount is None else event.amount.minor,
        "currency": None if event.amount is None else event.amount.currency.code,
        "reason": event.reason,
    }


def event_of(event_id: str, data: Mapping[str, Any]) -> PaymentEvent:
    """The provider event :func:`event_data` wrote."""
    amount = data["amount"]
    return PaymentEvent(
        id=event_id,
        type=PaymentEventType(data["type"]),
        charge_id=data["charge_id"],
        occurred_at=datetime.fromisoformat(data["occurred_at"]),
        amount=None if amount is None else Money.from_minor(amount, data["currency"]),
        reason=data["reason"],
    )


def purchase_event(purchase: Purchase) -> str:
    """The payload of a purchase's events."""
    return canonical_json(
        {
            "purchase": purchase.id,
            "holder": purchase.holder,
            "status": purchase.status.value,
            "reason": purchase.reason,
            "coins": purchase.coins.amount,
            "bonus_coins": purchase.bonus_coins.amount,
            "total": purchase.total.minor,
            "currency": purchase.total.currency.code,
        }
    )
