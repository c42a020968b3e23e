"""The money postings of recharge: a purchase, a refund or chargeback, a restoration.

The accounts and their signs are those of :mod:`coinecon.ledger.entries`. For a
purchase of total *T* with tax *X*, fees *F* the buyer pays on top (service,
payment method), and costs *C* the platform pays (processor fee, store
commission), the value of the coins is ``V = T - X - F``, and:

====================  ==============================================
account               posting
====================  ==============================================
``CLEARING``          ``+(T - C)``: what the provider will pay out
``FEES``              ``+C``
``TAX_PAYABLE``       ``-X``
``REVENUE``           ``-F``: earned at the sale
``DEFERRED_REVENUE``  ``-V``: earned as the coins are used
====================  ==============================================

A refund or chargeback of *A* (out of *T*) takes back the coins in proportion
(:meth:`Purchase.due <coinecon.recharge.purchases.Purchase.due>`: the share of
all the money given back so far, rounded down, less what was taken already,
so that refunds in parts take back exactly the coins of a whole one) and the
tax likewise; the money
goes back out of clearing, the value of the coins taken back leaves deferred
revenue, and what is left is the platform's loss: money given back for coins
already spent.
"""

from __future__ import annotations

from collections.abc import Iterable

from coinecon.ledger.entries import money_account
from coinecon.ledger.journal import AccountKind, Posting
from coinecon.money.money import Currency, Money

__all__ = ["purchase_legs", "take_back_legs"]


def _leg(kind: AccountKind, currency: Currency, minor: int) -> list[Posting]:
    return [Posting(money_account(kind, currency), minor)] if minor else []


def purchase_legs(total: Money, tax: Money, buyer_fees: Money, costs: Money) -> list[Posting]:
    """The money legs of a completed purchase beside its lots' own
    (``CLEARING +V``, ``DEFERRED_REVENUE -V``, which the credit of a lot of
    value *V* posts): together they are the table above."""
    currency = total.currency
    value = total - tax - buyer_fees
    return [
        *_leg(AccountKind.CLEARING, currency, total.minor - costs.minor - value.minor),
        *_leg(AccountKind.FEES, currency, costs.minor),
        *_leg(AccountKind.TAX_PAYABLE, currency, -tax.minor),
        *_leg(AccountKind.REVENUE, currency, -buyer_fees.minor),
    ]


def take_back_legs(amount: Money, tax: int, taken: Iterable[Money | None]) -> list[Posting]:
    """The money legs of a refund or chargeback of *amount*, of which *tax*
    (minor units) is tax given back, that took coins of values *taken*
    (those of lots bought, in their currencies) from the wallet's lots:
    clearing gives the money back; the value of the coins taken back leaves
    deferred revenue; the rest is a loss."""
    currency = amount.currency
    values: dict[Currency, int] = {}
    for value in taken:
        if value is not None:
            values[value.currency] = values.get(value.currency, 0) + value.minor
    legs = [
        *_leg(AccountKind.CLEARING, currency, -amount.minor),
        *_leg(AccountKind.TAX_PAYABLE, currency, tax),
    ]
    loss = {currency: amount.minor - tax}
    for other, minor in values.items():
        legs.extend(_leg(AccountKind.DEFERRED_REVENUE, other, minor))
        loss[other] = loss.get(other, 0) - minor
    for other, minor in loss.items():
        legs.extend(_leg(AccountKind.LOSSES, other, minor))
    return legs
