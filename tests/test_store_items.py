"""Store items bought with coins for the holder's own use: the inventory,
the books (only the platform earns), using them up, every refusal."""

from __future__ import annotations

import json
from datetime import timedelta

import attrs
import pytest

from coinecon import AccountKey, AccountKind, Currency
from coinecon.availability import Availability
from coinecon.errors import (
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmountError,
    NotAvailableError,
    NotEligibleError,
    NotFoundError,
    ValidationError,
)
from coinecon.gifts import GiftCatalog, GiftPolicy, StoreItem
from coinecon.gifts.inventory import Inventory, ItemReceipt
from coinecon.ledger.journal import TransactionKind
from coinecon.ports import Store
from economy_kit import CATALOG, COIN, T0, Kit

USD = Currency.of("USD")
ITEMS = CATALOG.with_item(StoreItem("wave", "Waving sticker", 3, display={"kind": "sticker"}))
ITEMS = ITEMS.with_item(StoreItem("crown", "Crown badge", 200, consumable=False, min_age=18))
ITEMS = ITEMS.with_item(StoreItem("flag", "Flag", 2, regions={"FR"}))


@pytest.fixture
def kit(store: Store) -> Kit:
    kit = Kit(store, catalog=ITEMS)
    kit.adult("alice")
    kit.buy("alice", "coins_500")
    return kit


def buy(
    kit: Kit, key: str, item: str | StoreItem = "wave", quantity: int = 1, **changes: object
) -> ItemReceipt:
    region = changes.pop("region", "US")
    holder = changes.pop("holder", "alice")
    return kit.economy.buy_item(
        holder,  # type: ignore[arg-type]
        item,
        quantity,
        region=region,  # type: ignore[arg-type]
        idempotency_key=key,
    )


def test_buying_items_spends_coins_that_only_the_platform_earns(kit: Kit) -> None:
    kit.events()
    receipt = buy(kit, "b-1", "wave", 4)
    assert (receipt.item, receipt.name, receipt.quantity, receipt.price) == (
        "wave",
        "Waving sticker",
        4,
        3,
    )
    assert (receipt.coins, receipt.balance, receipt.count) == (COIN(12), COIN(513), 4)
    assert receipt.catalog_version == ITEMS.version
    economy = kit.economy
    assert economy.inventory("alice") == Inventory("alice", (("wave", 4),))
    transaction = economy.wallets.transaction(receipt.id)
    assert transaction is not None and transaction.kind is TransactionKind.SPEND
    assert {p.account.kind for p in transaction.postings} <= {
        AccountKind.WALLET,
        AccountKind.SPENT,
        AccountKind.DEFERRED_REVENUE,
        AccountKind.REVENUE,
    }
    assert buy(kit, "b-1", "wave", 4) == receipt  # a replay
    with pytest.raises(IdempotencyConflict):
        buy(kit, "b-1", "wave", 5)
    assert economy.balance("alice") == COIN(513)
    kit.sink.events.clear()
    while economy.deliver_events(limit=100):
        pass
    [bought] = kit.sink.events
    assert bought.type == "item.bought"
    assert ItemReceipt.from_data(json.loads(bought.payload), COIN) == receipt
    assert economy.verify().ok


def test_using_a_consumable_item_uses_one_up(kit: Kit) -> None:
    buy(kit, "b-1", "wave", 2)
    economy = kit.economy
    assert (
        economy.use_item("alice", "wave", context="chat-1", idempotency_key="u-1").count("wave")
        == 1
    )
    assert (
        economy.use_item("alice", "wave", context="chat-1", idempotency_key="u-1").count("wave")
        == 1
    )
    assert (
        economy.use_item("alice", "wave", context="chat-2", idempotency_key="u-2").count("wave")
        == 0
    )
    with pytest.raises(NotAvailableError, match="no 'wave' left"):
        economy.use_item("alice", "wave", context="chat-3", idempotency_key="u-3")
    assert economy.inventory("alice") == Inventory("alice")
    assert "item.used" in kit.events()


def test_a_permanent_item_is_bought_once_and_kept(kit: Kit) -> None:
    assert buy(kit, "b-1", "crown").count == 1
    with pytest.raises(NotEligibleError) as owned:
        buy(kit, "b-2", "crown")
    assert owned.value.reason == "owned"
    with pytest.raises(ValidationError, match="kept once bought"):
        kit.economy.use_item("alice", "crown", context="chat", idempotency_key="u-1")
    assert kit.economy.inventory("alice").count("crown") == 1


