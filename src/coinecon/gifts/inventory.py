"""What holders bought for their own use: their inventory of store items, and
the receipt of a purchase with coins."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, final

import attrs

from coinecon.ledger.idempotency import canonical_json
from coinecon.money.money import Money
from coinecon.money.units import Unit, UnitAmount
from coinecon.ports import UnitOfWork
from coinecon.records import Record, put

__all__ = ["KIND", "Inventory", "ItemReceipt", "load", "save"]

KIND = "inventory"
"""The record kind of inventories (the id and the owner are the holder)."""


@final
@attrs.frozen
class Inventory:
    """The store items a holder has.

    Attributes:
        holder: whose.
        items: how many of each item they have, by item id (a permanent
            item counts 1 once bought), without those used up.
        kept: the ids of the permanent items among them (kept once bought,
            never used up, whatever the catalog says of them later).
        version: the version of its record as read (0: not stored yet);
            not part of its value.
        created_at: when its record was first stored; not part of its value.
    """

    holder: str
    items: tuple[tuple[str, int], ...] = ()
    kept: tuple[str, ...] = ()
    version: int = attrs.field(default=0, eq=False)
    created_at: datetime | None = attrs.field(default=None, eq=False)

    def count(self, item_id: str) -> int:
        """How many of *item_id* they have."""
        return dict(self.items).get(item_id, 0)

    def changed(self, item_id: str, by: int) -> Inventory:
        """This inventory with *by* more (or fewer) of *item_id*."""
        counts = dict(self.items)
        left = counts.get(item_id, 0) + by
        if left:
            counts[item_id] = left
        else:
            counts.pop(item_id, None)
        return attrs.evolve(self, items=tuple(sorted(counts.items())))

    def keep(self, item_id: str) -> Inventory:
        """This inventory with *item_id* one of its permanent items."""
        return attrs.evolve(self, kept=tuple(sorted({*self.kept, item_id})))

    def record(self, now: datetime) -> Record:
        """This inventory as its record, at the version after the one read."""
        created = self.created_at if self.created_at is not None else now
        body = canonical_json({"items": dict(self.items), "kept": list(self.kept)})
        return Record(KIND, self.holder, self.holder, created, self.version + 1, body)

    @classmethod
    def from_record(cls, record: Record) -> Inventory:
        """The inventory its record holds."""
        data = record.data
        items: Mapping[str, int] = data["items"]
        return cls(
            record.id,
            tuple(sorted(items.items())),
            tuple(data["kept"]),
            record.version,
            record.created_at,
        )


def load(uow: UnitOfWork, holder: str) -> Inventory:
    """*holder*'s inventory (empty if none is stored)."""
    record = uow.records.get(KIND, holder)
    return Inventory(holder) if record is None else Inventory.from_record(record)


def save(uow: UnitOfWork, inventory: Inventory, now: datetime) -> Inventory:
    """Store *inventory* over the version it was read at; return it at its new version."""
    record = inventory.record(now)
    put(uow.records, record)
    return attrs.evolve(inventory, version=record.version, created_at=record.created_at)


@final
@attrs.frozen
class ItemReceipt:
    """What buying a store item with coins cost.

    Attributes:
        id: the purchase's id (its ledger transaction's id).
        holder: who bought it.
        item: the item's id.
        name: its name when bought.
        quantity: how many were bought.
        price: the price of one, in coins, when bought.
        catalog_version: the catalog's version it was priced at.
        coins: what it cost (``price * quantity``).
        value: the money the coins were bought for, now recognised as
            revenue, per currency.
        balance: the holder's coins after.
        count: how many of the item the holder has after.
        bought_at: when.
    """

    id: str
    holder: str
    item: str
    name: str
    quantity: int
    price: int
    catalog_version: int
    coins: UnitAmount
    value: tuple[Money, ...]
    balance: UnitAmount
    count: int
    bought_at: datetime

    def to_data(self) -> dict[str, Any]:
        """As JSON (money in minor units by currency)."""
        return {
            "id": self.id,
            "holder": self.holder,
            "item": self.item,
            "name": self.name,
            "quantity": self.quantity,
            "price": self.price,
            "catalog_version": self.catalog_version,
            "coins": self.coins.amount,
            "unit": self.coins.unit.code,
            "value": {money.currency.code: money.minor for money in self.value},
            "balance": self.balance.amount,
            "count": self.count,
            "bought_at": self.bought_at,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any], unit: Unit) -> ItemReceipt:
        """What :meth:`to_data` wrote, its coins in *unit*."""
        return cls(
            data["id"],
            data["holder"],
            data["item"],
            data["name"],
            data["quantity"],
            data["price"],
            data["catalog_version"],
            unit(data["coins"]),
            tuple(Money.from_minor(minor, code) for code, minor in sorted(data["value"].items())),
            unit(data["balance"]),
            data["count"],
            datetime.fromisoformat(data["bought_at"]),
        )
