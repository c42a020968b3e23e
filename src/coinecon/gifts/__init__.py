"""Gifts: the catalog, sending a gift to a creator, and its receipt."""

from coinecon.gifts.catalog import Gift, GiftCatalog
from coinecon.gifts.receipts import GiftPolicy, GiftReceipt

__all__ = ["Gift", "GiftCatalog", "GiftPolicy", "GiftReceipt"]
