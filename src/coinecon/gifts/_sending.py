"""Sending a gift: the checks, the one transaction, the receipt and its events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs

from coinecon.creators import profiles as creator_profiles
from coinecon.creators.payouts import PayoutPolicy
from coinecon.creators.profiles import CreatorProfile
from coinecon.creators.share import RevenueShare
from coinecon.errors import NotAvailableError, NotEligibleError
from coinecon.gifts import inventory as inventory_records
from coinecon.gifts.catalog import Gift, GiftCatalog, StoreItem
from coinecon.gifts.inventory import ItemReceipt
from coinecon.gifts.receipts import GiftPolicy, GiftReceipt
from coinecon.ledger import entries
from coinecon.ledger.idempotency import IdempotencyRecord, canonical_json
from coinecon.ledger.journal import (
    AccountKey,
    AccountKind,
    Cause,
    MetadataValue,
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
from coinecon.records import Record

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
        self._check_age(sender, gift.id, gift.min_age, profile, now)
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
        own = creator.rate_at(now)
        rate = self.share.rate_for(send.creator, now) if own is None else own
        tally = creator_profiles.tally_of(send.sender, self.policy.tallies)
        kept = creator_profiles.load_tally(uow, send.creator, tally) if tally else creator
        split = self.share.split(coins, rate, kept.carry)
        earnings: list[Posting] = []
        if split.earned:
            earnings = [
                Posting(AccountKey.issuance(creator_unit), -split.earned),
                Posting(AccountKey.earnings(send.creator, creator_unit), split.earned),
            ]
        debited, value = self.spend(
            uow,
            holder=send.sender,
            coins=coins,
            kind=TransactionKind.GIFT,
            key=send.key,
            cause=Cause("gift", gift.id),
            metadata={
                "sender": send.sender,
                "creator": send.creator,
                "gift": gift.id,
                "quantity": send.quantity,
                "price": gift.price,
                "catalog_version": send.catalog_version,
                "context": send.context,
                "rate": f"{rate.numerator}/{rate.denominator}",
                **({"tally": tally} if tally else {}),
            },
            also=earnings,
            now=now,
        )
        wallet = AccountKey.wallet(send.sender, unit)
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
            value=value,
            balance=unit(debited.balances[wallet]),
            sent_at=now,
        )
        changed = attrs.evolve(kept, carry=split.carry, gifts=kept.gifts + 1)
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

    def spend(
        self,
        uow: UnitOfWork,
        *,
        holder: str,
        coins: int,
        kind: TransactionKind,
        key: str,
        cause: Cause,
        metadata: dict[str, MetadataValue],
        also: list[Posting],
        now: datetime,
    ) -> tuple[entries.Debited, tuple[Money, ...]]:
        """Take *coins* from *holder*'s lots in one transaction that
        recognises the money they were bought for as revenue, with *also*;
        return it and that money, per currency."""
        wallet = AccountKey.wallet(holder, self.ctx.unit)
        self.ctx.wallets.sweep_within(uow, wallet, now)
        recognised: list[LotConsumption] = []

        def legs_for(consumed: Sequence[LotConsumption]) -> list[Posting]:
            recognised.extend(consumed)
            return [*entries.recognition_legs(consumed, AccountKind.REVENUE), *also]

        debited = entries.record_debit(
            uow,
            transaction_id=self.ctx.new_id(),
            kind=kind,
            wallet=wallet,
            coins=coins,
            sink=AccountKey.spent(self.ctx.unit),
            order=self.ctx.order,
            now=now,
            key=key,
            cause=cause,
            metadata=metadata,  # checked once, as the transaction is built
            legs_for=legs_for,
        )
        value: dict[str, int] = {}
        for consumption in recognised:
            money = consumption.value
            if money is not None and money.minor:
                code = money.currency.code
                value[code] = value.get(code, 0) + money.minor
        return debited, tuple(Money.from_minor(v, code) for code, v in sorted(value.items()))

    def buy_item(
        self,
        uow: UnitOfWork,
        *,
        holder: str,
        item: StoreItem,
        catalog_version: int,
        quantity: int,
        region: str,
        key: str,
        digest: str,
        now: datetime,
    ) -> ItemReceipt:
        """Check and record *holder*'s purchase of *quantity* of *item* with
        coins, their inventory and the receipt (the caller commits)."""
        profile = self.ctx.profile(uow, holder)
        regions = self.policy.regions
        if regions is not None and region not in regions:
            raise NotEligibleError(
                f"the store is not offered in {region}", holder=holder, reason="region"
            )
        if not item.offered_in(region):
            raise NotAvailableError(f"item {item.id!r} is not offered in {region}")
        if not item.is_available_at(now):
            raise NotAvailableError(f"item {item.id!r} is not available at {now.isoformat()}")
        self._check_age(holder, item.id, item.min_age, profile, now)
        inventory = inventory_records.load(uow, holder)
        if not item.consumable and (quantity > 1 or inventory.count(item.id)):
            raise NotEligibleError(
                f"{holder} has {item.id!r} already, or asks for more than one: it is kept "
                "once bought",
                holder=holder,
                reason="owned",
            )
        coins = item.price * quantity
        debited, value = self.spend(
            uow,
            holder=holder,
            coins=coins,
            kind=TransactionKind.SPEND,
            key=key,
            cause=Cause("item", item.id),
            metadata={
                "item": item.id,
                "quantity": quantity,
                "price": item.price,
                "catalog_version": catalog_version,
            },
            also=[],
            now=now,
        )
        changed = inventory.changed(item.id, quantity)
        if not item.consumable:
            changed = changed.keep(item.id)
        inventory = inventory_records.save(uow, changed, now)
        unit = self.ctx.unit
        receipt = ItemReceipt(
            id=debited.transaction.id,
            holder=holder,
            item=item.id,
            name=item.name,
            quantity=quantity,
            price=item.price,
            catalog_version=catalog_version,
            coins=unit(coins),
            value=value,
            balance=unit(debited.balances[AccountKey.wallet(holder, unit)]),
            count=inventory.count(item.id),
            bought_at=now,
        )
        result = canonical_json(receipt.to_data())
        self.ctx.announce(uow, "item.bought", now, result, receipt.id, event_id=receipt.id)
        uow.idempotency.add(IdempotencyRecord(key, digest, result, now))
        return receipt

    def _check_age(
        self, holder: str, what: str, min_age: int | None, profile: HolderProfile, now: datetime
    ) -> None:
        if min_age is None:
            return
        attestation = profile.attestation
        if (
            attestation is None
            or attestation.adult_from > now.date()
            or attestation.majority < min_age
        ):
            raise NotEligibleError(
                f"{what!r} is for holders of {min_age} or older, and {holder}'s age is not "
                "attested to be",
                holder=holder,
                reason="age",
            )

    def claw_back(
        self, uow: UnitOfWork, purchase: Purchase, debt: int, chargeback_id: str, now: datetime
    ) -> None:
        """After a chargeback of *purchase* left *debt* coins of debt (coins
        already spent): with the payout policy's ``clawback``, take back the
        earnings that the gifts of those coins made, as far as those
        earnings are still held (the latest gifts first).

        A gift's coins bought with the purchase are charged back once, over
        however many chargebacks; the units of its first *n* such coins are
        its earnings times *n* over its coins, rounded down (in the
        creator's favour), so that the parts of several chargebacks add up
        exactly. What each chargeback took is kept, for its reversal
        (:meth:`give_back`)."""
        if not self.payouts.clawback or not self.payouts.holds:
            return
        lots = set(purchase.lot_ids)
        wallet = AccountKey.wallet(purchase.holder, self.ctx.unit)
        gifts = uow.ledger.history(
            wallet, limit=MANY, kinds=(TransactionKind.GIFT,), since=purchase.created_at
        )
        parts: dict[str, list[Any]] = {}  # gift: [coins, units taken, creator, released at]
        profiles: dict[tuple[str, int], CreatorProfile] = {}
        left = debt
        for entry in gifts:
            if not left:
                break
            coins = sum(
                c.amount for c in uow.lots.consumption(entry.transaction_id) if c.lot_id in lots
            )
            before = uow.records.get(CLAWBACK_KIND, entry.transaction_id)
            counted, clawed = (
                (0, 0) if before is None else (before.data["coins"], before.data["units"])
            )
            part = min(coins - counted, left)
            if part <= 0:
                continue
            left -= part
            gift = uow.ledger.get(entry.transaction_id)
            assert gift is not None  # noqa: S101 (read from the same books)
            earned = next(
                (p for p in gift.postings if p.account.kind is AccountKind.EARNINGS), None
            )
            taken, creator, released = 0, "", self.payouts.released_at(entry.occurred_at)
            found = dict(gift.metadata).get("tally")
            tally = found if type(found) is int else 0
            if earned is not None:
                creator = earned.account.owner
                gift_coins = -entry.amount
                due = (
                    earned.amount * (counted + part) // gift_coins
                    - earned.amount * counted // gift_coins
                )
                profile = profiles.get((creator, tally)) or creator_profiles.load_tally(
                    uow, creator, tally
                )
                profiles[creator, tally], taken = profile.take_held(released, due, now)
            so_far = {"coins": counted + part, "units": clawed + taken}
            if before is None:
                uow.records.add(
                    Record.new(CLAWBACK_KIND, entry.transaction_id, purchase.id, now, so_far)
                )
            else:
                uow.records.update(before.changed(so_far))
            parts[entry.transaction_id] = [part, taken, creator, released.isoformat()] + (
                [tally] if tally else []
            )
        totals: dict[str, int] = {}
        for _, taken, creator, *_ in parts.values():
            if taken:
                totals[creator] = totals.get(creator, 0) + taken
        for (creator, _), profile in profiles.items():
            if creator in totals:
                creator_profiles.save(uow, profile, now)
        for creator, units in sorted(totals.items()):
            self._move_earnings(
                uow,
                creator,
                -units,
                TransactionKind.CHARGEBACK,
                f"clawback:{chargeback_id}:{creator}",
                purchase,
                chargeback_id,
                now,
                "earnings.clawed_back",
            )
        if parts:
            uow.records.add(
                Record.new(CLAWED_KIND, chargeback_id, purchase.id, now, {"gifts": parts})
            )

    def give_back(
        self, uow: UnitOfWork, purchase: Purchase, chargeback_id: str, now: datetime
    ) -> None:
        """After the chargeback *chargeback_id* of *purchase* was reversed:
        give back what it clawed back (held again until it would have been
        released), and let its gifts' coins be charged back again."""
        taken = uow.records.get(CLAWED_KIND, chargeback_id)
        if taken is None:
            return
        totals: dict[str, int] = {}
        profiles: dict[tuple[str, int], CreatorProfile] = {}
        for gift_id, (part, units, creator, released, *tallied) in sorted(
            taken.data["gifts"].items()
        ):
            tally = tallied[0] if tallied else 0
            record = uow.records.get(CLAWBACK_KIND, gift_id)
            assert record is not None  # noqa: S101 (written with the set)
            uow.records.update(
                record.changed(
                    {"coins": record.data["coins"] - part, "units": record.data["units"] - units}
                )
            )
            if units:
                profile = profiles.get((creator, tally)) or creator_profiles.load_tally(
                    uow, creator, tally
                )
                at = datetime.fromisoformat(released)
                profiles[creator, tally] = profile.hold(units, at, now) if at > now else profile
                totals[creator] = totals.get(creator, 0) + units
        for profile in profiles.values():
            creator_profiles.save(uow, profile, now)
        for creator, units in sorted(totals.items()):
            self._move_earnings(
                uow,
                creator,
                units,
                TransactionKind.REVERSAL,
                f"clawback-reversal:{chargeback_id}:{creator}",
                purchase,
                chargeback_id,
                now,
                "earnings.restored",
            )
        uow.records.remove(CLAWED_KIND, chargeback_id)

    def _move_earnings(
        self,
        uow: UnitOfWork,
        creator: str,
        units: int,
        kind: TransactionKind,
        key: str,
        purchase: Purchase,
        chargeback_id: str,
        now: datetime,
        event: str,
    ) -> None:
        """Take *units* from *creator*'s earnings (negative) or give them
        back (positive), against the creator unit's issuance."""
        transaction_id = self.ctx.new_id()
        entries.record(
            uow,
            Transaction(
                id=transaction_id,
                kind=kind,
                postings=(
                    Posting(AccountKey.earnings(creator, self.creator_unit), units),
                    Posting(AccountKey.issuance(self.creator_unit), -units),
                ),
                occurred_at=now,
                idempotency_key=key,
                cause=Cause("purchase", purchase.id),
                metadata=metadata_pairs({"chargeback": chargeback_id}),
            ),
        )
        self.ctx.announce(
            uow,
            event,
            now,
            canonical_json(
                {
                    "creator": creator,
                    "units": abs(units),
                    "unit": self.creator_unit.code,
                    "purchase": purchase.id,
                    "chargeback": chargeback_id,
                }
            ),
            transaction_id,
        )


MANY = 10_000
"""The most gifts read back for one chargeback (the latest)."""
CLAWBACK_KIND = "clawback"
"""The record kind of what chargebacks took of a gift (owned by the purchase)."""
CLAWED_KIND = "clawed-back"
"""The record kind of what one chargeback clawed back (owned by the purchase)."""


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


def catalog_item(catalog: GiftCatalog, item: str | StoreItem) -> StoreItem:
    """The catalog's store item *item* (an id, or a :class:`StoreItem` that
    must be the catalog's own, price and all)."""
    if isinstance(item, StoreItem):
        current = catalog.item(item.id)
        if current != item:
            raise NotAvailableError(
                f"item {item.id!r} changed in the catalog (now version {catalog.version}, "
                f"{current.price} coins): show the holder the new one"
            )
        return current
    return catalog.item(item)
