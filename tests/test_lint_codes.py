"""The price-book checker as a linter: every rule has a stable code and a
default severity, a book (or a call) raises, lowers or silences rules by code,
and problems render as text for people and JSON for machines."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coinecon import Money, Rate
from coinecon.errors import (
    InvalidPriceBookError,
    InvalidTypeError,
    PriceBookInvalidError,
    PricingProblemError,
    ValidationError,
)
from coinecon.pricing import (
    LEVELS,
    RULES,
    BuyerHistory,
    CoinPackage,
    CustomAmounts,
    Fee,
    FeeSchedule,
    PaymentMethodFee,
    PriceBook,
    Problem,
    Promotion,
    PromotionKind,
    Rule,
    Severity,
    StackingPolicy,
    TaxMode,
    TaxRule,
    Tier,
    TierMode,
    apply_rules,
    render,
    rule,
    rule_overrides,
    worst,
)
from coinecon.pricing import checks as checks_module

ROOT = Path(__file__).resolve().parent.parent
ERROR, WARNING = Severity.ERROR, Severity.WARNING
CODE = re.compile(r"[RPCMF]\d{3}")


def usd(amount: str) -> Money:
    return Money(amount, "USD")


def shop(**parts: Any) -> PriceBook:
    """A book that sells in the US only, with one payment method and a tax
    rule: clean unless *parts* make it otherwise."""
    parts.setdefault("regions", {"US": "USD"})
    parts.setdefault(
        "fees",
        FeeSchedule([PaymentMethodFee("card")], taxes=[TaxRule("US", "5%", TaxMode.EXCLUSIVE)]),
    )
    return PriceBook(**parts)


def package(coins: int, price: str, storefront: str = "web") -> CoinPackage:
    return CoinPackage(f"coins_{coins}", coins, {storefront: usd(price)})


ONE = [package(100, "0.99")]

# TikTok's real in-app ladder: coins, price in USD.
TIKTOK = [
    (70, "0.99"),
    (350, "4.99"),
    (700, "9.99"),
    (1400, "19.99"),
    (3500, "49.99"),
    (7000, "99.99"),
    (17500, "249.99"),
]


def tiktok(**parts: Any) -> PriceBook:
    return shop(packages=[package(coins, price, "ios") for coins, price in TIKTOK], **parts)


def tiers(*bands: tuple[int, int | None, str], mode: TierMode = TierMode.VOLUME) -> CustomAmounts:
    return CustomAmounts(
        100,
        10_000,
        {"web": usd("1.00")},
        per=100,
        tiers=[Tier(low, high, Rate(off)) for low, high, off in bands],
        mode=mode,
    )


def bonus(promotion_id: str, **rules: Any) -> Promotion:
    return Promotion(promotion_id, PromotionKind.BONUS_COINS, bonus_coins=5, **rules)


MAY = datetime(2026, 5, 1, tzinfo=UTC)
US_TAX = TaxRule("US", "5%", TaxMode.EXCLUSIVE)

# One book for each rule, that the rule finds something in.
EXAMPLES: dict[str, Callable[[], PriceBook]] = {
    "R001": lambda: shop(regions={}),
    "R002": lambda: shop(regions={"US": "USD", "GB": "GBP"}, packages=ONE),
    "R003": lambda: shop(
        packages=[CoinPackage("coins_100", 100, {"web": [usd("0.99"), Money("0.99", "EUR")]})]
    ),
    "P001": lambda: shop(packages=[package(100, "1.01"), package(200, "1.00")]),
    "P002": tiktok,
    "P003": lambda: shop(
        packages=[package(500, "5.99")], custom=tiers((1, None, "0%"), mode=TierMode.GRADUATED)
    ),
    "C001": lambda: shop(custom=tiers((1, 999, "0%"), (2000, None, "5%"))),
    "C002": lambda: shop(custom=tiers((1, 999, "0%"), (900, None, "5%"))),
    "C003": lambda: shop(custom=tiers((1, 999, "10%"), (1000, None, "5%"))),
    "C004": lambda: shop(
        custom=CustomAmounts(1, 1000, {"web": usd("0.01")}, per=1000),
    ),
    "C005": lambda: shop(custom=tiers((1, 999, "0%"), (1000, None, "10%"))),
    "M001": lambda: shop(packages=ONE, promotions=[bonus("empty", start=MAY, end=MAY)]),
    "M002": lambda: shop(
        packages=ONE,
        promotions=[
            bonus(
                "no-friday",
                start=datetime(2026, 1, 3, tzinfo=UTC),  # a Saturday
                end=datetime(2026, 1, 8, tzinfo=UTC),
                rrule="FREQ=WEEKLY;BYDAY=FR",
                duration=timedelta(hours=1),
            )
        ],
    ),
    "M003": lambda: shop(
        packages=ONE,
        promotions=[bonus("grouped", stacking_group="x")],
        stacking=StackingPolicy.BEST_SINGLE,
    ),
    "M004": lambda: shop(
        packages=ONE,
        promotions=[
            Promotion(
                "welcome",
                PromotionKind.FIRST_PURCHASE_BONUS,
                bonus_coins=100,
                max_redemptions_per_account=2,
            )
        ],
    ),
    "M005": lambda: shop(packages=ONE, promotions=[bonus("abroad", regions={"FR"})]),
    "M006": lambda: shop(packages=ONE, promotions=[bonus("huge", min_coins=101)]),
    "F001": lambda: shop(packages=ONE, fees=FeeSchedule(taxes=[US_TAX])),
    "F002": lambda: shop(
        packages=ONE,
        fees=FeeSchedule(
            [PaymentMethodFee("card", Fee(fixed=Money("0.30", "EUR")))], taxes=[US_TAX]
        ),
    ),
    "F003": lambda: shop(packages=ONE, fees=FeeSchedule([PaymentMethodFee("card")])),
    "F004": lambda: shop(
        packages=ONE,
        fees=FeeSchedule(
            [PaymentMethodFee("card")],
            taxes=[US_TAX, TaxRule("DE", "19%", TaxMode.INCLUSIVE)],
        ),
    ),
}

# Codes no book can produce, each with the reason; none today.
UNREACHABLE: dict[str, str] = {}


# -- the registry ------------------------------------------------------------------------


def test_codes_are_a_part_letter_and_three_digits_each_once() -> None:
    assert list(RULES) == sorted(RULES, key=lambda c: ("RPCMF".index(c[0]), c))
    names = [r.name for r in RULES.values()]
    assert len(set(names)) == len(names)
    for code, found in RULES.items():
        assert CODE.fullmatch(code)
        assert found.code == code
        assert isinstance(found, Rule)
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", found.name)
        assert found.severity in {ERROR, WARNING}
        assert found.summary
        assert "\n" not in found.summary
        assert rule(code) is found


def test_the_registry_cannot_be_changed() -> None:
    with pytest.raises(TypeError):
        RULES["X001"] = RULES["P001"]  # type: ignore[index]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        RULES["P001"].severity = WARNING  # type: ignore[misc]


def test_every_rule_has_an_example_or_a_reason_it_cannot_happen() -> None:
    assert set(EXAMPLES) | set(UNREACHABLE) == set(RULES)
    assert not set(EXAMPLES) & set(UNREACHABLE)
    assert all(UNREACHABLE.values())


@pytest.mark.parametrize("code", sorted(EXAMPLES))
def test_each_example_book_trips_its_rule_at_the_default_severity(code: str) -> None:
    problems = EXAMPLES[code]().check()
    assert code in {p.code for p in problems}, [str(p) for p in problems]
    for problem in problems:
        assert problem.code in RULES
        assert problem.severity is RULES[problem.code].severity
        assert str(problem).startswith(f"{problem.severity.value}[{problem.code}]: ")


def test_checks_py_names_every_rule_and_only_rules() -> None:
    """Statically: each code literal in checks.py is a rule, each rule is in
    checks.py, and checks.py makes problems only through its helper, which
    takes the severity from the registry."""
    source = Path(checks_module.__file__).read_text()
    tree = ast.parse(source)
    literals = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and CODE.fullmatch(node.value)
    }
    assert literals == set(RULES)
    makers = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "Problem"
    ]
    assert len(makers) == 1  # in _problem, with RULES[code].severity
    assert "RULES[code].severity" in (ast.get_source_segment(source, makers[0]) or "")


def test_the_docs_table_lists_every_rule_with_its_default() -> None:
    text = (ROOT / "docs" / "pricing.md").read_text()
    section = text.split("\n## Rule codes\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(
        r"^\| `([A-Z]\d{3})` \| `([a-z-]+)` \| (\w+) \| ([^|]+) \| ([^|]+) \|$",
        section,
        re.MULTILINE,
    )
    assert [row[0] for row in rows] == list(RULES)
    for code, name, default, summary, reason in rows:
        assert (name, default, summary.strip()) == (
            RULES[code].name,
            RULES[code].severity.value,
            RULES[code].summary,
        )
        assert reason.strip()


# -- problems --------------------------------------------------------------------------


def test_a_problem_names_its_rule() -> None:
    problem = Problem(ERROR, "package coins_500, USD/web", "costs too much", code="P001")
    assert str(problem) == "error[P001]: package coins_500, USD/web: costs too much"
    assert problem.rule is RULES["P001"]
    assert problem.to_data() == {
        "code": "P001",
        "severity": "error",
        "where": "package coins_500, USD/web",
        "message": "costs too much",
    }
    error = problem.to_error()
    assert isinstance(error, PricingProblemError)
    assert (error.where, error.message) == (problem.where, problem.message)


def test_a_problem_needs_a_known_code() -> None:
    with pytest.raises(TypeError, match="code"):
        Problem(ERROR, "regions", "none")  # type: ignore[call-arg]
    with pytest.raises(InvalidPriceBookError, match="unknown rule code 'P999'"):
        Problem(ERROR, "regions", "none", code="P999")
    with pytest.raises(InvalidTypeError):
        Problem(ERROR, "regions", "none", code=1)  # type: ignore[arg-type]


def test_an_unknown_code_suggests_close_ones() -> None:
    with pytest.raises(InvalidPriceBookError, match=r"did you mean P002\?$"):
        rule("p002")
    with pytest.raises(InvalidPriceBookError, match=r"did you mean P002\?$"):
        rule("P02")
    with pytest.raises(InvalidPriceBookError, match=r"RULES$"):
        rule("X999")


# -- overrides ---------------------------------------------------------------------------


def test_raise_a_warning_to_an_error() -> None:
    untaxed = EXAMPLES["F003"]()
    untaxed.validate()
    strict = attrs.evolve(untaxed, rules={"F003": "error"})
    assert [(p.code, p.severity) for p in strict.check()] == [("F003", ERROR)]
    with pytest.raises(PriceBookInvalidError, match=r"1 error \(F003\)"):
        strict.validate()
    with pytest.raises(PriceBookInvalidError):
        untaxed.validate(rules={"F003": Severity.ERROR})


def test_lower_an_error_to_a_warning() -> None:
    dearer = EXAMPLES["P001"]()
    with pytest.raises(PriceBookInvalidError, match=r"\(P001\)"):
        dearer.validate()
    lenient = attrs.evolve(dearer, rules={"P001": "warning"})
    assert {(p.code, p.severity) for p in lenient.check()} == {("P001", WARNING)}
    lenient.validate()


def test_silence_a_rule() -> None:
    assert [p.code for p in EXAMPLES["F003"]().check(rules={"F003": "off"})] == []
    quiet = attrs.evolve(EXAMPLES["F001"](), rules={"F001": "off"})
    assert quiet.check() == ()
    quiet.validate()


def test_call_overrides_go_on_top_of_the_book_s() -> None:
    book = attrs.evolve(tiktok(), rules={"P002": "off", "F003": "error"})
    assert book.check() == ()
    assert {p.severity for p in book.check(rules={"P002": "error"})} == {ERROR}
    assert {p.severity for p in book.check(rules={"P002": "warning"})} == {WARNING}
    assert book.rules == (("F003", "error"), ("P002", "off"))  # unchanged


def test_overrides_are_checked_when_the_book_is_made() -> None:
    with pytest.raises(InvalidPriceBookError, match="unknown rule code 'P02'"):
        shop(rules={"P02": "off"})
    with pytest.raises(InvalidPriceBookError, match="unknown level 'ignore' for rule P002"):
        shop(rules={"P002": "ignore"})
    with pytest.raises(InvalidPriceBookError, match="unknown level 'ERROR'"):
        shop(rules={"P002": "ERROR"})
    with pytest.raises(InvalidTypeError):
        shop(rules={"P002": None})
    with pytest.raises(InvalidTypeError):
        shop(rules={2: "off"})
    with pytest.raises(InvalidTypeError):
        shop(rules="P002=off")
    with pytest.raises(InvalidPriceBookError):
        shop().check(rules={"P999": "off"})
    with pytest.raises(InvalidPriceBookError):
        shop().validate(rules={"P002": "loud"})
    with pytest.raises(InvalidPriceBookError):
        apply_rules([], {"Z001": "off"})


def test_overrides_are_stored_sorted_and_round_trip() -> None:
    book = shop(rules={"P002": Severity.ERROR, "F003": "off", "M003": Severity.WARNING})
    assert book.rules == (("F003", "off"), ("M003", "warning"), ("P002", "error"))
    assert attrs.evolve(book) == book
    assert shop(rules=None).rules == ()
    assert rule_overrides(book.rules) == book.rules


def test_rules_take_part_in_equality_but_not_in_quotes() -> None:
    plain, strict = tiktok(), tiktok(rules={"P002": "error"})
    assert plain != strict
    assert len({plain, strict, tiktok()}) == 2
    request: dict[str, Any] = {
        "account": "acct-1",
        "region": "US",
        "storefront": "ios",
        "payment_method": "card",
        "now": MAY,
        "history": BuyerHistory(first_purchase=True),
        "validity": timedelta(minutes=15),
        "sku": "coins_350",
    }
    assert plain.quote(**request) == strict.quote(**request)
    assert plain.quote(**request).fingerprint == strict.quote(**request).fingerprint


# -- the TikTok ladder ----------------------------------------------------------------


def test_the_tiktok_ladder_rises_slightly_per_coin_and_never_drops() -> None:
    per_coin = [Fraction(usd(price).minor, coins) for coins, price in TIKTOK]
    totals = [usd(price) for _, price in TIKTOK]
    assert all(a < b for a, b in pairwise(per_coin))  # rises
    assert all(a < b for a, b in pairwise(totals))  # never drops
    # from 1.414 to 1.4285 cents a coin: about one percent in all
    assert Fraction(14, 10) < per_coin[0] < per_coin[-1] < Fraction(143, 100)
    assert per_coin[-1] / per_coin[0] < Fraction(102, 100)


def test_the_tiktok_ladder_validates_by_default() -> None:
    book = tiktok()
    book.validate()
    problems = book.check()
    assert {(p.code, p.severity) for p in problems} == {("P002", WARNING)}
    # neighbouring pairs (6) and the worst pair (the biggest against the smallest), not 21
    assert len(problems) == 7
    assert problems[-1].where == "package coins_17500, USD/ios"
    assert "than package coins_70 " in problems[-1].message
    assert worst(problems) is WARNING


def test_the_tiktok_ladder_is_refused_with_p002_raised_to_an_error() -> None:
    for strict, rules in ((tiktok(rules={"P002": "error"}), None), (tiktok(), {"P002": "error"})):
        with pytest.raises(PriceBookInvalidError) as caught:
            strict.validate(rules=rules)
        assert caught.value.message == "the price book has 7 errors (P002)"
        assert len(caught.value.exceptions) == 7


# -- rendering ---------------------------------------------------------------------------


def test_render_text() -> None:
    problems = EXAMPLES["R002"]().check()
    assert render(problems) == (
        "warning[R002]: region GB: sells in GBP, but nothing has a GBP price\n"
        "warning[F003]: region GB: has no tax rule: no tax is charged there\n"
        "0 errors, 2 warnings"
    )
    assert render([]) == "no problems"
    error = Problem(ERROR, "regions", "the book sells in no region", code="R001")
    assert render([error]).endswith("\n1 error, 0 warnings")
    assert render([error, error, problems[0]]).endswith("\n2 errors, 1 warning")


def test_render_json() -> None:
    problems = EXAMPLES["M003"]().check()
    text = render(problems, "json")
    assert json.loads(text) == [
        {
            "code": "M003",
            "severity": "warning",
            "where": "promotion grouped",
            "message": "stacking group 'x' has no effect: the book applies only the best "
            "single promotion",
        }
    ]
    assert render([], format="json") == "[]"
    with pytest.raises(ValidationError, match="format"):
        render(problems, "xml")  # type: ignore[arg-type]


def test_worst() -> None:
    warning = EXAMPLES["F003"]().check()
    assert worst([]) is None
    assert worst(warning) is WARNING
    assert worst([*warning, *EXAMPLES["R001"]().check()]) is ERROR
    assert worst(iter(warning)) is WARNING


# -- properties --------------------------------------------------------------------------

codes = st.sampled_from(sorted(RULES))
levels = st.sampled_from(LEVELS)


@st.composite
def problems(draw: st.DrawFn) -> Problem:
    code = draw(codes)
    severity = draw(st.sampled_from([RULES[code].severity, ERROR, WARNING]))
    # Places and messages are one line: identifiers, codes and amounts.
    line = st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"])
    where = draw(st.text(line, max_size=20))
    message = draw(st.text(line, max_size=40))
    return Problem(severity, where, message, code=code)


@given(st.lists(problems(), max_size=8), st.dictionaries(codes, levels, max_size=6))
def test_apply_rules_sets_or_drops_each_rule_and_keeps_the_order(
    found: list[Problem], overrides: dict[str, str]
) -> None:
    applied = apply_rules(found, overrides)
    kept = [p for p in found if overrides.get(p.code) != "off"]
    assert [(p.code, p.where, p.message) for p in applied] == [
        (p.code, p.where, p.message) for p in kept
    ]
    for before, after in zip(kept, applied, strict=True):
        level = overrides.get(before.code)
        assert after.severity is (before.severity if level is None else Severity(level))
    assert apply_rules(applied, overrides) == applied  # applying twice changes nothing
    assert apply_rules(found, {}) == tuple(found)


@given(st.lists(problems(), max_size=8))
def test_render_agrees_with_the_problems(found: list[Problem]) -> None:
    assert json.loads(render(found, "json")) == [p.to_data() for p in found]
    lines = render(found).split("\n")
    if not found:
        assert lines == ["no problems"]
        assert worst(found) is None
        return
    assert len(lines) == len(found) + 1
    errors = sum(p.severity is ERROR for p in found)
    assert lines[-1].startswith(f"{errors} error")
    assert worst(found) is (ERROR if errors else WARNING)


prices = st.integers(1, 5_000)


@given(
    st.lists(
        st.tuples(st.integers(1, 2_000), prices), min_size=1, max_size=6, unique_by=lambda t: t[0]
    ),
    st.dictionaries(st.sampled_from(["P001", "P002"]), levels, max_size=2),
)
def test_package_ladders_under_overrides(
    ladder: list[tuple[int, int]], overrides: dict[str, str]
) -> None:
    """Random ladders: every problem has a registered code at its default
    severity; a rule switched off leaves none of its problems; validate()
    refuses exactly the books that have an error after the overrides."""
    packages = [
        CoinPackage(f"coins_{coins}", coins, {"web": Money.from_minor(minor, "USD")})
        for coins, minor in ladder
    ]
    book = shop(packages=packages)
    found = book.check()
    for problem in found:
        assert problem.severity is RULES[problem.code].severity
    overridden = book.check(rules=overrides)
    assert overridden == apply_rules(found, overrides)
    for code, level in overrides.items():
        mine = [p for p in overridden if p.code == code]
        if level == "off":
            assert not mine
        else:
            assert all(p.severity.value == level for p in mine)
    errors = sum(p.severity is ERROR for p in overridden)
    if errors:
        with pytest.raises(PriceBookInvalidError) as caught:
            attrs.evolve(book, rules=overrides).validate()
        assert len(caught.value.exceptions) == errors
    else:
        attrs.evolve(book, rules=overrides).validate()
