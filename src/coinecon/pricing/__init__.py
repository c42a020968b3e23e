"""Pricing: coin packages, custom amounts with tiers, regional prices,
promotions, fees, taxes and quotes.

Pure domain code: nothing here reads a clock, a file or the network. A host
(or an economy designer) writes a :class:`PriceBook` as data, checks it with
:meth:`PriceBook.check` (each finding has a rule code; :data:`RULES` lists them
and ``rules=`` overrides their severities), and prices purchases with
:meth:`PriceBook.quote`.
The modules are :mod:`~coinecon.pricing.packages`,
:mod:`~coinecon.pricing.custom`, :mod:`~coinecon.pricing.promotions`,
:mod:`~coinecon.pricing.fees`, :mod:`~coinecon.pricing.quote`,
:mod:`~coinecon.pricing.problems` and :mod:`~coinecon.pricing.book`.
"""

from coinecon.pricing.book import PriceBook
from coinecon.pricing.custom import CustomAmounts, PricePoints, Tier, TierMode
from coinecon.pricing.fees import BorneBy, Fee, FeeSchedule, PaymentMethodFee, TaxMode, TaxRule
from coinecon.pricing.packages import CoinPackage
from coinecon.pricing.problems import (
    LEVELS,
    RULES,
    Level,
    Problem,
    Rule,
    RuleOverrides,
    Severity,
    apply_rules,
    render,
    rule,
    rule_overrides,
    worst,
)
from coinecon.pricing.promotions import BuyerHistory, Promotion, PromotionKind, StackingPolicy
from coinecon.pricing.quote import LineKind, Quote, QuoteLine

__all__ = [
    "LEVELS",
    "RULES",
    "BorneBy",
    "BuyerHistory",
    "CoinPackage",
    "CustomAmounts",
    "Fee",
    "FeeSchedule",
    "Level",
    "LineKind",
    "PaymentMethodFee",
    "PriceBook",
    "PricePoints",
    "Problem",
    "Promotion",
    "PromotionKind",
    "Quote",
    "QuoteLine",
    "Rule",
    "RuleOverrides",
    "Severity",
    "StackingPolicy",
    "TaxMode",
    "TaxRule",
    "Tier",
    "TierMode",
    "apply_rules",
    "render",
    "rule",
    "rule_overrides",
    "worst",
]
