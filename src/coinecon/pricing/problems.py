"""What :meth:`~coinecon.pricing.book.PriceBook.check` reports: :class:`Problem`
values, each found by a :class:`Rule` with a stable code; overriding a rule's
severity by its code; and rendering problems as text or JSON.

Codes are a letter for the part of the book and three digits: ``R`` regions,
``P`` packages, ``C`` custom amounts and tiers, ``M`` promotions, ``F`` fees and
taxes. A code, once published, always names the same finding; a finding that
is dropped leaves its code unused. :data:`RULES` lists them all.
"""

from __future__ import annotations

import difflib
import enum
import json
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Literal, TypeAlias, final

import attrs

from coinecon._checks import instance_of
from coinecon.errors import (
    InvalidPriceBookError,
    InvalidTypeError,
    PricingProblemError,
    ValidationError,
)
from coinecon.pricing import _validate

__all__ = [
    "LEVELS",
    "RULES",
    "Level",
    "Problem",
    "Rule",
    "RuleOverrides",
    "Severity",
    "apply_rules",
    "render",
    "rule",
    "rule_overrides",
    "worst",
]


class Severity(enum.Enum):
    """How bad a problem in a price book is."""

    ERROR = "error"
    """The book misprices or cannot price something; refuse it."""
    WARNING = "warning"
    """The book works, but probably not as its designer meant."""


Level: TypeAlias = Literal["error", "warning", "off"]
"""What an override sets a rule to, a severity's value or ``"off"`` to silence it."""

LEVELS: tuple[Level, ...] = ("error", "warning", "off")
"""Every :data:`Level`, from the strictest."""

RuleOverrides: TypeAlias = Mapping[str, Severity | str]
"""Rule code to level, such as ``{"P002": "error", "F003": "off"}``, as
:class:`~coinecon.pricing.book.PriceBook` (``rules=``), its ``check()`` and
``validate()``, and :func:`apply_rules` take them. A level is ``"error"``,
``"warning"``, ``"off"``, or a :class:`Severity`."""


def _code(_instance: object, _attribute: object, value: Any) -> None:
    rule(value)  # a known code, or an error that says which codes there are


@final
@attrs.frozen
class Rule:
    """One kind of finding of :meth:`~coinecon.pricing.book.PriceBook.check`.

    Attributes:
        code: the stable code, such as ``"P002"``.
        name: a short name in kebab case, such as ``"package-per-coin-rises"``.
        severity: the severity it has unless overridden.
        summary: what it finds, in one line.
    """

    code: str
    name: str
    severity: Severity
    summary: str


def _rules(*rules: Rule) -> Mapping[str, Rule]:
    return MappingProxyType({r.code: r for r in rules})


_E, _W = Severity.ERROR, Severity.WARNING

