"""Creators: what they earn of the gifts they receive (the revenue share),
what their earnings are worth (the conversion rate), how they are paid (the
payout policy and the payout provider port), and their profiles."""

from coinecon.creators.conversion import Conversion, ConversionRate, ConversionReceipt
from coinecon.creators.payout_gateway import (
    PayoutEvent,
    PayoutEventType,
    PayoutGateway,
    PayoutOutcome,
    PayoutRequest,
    PayoutStatus,
)
from coinecon.creators.payouts import Payout, PayoutPolicy
from coinecon.creators.profiles import CreatorProfile
from coinecon.creators.share import RevenueShare, Split

__all__ = [
    "Conversion",
    "ConversionRate",
    "ConversionReceipt",
    "CreatorProfile",
    "Payout",
    "PayoutEvent",
    "PayoutEventType",
    "PayoutGateway",
    "PayoutOutcome",
    "PayoutPolicy",
    "PayoutRequest",
    "PayoutStatus",
    "RevenueShare",
    "Split",
]
