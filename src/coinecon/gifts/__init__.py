"""Gifts and store items: the catalog, sending a gift to a creator and its
receipt, buying store items for one's own use and the inventory."""

from coinecon.gifts.catalog import Gift, GiftCatalog, StoreItem
from coinecon.gifts.inventory import Inventory, ItemReceipt
from coinecon.gifts.receipts import GiftPolicy, GiftReceipt

__all__ = [
    "Gift",
    "GiftCatalog",
    "GiftPolicy",
    "GiftReceipt",
    "Inventory",
    "ItemReceipt",
    "StoreItem",
]
