"""coinecon: exact, typed, property-tested virtual coin economies.

The public names are re-exported here; the modules they live in are
:mod:`coinecon.money`, :mod:`coinecon.units`, :mod:`coinecon.rate`,
:mod:`coinecon.rounding`, :mod:`coinecon.clock`, :mod:`coinecon.ledger`,
:mod:`coinecon.lots`, :mod:`coinecon.wallets`, :mod:`coinecon.verification`,
:mod:`coinecon.events` and :mod:`coinecon.errors`. Storage adapters are
imported from their own modules (:mod:`coinecon.adapters.memory`), so nothing
is wired at import time.
"""

from coinecon.clock import Clock, ManualClock, SystemClock
from coinecon.errors import (
    AmountMismatchError,
    AmountOutOfRangeError,
    BalanceLimitExceeded,
    CoineconError,
    CurrencyMismatchError,
    FloatNotAllowedError,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmountError,
    InvalidCurrencyError,
    InvalidIdentifierError,
    InvalidRateError,
    InvalidTypeError,
    InvalidUnitError,
    LedgerRuleViolation,
    NaiveDatetimeError,
    NotFoundError,
    PrecisionError,
    StorageError,
    TransferNotAllowed,
    UnbalancedTransactionError,
    UnitMismatchError,
    UnknownCurrencyError,
    ValidationError,
)
from coinecon.events import EventSink, OutboxEvent
from coinecon.ledger import (
    PLATFORM,
    AccountKey,
    AccountKind,
    Cause,
    HistoryEntry,
    Posting,
    PostingNotAllowed,
    Transaction,
    TransactionKind,
)
from coinecon.lots import Lot, LotConsumption, LotOrigin, SpendOrder
from coinecon.money import Currency, Money, currencies, get_currency, register_currency
from coinecon.rate import Rate
from coinecon.rounding import Rounding
from coinecon.units import Unit, UnitAmount
from coinecon.verification import VerificationReport
from coinecon.wallets import CreditResult, ExpiryResult, HistoryPage, SpendResult, Wallets

__all__ = [
    "PLATFORM",
    "AccountKey",
    "AccountKind",
    "AmountMismatchError",
    "AmountOutOfRangeError",
    "BalanceLimitExceeded",
    "Cause",
    "Clock",
    "CoineconError",
    "CreditResult",
    "Currency",
    "CurrencyMismatchError",
    "EventSink",
    "ExpiryResult",
    "FloatNotAllowedError",
    "HistoryEntry",
    "HistoryPage",
    "IdempotencyConflict",
    "InsufficientFunds",
    "InvalidAmountError",
    "InvalidCurrencyError",
    "InvalidIdentifierError",
    "InvalidRateError",
    "InvalidTypeError",
    "InvalidUnitError",
    "LedgerRuleViolation",
    "Lot",
    "LotConsumption",
    "LotOrigin",
    "ManualClock",
    "Money",
    "NaiveDatetimeError",
    "NotFoundError",
    "OutboxEvent",
    "Posting",
    "PostingNotAllowed",
    "PrecisionError",
    "Rate",
    "Rounding",
    "SpendOrder",
    "SpendResult",
    "StorageError",
    "SystemClock",
    "Transaction",
    "TransactionKind",
    "TransferNotAllowed",
    "UnbalancedTransactionError",
    "Unit",
    "UnitAmount",
    "UnitMismatchError",
    "UnknownCurrencyError",
    "ValidationError",
    "VerificationReport",
    "Wallets",
    "currencies",
    "get_currency",
    "register_currency",
]