RULES: Mapping[str, Rule] = _rules(
    Rule("R001", "no-regions", _E, "the book sells in no region"),
    Rule("R002", "region-unpriced", _W, "a region's currency has no price at all"),
    Rule("R003", "currency-unsold", _W, "prices are set in a currency no region sells in"),
    Rule(
        "P001",
        "package-total-drops",
        _E,
        "a package costs more than a bigger one in the same currency and storefront",
    ),
    Rule(
        "P002",
        "package-per-coin-rises",
        _W,
        "a package costs more per coin received than a smaller one in the same market",
    ),
    Rule(
        "P003",
        "package-dearer-than-custom",
        _W,
        "a package costs more than the same number of coins as a custom amount",
    ),
    Rule("C001", "tier-gap", _E, "no tier covers some quantities sold as custom amounts"),
    Rule("C002", "tier-overlap", _E, "two tiers cover the same quantities"),
    Rule(
        "C003",
        "tier-discount-falls",
        _E,
        "a tier has a smaller discount than the tier before it",
    ),
    Rule(
        "C004",
        "custom-below-minor-unit",
        _E,
        "a custom amount costs less than one minor unit of its currency",
    ),
    Rule(
        "C005",
        "custom-total-drops",
        _E,
        "in volume mode, the total drops where a tier with a deeper discount starts",
    ),
    Rule("M001", "promotion-empty-window", _E, "a promotion's window ends before it starts"),
    Rule(
        "M002",
        "promotion-no-occurrence",
        _E,
        "a promotion's recurrence has no occurrence inside its window",
    ),
    Rule(
        "M003",
        "stacking-group-ignored",
        _W,
        "a promotion has a stacking group, but the book applies only the best single one",
    ),
    Rule(
        "M004",
        "first-purchase-limit-unreachable",
        _W,
        "a first-purchase promotion allows more than one redemption per account",
    ),
    Rule(
        "M005",
        "promotion-region-unsold",
        _W,
        "a promotion applies in a region the book does not sell in",
    ),
    Rule(
        "M006",
        "promotion-min-coins-unreachable",
        _E,
        "a promotion needs more coins than the book sells at once",
    ),
    Rule("F001", "no-payment-method", _E, "no payment method is accepted"),
    Rule(
        "F002",
        "fee-currency-missing",
        _E,
        "a payment-method or service fee is not set in a currency the book sells in",
    ),
    Rule("F003", "region-untaxed", _W, "a region the book sells in has no tax rule"),
    Rule("F004", "tax-rule-unsold", _W, "a tax rule is for a region the book does not sell in"),
)
"""Every rule of :meth:`~coinecon.pricing.book.PriceBook.check`, by code, in
the order it checks the parts of a book: regions, packages, custom amounts,
promotions, fees. See :doc:`/pricing` for why each has its default severity."""


