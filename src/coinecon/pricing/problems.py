"""What :meth:`~coinecon.pricing.book.PriceBook.check` reports: :class:`Problem` values."""

from __future__ import annotations

import enum
from typing import final

import attrs

from coinecon._checks import instance_of
from coinecon.errors import PricingProblemError

__all__ = ["Problem", "Severity"]


class Severity(enum.Enum):
    """How bad a problem in a price book is."""

    ERROR = "error"
    """The book misprices or cannot price something; refuse it."""
    WARNING = "warning"
    """The book works, but probably not as its designer meant."""


@final
@attrs.frozen
class Problem:
    """One problem found in a price book, and where.

        >>> print(Problem(Severity.ERROR, "package coins_500, USD/web", "costs too much"))
        error: package coins_500, USD/web: costs too much

    Attributes:
        severity: an error or a warning.
        where: the place in the book, such as ``"package coins_500, USD/web"``.
        message: what is wrong there.
    """

    severity: Severity = attrs.field(validator=instance_of(Severity))
    where: str = attrs.field(validator=instance_of(str))
    message: str = attrs.field(validator=instance_of(str))

    def __str__(self) -> str:
        return f"{self.severity.value}: {self.where}: {self.message}"

    def to_error(self) -> PricingProblemError:
        """This problem as an exception, to raise or to group."""
        return PricingProblemError(self.where, self.message)
