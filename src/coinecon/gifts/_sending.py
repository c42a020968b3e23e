"""Sending a gift: the checks, the one transaction, the receipt and its events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import attrs

from coinecon.creators import profiles as creator_profiles
from coinecon.creators.payouts import PayoutPolicy
from coinecon.creators.profiles import CreatorProfile
from coinecon.creators.share import RevenueShare
from coinecon.errors import NotAvailableError, NotEligibleError
from coinecon.gifts.catalog import Gift, GiftCatalog
from coinecon.gifts.receipts import GiftPolicy, GiftReceipt
from coinecon.ledger import entries
from coinecon.ledger.idempotency import IdempotencyRecord, canonical_json
from coinecon.ledger.journal import (
    AccountKey,
    AccountKind,
    Cause,
    Posting,
    Transaction,
    TransactionKind,
    metadata_pairs,
)
from coinecon.ledger.lots import LotConsumption
from coinecon.money.money import Money
from coinecon.money.units import Unit
from coinecon.ports import UnitOfWork
from coinecon.recharge._context import Context
from coinecon.recharge.profiles import HolderProfile
from coinecon.recharge.purchases import Purchase

__all__ = ["Gifting", "Send"]


@attrs.frozen
class Send:
    """One checked request to send a gift."""

    key: str
    digest: str
    sender: str
    creator: str
    gift: Gift
    catalog_version: int
    quantity: int
    context: str
    region: str


class Gifting:
    """Sends gifts for :class:`~coinecon.economy.CoinEconomy`."""

    def __init__(
        self,
        ctx: Context,
        *,
        creator_unit: Unit,
        share: RevenueShare,
        policy: GiftPolicy,
        payouts: PayoutPolicy,
    ) -> None:
        self.ctx = ctx
        self.creator_unit = creator_unit
        self.share = share
        self.policy = policy
        self.payouts = payouts

    def check_sender(self, send: Send, profile: HolderProfile, now: datetime) -> None:
        """Refuse a gift the sender may not send now (nothing is written)."""
        gift, sender = send.gift, send.sender
        regions = self.policy.regions
        if regions is not None and send.region not in regions:
            raise NotEligibleError(
                f"gifts are not offered in {send.region}", holder=sender, reason="region"
            )
        if not gift.offered_in(send.region):
            raise NotAvailableError(f"gift {gift.id!r} is not offered in {send.region}")
        if not gift.is_available_at(now):
            raise NotAvailableError(f"gift {gift.id!r} is not available at {now.isoformat()}")
        if gift.min_age is not None:
            attestation = profile.attestation
            if (
                attestation is None
                or attestation.adult_from > now.date()
                or attestation.majority < gift.min_age
            ):
                raise NotEligibleError(
                    f"gift {gift.id!r} is for senders of {gift.min_age} or older, and "
                    f"{sender}'s age is not attested to be",
                    holder=sender,
                    reason="age",
                )
        if sender == send.creator and not self.policy.allow_self_gift:
            raise NotEligibleError(
                f"{sender} may not send a gift to themselves", holder=sender, reason="self-gift"
            )

    def check_creator(self, creator: CreatorProfile, holder: HolderProfile, now: datetime) -> None:
        """Refuse a creator who may not receive gifts now, saying why."""
        name = creator.creator
        if not creator.receiving:
            raise NotEligibleError(
                f"{name} does not receive gifts", holder=name, reason="not-receiving"
            )
        if creator.suspended is not None:
            raise NotEligibleError(
                f"{name} is suspended: {creator.suspended}", holder=name, reason="suspended"
            )
        regions = self.policy.regions
        if creator.region is None or (regions is not None and creator.region not in regions):
            raise NotEligibleError(
                f"{name} is not in a region where gifts are offered", holder=name, reason="region"
            )
        if self.policy.creator_must_be_adult:
            attestation = holder.attestation
            if attestation is None or not attestation.covers(
                creator.region, now.date(), self.ctx.eligibility
            ):
                raise NotEligibleError(
                    f"{name} is not attested to be of age in {creator.region}",
                    holder=name,
                    reason="not-adult",
                )

    def send(
        self,
        uow: UnitOfWork,
        send: Send,
        sender_profile: HolderProfile,
        creator: CreatorProfile,
        now: datetime,
    ) -> GiftReceipt:
        """Record the gift in one transaction with its creator's earnings,
        the creator's new carry, the receipt and the events (the caller
        checked both sides, and commits)."""
        del sender_profile  # checked by the caller
        unit, creator_unit = self.ctx.unit, self.creator_unit
        gift = send.gift
        coins = gift.price * send.quantity
        rate = self.share.rate_for(send.creator, now)
        split = self.share.split(coins, rate, creator.carry)
        wallet = AccountKey.wallet(send.sender, unit)
        self.ctx.wallets.sweep_within(uow, wallet, now)
        earnings: list[Posting] = []
        if split.earned:
            earnings = [
                Posting(AccountKey.issuance(creator_unit), -split.earned),
                Posting(AccountKey.earnings(send.creator, creator_unit), split.earned),
            ]
        recognised: list[LotConsumption] = []

        def legs_for(consumed: Sequence[LotConsumption]) -> list[Posting]:
            recognised.extend(consumed)
            return [*entries.recognition_legs(consumed, AccountKind.REVENUE), *earnings]

        transaction_id = self.ctx.new_id()
        debited = entries.record_debit(
            uow,
            transaction_id=transaction_id,
            kind=TransactionKind.GIFT,
            wallet=wallet,
            coins=coins,
            sink=AccountKey.spent(unit),
            order=self.ctx.order,
            now=now,
            key=send.key,
            cause=Cause("gift", gift.id),
            metadata=metadata_pairs(
                {
                    "creator": send.creator,
                    "gift": gift.id,
                    "quantity": send.quantity,
                    "price": gift.price,
                    "catalog_version": send.catalog_version,
                    "context": send.context,
                    "rate": f"{rate.numerator}/{rate.denominator}",
                }
            ),
            legs_for=legs_for,
        )
        value: dict[str, int] = {}
        for consumption in recognised:
            money = consumption.value
            if money is not None and money.minor:
                code = money.currency.code
                value[code] = value.get(code, 0) + money.minor
        receipt = GiftReceipt(
            id=debited.transaction.id,
            sender=send.sender,
            creator=send.creator,
            gift=gift.id,
            name=gift.name,
            quantity=send.quantity,
            price=gift.price,
            catalog_version=send.catalog_version,
            coins=unit(coins),
            context=send.context,
            rate=rate,
            creator_share=split.creator_share,
            platform_share=split.platform_share,
            earned=creator_unit(split.earned),
            carry=split.carry,
            value=tuple(Money.from_minor(minor, code) for code, minor in sorted(value.items())),
            balance=unit(debited.balances[wallet]),
            sent_at=now,
        )
        changed = attrs.evolve(creator, carry=split.carry, gifts=creator.gifts + 1)
        if split.earned and self.payouts.holds:
            changed = changed.hold(split.earned, self.payouts.released_at(now), now)
        creator_profiles.save(uow, changed, now)
        result = receipt.to_json()
        self.ctx.announce(uow, "gift.sent", now, result, receipt.id, event_id=receipt.id)
        self.ctx.announce(
            uow,
            "gift.received",
            now,
            canonical_json(
                {
                    "creator": send.creator,
                    "sender": send.sender,
                    "gift": gift.id,
                    "name": gift.name,
                    "quantity": send.quantity,
                    "display": dict(gift.display),
                    "earned": split.earned,
                    "creator_unit": creator_unit.code,
                    "context": send.context,
                    "gift_id": receipt.id,
                }
            ),
            receipt.id,
        )
        uow.idempotency.add(IdempotencyRecord(send.key, send.digest, result, now))
        return receipt

    def claw_back(
        self, uow: UnitOfWork, purchase: Purchase, debt: int, chargeback_id: str, now: datetime
    ) -> None:
        """After a chargeback of *purchase* left *debt* coins of debt (coins
        already spent): with the payout policy's ``clawback``, take back the
        earnings that the gifts made of those coins bought with it, as far
        as the earnings are still held (the latest gifts first)."""
        if not self.payouts.clawback or not self.payouts.holds:
            return
        lots = set(purchase.lot_ids)
        wallet = AccountKey.wallet(purchase.holder, self.ctx.unit)
        gifts = uow.ledger.history(
            wallet, limit=MANY, kinds=(TransactionKind.GIFT,), since=purchase.created_at
        )
        owed: dict[str, int] = {}  # creator: units their gifts made of the debt's coins
        left = debt
        for entry in gifts:
            if not left:
                break
            coins = sum(
                c.amount for c in uow.lots.consumption(entry.transaction_id) if c.lot_id in lots
            )
            if not coins:
                continue
            gift = uow.ledger.get(entry.transaction_id)
            if gift is None:  # pragma: no cover (read from the same books)
                continue
            for posting in gift.postings:
                if posting.account.kind is AccountKind.EARNINGS:
                    part = min(coins, left)
                    earned = posting.amount * part // -entry.amount
                    owed[posting.account.owner] = owed.get(posting.account.owner, 0) + earned
                    left -= part
        for creator, units in sorted(owed.items()):
            profile = creator_profiles.load(uow, creator)
            changed, taken = profile.claw_back(units, now)
            if not taken:
                continue
            creator_profiles.save(uow, changed, now)
            transaction_id = self.ctx.new_id()
            earnings = AccountKey.earnings(creator, self.creator_unit)
            entries.record(
                uow,
                Transaction(
                    id=transaction_id,
                    kind=TransactionKind.CHARGEBACK,
                    postings=(
                        Posting(earnings, -taken),
                        Posting(AccountKey.issuance(self.creator_unit), taken),
                    ),
                    occurred_at=now,
                    idempotency_key=f"clawback:{chargeback_id}:{creator}",
                    cause=Cause("purchase", purchase.id),
                    metadata=metadata_pairs({"chargeback": chargeback_id}),
                ),
            )
            self.ctx.announce(
                uow,
                "earnings.clawed_back",
                now,
                canonical_json(
                    {
                        "creator": creator,
                        "units": taken,
                        "unit": self.creator_unit.code,
                        "purchase": purchase.id,
                        "chargeback": chargeback_id,
                    }
                ),
                transaction_id,
            )


MANY = 10_000
"""The most gifts read back for one chargeback."""


def catalog_gift(catalog: GiftCatalog, gift: str | Gift) -> Gift:
    """The catalog's gift *gift* (an id, or a :class:`Gift` that must be the
    catalog's own, price and all)."""
    if isinstance(gift, Gift):
        current = catalog.get(gift.id)
        if current != gift:
            raise NotAvailableError(
                f"gift {gift.id!r} changed in the catalog (now version {catalog.version}, "
                f"{current.price} coins): show the sender the new one"
            )
        return current
    return catalog.get(gift)