def rule(code: object) -> Rule:
    """The :class:`Rule` with *code*.

        >>> rule("P002").name
        'package-per-coin-rises'

    Raises:
        InvalidTypeError: if *code* is not a ``str``.
        InvalidPriceBookError: if no rule has that code (the message suggests
            close ones).
    """
    if not isinstance(code, str):
        raise InvalidTypeError(f"a rule code must be a str, got {type(code).__name__} {code!r}")
    found = RULES.get(code)
    if found is None:
        upper = code.upper()
        close = [upper] if upper in RULES else difflib.get_close_matches(upper, RULES, n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise InvalidPriceBookError(
            f"unknown rule code {code!r}: the codes are a letter (R, P, C, M or F) and three "
            f"digits, listed in coinecon.pricing.RULES{hint}"
        )
    return found


def _level(code: str, value: object) -> Level:
    if isinstance(value, Severity):
        return "error" if value is Severity.ERROR else "warning"
    if not isinstance(value, str):
        raise InvalidTypeError(
            f"the level of rule {code} must be a str or a Severity, got "
            f"{type(value).__name__} {value!r}"
        )
    for level in LEVELS:
        if value == level:
            return level
    raise InvalidPriceBookError(
        f"unknown level {value!r} for rule {code}: use 'error', 'warning' or 'off'"
    )


def rule_overrides(
    value: RuleOverrides | tuple[tuple[str, Level], ...] | None,
) -> tuple[tuple[str, Level], ...]:
    """Check *value*, a mapping of rule code to level, and return it as sorted
    ``(code, level)`` pairs (the form a book stores; ``None`` is no override).

        >>> rule_overrides({"F003": "off", "P002": Severity.ERROR})
        (('F003', 'off'), ('P002', 'error'))

    Raises:
        InvalidTypeError: for something that is not a mapping, a code that is
            not a ``str``, or a level that is neither a ``str`` nor a
            :class:`Severity`.
        InvalidPriceBookError: for an unknown code or level.
    """
    if value is None:
        return ()
    given = _validate.as_mapping(value, "rules (rule code to level)")
    return tuple(sorted((rule(code).code, _level(code, level)) for code, level in given.items()))


@final
@attrs.frozen
class Problem:
    """One problem found in a price book, where, and by which rule.

        >>> print(Problem(Severity.ERROR, "package coins_500, USD/web", "costs too much",
        ...               code="P001"))
        error[P001]: package coins_500, USD/web: costs too much

    Attributes:
        severity: an error or a warning (the rule's default, unless overridden).
        where: the place in the book, such as ``"package coins_500, USD/web"``.
        message: what is wrong there.
        code: the code of the :class:`Rule` that found it, a key of :data:`RULES`.
    """

    severity: Severity = attrs.field(validator=instance_of(Severity))
    where: str = attrs.field(validator=instance_of(str))
    message: str = attrs.field(validator=instance_of(str))
    code: str = attrs.field(kw_only=True, validator=_code)

    def __str__(self) -> str:
        return f"{self.severity.value}[{self.code}]: {self.where}: {self.message}"

    @property
    def rule(self) -> Rule:
        """The :class:`Rule` that found this problem."""
        return RULES[self.code]

    def to_data(self) -> dict[str, str]:
        """This problem as plain data, for JSON: ``code``, ``severity``,
        ``where`` and ``message``, all strings.

            >>> Problem(Severity.WARNING, "region FR", "no tax rule", code="F003").to_data()
            {'code': 'F003', 'severity': 'warning', 'where': 'region FR', 'message': 'no tax rule'}
        """
        return {
            "code": self.code,
            "severity": self.severity.value,
            "where": self.where,
            "message": self.message,
        }

    def to_error(self) -> PricingProblemError:
        """This problem as an exception, to raise or to group."""
        return PricingProblemError(self.where, self.message)


def apply_rules(
    problems: Iterable[Problem], overrides: RuleOverrides | tuple[tuple[str, Level], ...] | None
) -> tuple[Problem, ...]:
    """Return *problems*, in order, with each overridden rule's severity
    changed, and the problems of each rule set to ``"off"`` left out.

        >>> found = [Problem(Severity.WARNING, "region FR", "has no tax rule", code="F003")]
        >>> apply_rules(found, {"F003": "error"})[0].severity
        <Severity.ERROR: 'error'>
        >>> apply_rules(found, {"F003": "off"})
        ()

    Raises:
        InvalidTypeError: for overrides of the wrong type.
        InvalidPriceBookError: for an unknown code or level.
    """
    levels = dict(rule_overrides(overrides))
    kept = []
    for problem in problems:
        level = levels.get(problem.code)
        if level == "off":
            continue
        if level is not None and level != problem.severity.value:
            problem = attrs.evolve(problem, severity=Severity(level))  # noqa: PLW2901
        kept.append(problem)
    return tuple(kept)


def worst(problems: Iterable[Problem]) -> Severity | None:
    """The worst severity among *problems*, or ``None`` if there are none: what
    decides, say, a command's exit status.

        >>> worst([]) is None
        True
    """
    found = {problem.severity for problem in problems}
    for severity in (Severity.ERROR, Severity.WARNING):
        if severity in found:
            return severity
    return None


def _count(number: int, word: str) -> str:
    return f"{number} {word}{'' if number == 1 else 's'}"


def render(
    problems: Iterable[Problem],
    format: Literal["text", "json"] = "text",  # noqa: A002 (as the command line's --format)
) -> str:
    """Render *problems* for people (``"text"``: one line each, then a count
    of errors and warnings) or for machines (``"json"``: an array of
    :meth:`Problem.to_data` objects). No newline at the end.

        >>> found = [Problem(Severity.WARNING, "region FR", "has no tax rule", code="F003")]
        >>> print(render(found))
        warning[F003]: region FR: has no tax rule
        0 errors, 1 warning
        >>> print(render([]))
        no problems
        >>> print(render(found, "json"))
        [
          {
            "code": "F003",
            "severity": "warning",
            "where": "region FR",
            "message": "has no tax rule"
          }
        ]

    Raises:
        ValidationError: for a format other than ``"text"`` and ``"json"``.
    """
    found = list(problems)
    if format == "json":
        return json.dumps([problem.to_data() for problem in found], indent=2)
    if format != "text":
        raise ValidationError(f"format must be 'text' or 'json', got {format!r}")
    if not found:
        return "no problems"
    errors = sum(problem.severity is Severity.ERROR for problem in found)
    summary = f"{_count(errors, 'error')}, {_count(len(found) - errors, 'warning')}"
    return "\n".join([*(str(problem) for problem in found), summary])