@pytest.mark.parametrize(
    ("item", "quantity", "changes", "error", "match"),
    [
        ("tiara", 1, {}, NotFoundError, "no item 'tiara'"),
        ("rose", 1, {}, NotFoundError, "no item 'rose'"),  # a gift, not an item
        ("wave", 0, {}, InvalidAmountError, "quantity"),
        ("flag", 1, {}, NotAvailableError, "not offered in US"),
        ("crown", 2, {}, NotEligibleError, "kept once bought"),
        ("crown", 1, {"holder": "kid"}, NotEligibleError, "18 or older"),
        ("wave", 40, {"holder": "kid"}, InsufficientFunds, "20 short of 120"),
    ],
)
def test_a_refused_purchase_writes_nothing(
    kit: Kit,
    item: str,
    quantity: int,
    changes: dict[str, object],
    error: type[Exception],
    match: str,
) -> None:
    kit.economy.record_consent("consent", holder="kid", guardian="parent-1", source="portal")
    kit.buy("kid", "coins_100")
    before = kit.economy.balance("alice")
    with pytest.raises(error, match=match):
        buy(kit, "b-1", item, quantity, **changes)
    assert kit.economy.balance("alice") == before
    assert kit.economy.inventory("alice") == Inventory("alice")
    assert kit.economy.inventory("kid") == Inventory("kid")
    assert buy(kit, "b-1", "wave").count == 1  # the key was not used up


def test_items_follow_their_window_region_and_the_catalog_seen(store: Store) -> None:
    later = Availability(start=T0 + timedelta(hours=1))
    catalog = GiftCatalog([], items=[StoreItem("moon", "Moon", 5, availability=later)])
    kit = Kit(store, catalog=catalog, gift_policy=GiftPolicy(regions={"US"}))
    kit.adult("alice")
    kit.buy()
    seen = kit.economy.catalog.item("moon")
    with pytest.raises(NotAvailableError, match="not available"):
        buy(kit, "b-1", seen)
    with pytest.raises(NotEligibleError, match="not offered in FR"):
        buy(kit, "b-1", seen, region="FR")
    kit.clock.advance(timedelta(hours=1))
    kit.economy.set_catalog(kit.economy.catalog.with_item(attrs.evolve(seen, price=6)))
    with pytest.raises(NotAvailableError, match="changed in the catalog"):
        buy(kit, "b-1", seen)
    assert buy(kit, "b-1", kit.economy.catalog.item("moon")).coins == COIN(6)
    assert [i.id for i in kit.economy.catalog.items_offered("US", kit.clock.now())] == ["moon"]


def test_the_catalog_versions_item_changes() -> None:
    catalog = GiftCatalog([], items=[StoreItem("wave", "Wave", 3)])
    assert catalog.without_item("wave") == GiftCatalog([], version=2)
    with pytest.raises(NotFoundError):
        catalog.without_item("nope")
    with pytest.raises(Exception, match="StoreItem"):
        catalog.with_item("wave")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="twice"):
        GiftCatalog([], items=[StoreItem("a", "A", 1), StoreItem("a", "B", 2)])
    item = StoreItem("badge", "Badge", 9, consumable=False, regions={"US"})
    assert StoreItem.from_data(item.to_data()) == item
    with pytest.raises(Exception, match="consumable"):
        StoreItem("x", "X", 1, consumable=1)  # type: ignore[arg-type]


def test_the_revenue_of_items_is_the_value_of_their_coins(kit: Kit) -> None:
    receipt = buy(kit, "b-1", "wave", 10)
    revenue = AccountKey.system(AccountKind.REVENUE, USD)
    booked = kit.economy.wallets.balances([revenue])[revenue]
    assert -booked == sum(m.minor for m in receipt.value)


def test_a_permanent_item_stays_kept_after_the_catalog_drops_it(kit: Kit) -> None:
    buy(kit, "b-1", "crown")
    kit.economy.set_catalog(kit.economy.catalog.without_item("crown"))
    with pytest.raises(ValidationError, match="kept once bought"):
        kit.economy.use_item("alice", "crown", context="chat", idempotency_key="u-1")
    assert kit.economy.inventory("alice").kept == ("crown",)
