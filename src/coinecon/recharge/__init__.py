"""Recharge: buying coins, paying through a provider, and what follows.

:class:`~coinecon.economy.CoinEconomy` runs it; this package holds its
parts: the :class:`PaymentGateway` port and its values, the records of
purchases, holders' profiles and dispute cases, and the eligibility and
limit policies.
"""

from coinecon.recharge.disputes import Case, CaseEntry, CaseStatus
from coinecon.recharge.eligibility import AgeAttestation, EligibilityPolicy, ParentalConsent
from coinecon.recharge.gateway import (
    ChargeOutcome,
    ChargeRequest,
    ChargeStatus,
    PaymentEvent,
    PaymentEventType,
    PaymentGateway,
)
from coinecon.recharge.limits import Budget, BudgetPeriod, LimitPolicy
from coinecon.recharge.profiles import HolderProfile
from coinecon.recharge.purchases import Purchase, PurchaseStatus, Reversal

__all__ = [
    "AgeAttestation",
    "Budget",
    "BudgetPeriod",
    "Case",
    "CaseEntry",
    "CaseStatus",
    "ChargeOutcome",
    "ChargeRequest",
    "ChargeStatus",
    "EligibilityPolicy",
    "HolderProfile",
    "LimitPolicy",
    "ParentalConsent",
    "PaymentEvent",
    "PaymentEventType",
    "PaymentGateway",
    "Purchase",
    "PurchaseStatus",
    "Reversal",
]
