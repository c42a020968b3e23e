"""A creator's carry, gift count and held earnings kept in several tallies
(``GiftPolicy(tallies=n)``): shares still add up exactly, a gift leaves the
creator's profile alone unless its sender falls in tally 0, and chargebacks,
their reversal and conversions find held earnings in the right tally."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinecon.adapters.memory import MemoryStore
from coinecon.creators.conversion import ConversionRate
from coinecon.creators.payouts import PayoutPolicy
from coinecon.creators.profiles import KIND, TALLY_KIND, tally_of
from coinecon.economy import DIAMOND
from coinecon.errors import InsufficientFunds, ValidationError
from coinecon.gifts import GiftPolicy
from coinecon.money import Money
from coinecon.ports import Store
from economy_kit import Kit

SENDERS = ("ann", "bob", "dave", "erin")  # in tallies 1, 1, 0 and 2 of 3


def test_senders_fall_in_stable_tallies() -> None:
    assert [tally_of(sender, 3) for sender in SENDERS] == [1, 1, 0, 2]
    assert [tally_of(sender, 1) for sender in SENDERS] == [0, 0, 0, 0]
    with pytest.raises(ValidationError, match="tallies is an int from 1 to 1,024"):
        GiftPolicy(tallies=0)
    with pytest.raises(ValidationError, match="tallies"):
        GiftPolicy(tallies=True)


def tallied(store: Store, tallies: int = 3, *, clawback: bool = False) -> Kit:
    kit = Kit(
        store,
        gift_policy=GiftPolicy(tallies=tallies),
        payout_policy=PayoutPolicy(holding=timedelta(days=7), clawback=clawback),
        conversion_rate=ConversionRate({"USD": "0.01"}),
    )
    kit.creator("cat")
    for sender in SENDERS:
        kit.adult(sender)
        kit.buy(sender, "coins_1000", key=f"buy-{sender}")
    return kit


def send(kit: Kit, sender: str, gift: str, key: str, quantity: int = 1) -> None:
    kit.economy.send_gift(
        sender, "cat", gift, quantity, context="s", region="US", idempotency_key=key
    )


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from([1, 2, 3, 5]),
    st.lists(st.tuples(st.sampled_from(SENDERS), st.sampled_from(["rose", "heart"])), max_size=30),
)
def test_what_is_credited_and_carried_is_exactly_the_shares(
    tallies: int, gifts: list[tuple[str, str]]
) -> None:
    kit = tallied(MemoryStore(), tallies)
    coins = {"rose": 1, "heart": 5}
    for n, (sender, gift) in enumerate(gifts):
        send(kit, sender, gift, f"g-{n}")
    profile = kit.economy.creator("cat")
    shares = sum((Fraction(coins[gift], 2) for _, gift in gifts), Fraction(0))
    assert kit.economy.earnings("cat").amount + profile.carry == shares
    assert 0 <= profile.carry < tallies
    assert profile.gifts == len(gifts)
    assert profile.tally == 0
    assert sum(units for _, units in profile.held) == kit.economy.earnings("cat").amount
    assert kit.economy.verify().ok


def test_a_gift_updates_only_its_senders_tally(store: Store) -> None:
    kit = tallied(store)

    def versions() -> tuple[int, ...]:
        with store.unit_of_work() as uow:
            profile = uow.records.get(KIND, "cat")
            tallies = [uow.records.get(TALLY_KIND, f"cat#{n}") for n in (1, 2)]
        assert profile is not None
        return (profile.version, *(0 if t is None else t.version for t in tallies))

    before = versions()
    send(kit, "ann", "heart", "a-1")  # tally 1
    send(kit, "bob", "heart", "b-1")  # tally 1
    send(kit, "erin", "rose", "e-1")  # tally 2
    assert versions() == (before[0], 2, 1)  # the profile was not written
    send(kit, "dave", "rose", "d-1")  # tally 0: the profile
    assert versions() == (before[0] + 1, 2, 1)
    profile = kit.economy.creator("cat")
    assert (profile.gifts, profile.carry) == (4, Fraction(1))  # two tallies carry a half each
    assert kit.economy.earnings("cat") == DIAMOND(5)


def test_a_chargeback_claws_back_from_the_gifts_tally_and_a_reversal_gives_it_back(
    store: Store,
) -> None:
    kit = tallied(store, clawback=True)
    send(kit, "erin", "heart", "e-1", 20)  # 50, held in tally 2
    kit.clock.advance(timedelta(days=1))
    send(kit, "dave", "heart", "d-1", 20)  # 50, held in the profile a day longer
    economy = kit.economy
    [purchase] = economy.purchases("erin")
    chargeback = kit.gateway.charge_back(purchase.id)
    economy.handle_payment_event(chargeback)
    assert economy.earnings("cat") == DIAMOND(50)
    assert economy.creator("cat").holding(kit.clock.now()) == 50  # dave's, untouched
    economy.handle_payment_event(kit.gateway.reverse_chargeback(purchase.id))
    assert economy.earnings("cat") == DIAMOND(100)
    assert economy.creator("cat").holding(kit.clock.now()) == 100
    assert economy.verify().ok


def test_a_conversion_counts_what_every_tally_holds(store: Store) -> None:
    kit = tallied(store)
    send(kit, "ann", "heart", "a-1", 20)  # 50 in tally 1
    kit.clock.advance(timedelta(days=8))
    send(kit, "erin", "heart", "e-1", 20)  # 50 in tally 2, held
    economy = kit.economy
    with pytest.raises(InsufficientFunds, match="may convert 50 of their 100 DIAMOND now"):
        economy.convert("cat", "USD", units=51, idempotency_key="c-1")
    receipt = economy.convert("cat", "USD", idempotency_key="c-2")
    assert receipt.money == Money("0.50", "USD")
    assert economy.creator("cat").holding(kit.clock.now()) == 50
    assert economy.verify().ok
