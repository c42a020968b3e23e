"""The economy simulator: determinism by seed, conservation every day, and
metamorphic properties (no buyers, no revenue; prices doubled with demand
that ignores price, gross revenue doubled; a 0 % share, no creator earnings)."""

from __future__ import annotations

import csv
import gc
import json
import random
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from coinecon.adapters.memory import MemoryStore
from coinecon.adapters.sqlite import SqliteStore
from coinecon.definitions import EconomyDefinition, load, loads
from coinecon.errors import ValidationError
from coinecon.money.money import Money
from coinecon.simulation import (
    DEFAULT_POPULATION,
    Population,
    compare,
    gini,
    load_population,
    loads_population,
    simulate,
)
from coinecon.simulation._run import _Run, _threshold, t975
from terminal_kit import on_a_terminal

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

PLAIN = """
[unit]
code = "COIN"
[regions]
US = "USD"
[[packages]]
sku = "small"
coins = 100
prices = { web = ["1.00 USD"] }
[[packages]]
sku = "large"
coins = 1000
prices = { web = ["9.00 USD"] }
[catalog]
gifts = [{ id = "rose", name = "Rose", price = 1 }, { id = "heart", name = "Heart", price = 5 }]
[revenue_share]
default = "{share}"
[fees]
payment_methods = [{ method = "card" }]
[eligibility]
require_age = false
[gift_policy]
creator_must_be_adult = false
"""

CROWD = """
viewers = 150
[creators]
count = 10
[payments]
decline = "{decline}"
pending = "{pending}"
refund = "{refund}"
chargeback = "{chargeback}"
[[segments]]
name = "everyone"
arrival = "50%"
gifts_per_visit = "3"
purchase = "{purchase}"
budget = "1000"
price_sensitivity = "{sensitivity}"
"""


def plain(share: str = "50%", *, double: bool = False) -> EconomyDefinition:
    text = PLAIN.replace("{share}", share)
    if double:
        text = text.replace("1.00 USD", "2.00 USD").replace("9.00 USD", "18.00 USD")
    return loads(text)


def crowd(
    purchase: str = "60%",
    sensitivity: str = "1",
    *,
    decline: str = "0%",
    pending: str = "0%",
    refund: str = "0%",
    chargeback: str = "0%",
) -> Population:
    return loads_population(
        CROWD.replace("{purchase}", purchase)
        .replace("{sensitivity}", sensitivity)
        .replace("{decline}", decline)
        .replace("{pending}", pending)
        .replace("{refund}", refund)
        .replace("{chargeback}", chargeback)
    )


def run(
    out: Path,
    definition: EconomyDefinition | None = None,
    population: Population | None = None,
    *,
    days: int = 6,
    seed: int = 1,
) -> dict[str, object]:
    result = simulate(
        definition if definition is not None else plain(),
        population if population is not None else crowd(),
        days=days,
        seed=seed,
        store=MemoryStore(),
        out=out,
    )
    assert result.verified, result.problems
    summary: dict[str, object] = json.loads((out / "summary.json").read_text())
    return summary


def totals(summary: dict[str, object]) -> dict[str, str]:
    found = summary["totals"]
    assert isinstance(found, dict)
    return found


def outputs(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_the_same_inputs_give_byte_identical_outputs(tmp_path: Path) -> None:
    people = crowd(decline="5%", pending="5%", refund="5%", chargeback="5%")
    run(tmp_path / "one", population=people, days=12)
    run(tmp_path / "two", population=people, days=12)
    assert outputs(tmp_path / "one") == outputs(tmp_path / "two")
    run(tmp_path / "three", population=people, days=12, seed=2)
    assert outputs(tmp_path / "three") != outputs(tmp_path / "one")


def test_a_run_on_sqlite_gives_what_a_run_in_memory_gives(tmp_path: Path) -> None:
    run(tmp_path / "memory", days=3)
    with SqliteStore(tmp_path / "books.db") as store:
        simulate(plain(), crowd(), days=3, seed=1, store=store, out=tmp_path / "sqlite")
    assert outputs(tmp_path / "memory") == outputs(tmp_path / "sqlite")


def test_every_day_row_conserves_coins_and_money(tmp_path: Path) -> None:
    people = crowd(decline="10%", pending="10%", refund="10%", chargeback="10%")
    run(tmp_path, population=people, days=20)
    rows = (tmp_path / "days.csv").read_text().splitlines()
    header = rows[0].split(",")
    seen = Counter[str]()
    for line in rows[1:]:
        row = dict(zip(header, line.split(","), strict=True))
        issued = int(row["coins_issued"])
        assert issued == sum(
            int(row[key]) for key in ("coins_held", "coins_spent", "coins_expired")
        )
        seen.update(key for key in ("refunds", "chargebacks", "pending") if int(row[key]))
    assert set(seen) == {"refunds", "chargebacks", "pending"}  # every path was taken


def test_the_host_delivers_every_event_and_forgets_what_only_retries_need(
    tmp_path: Path,
) -> None:
    store = MemoryStore()
    simulate(plain(), crowd(), days=4, seed=1, store=store, out=tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    events = summary["events"]
    assert events["gift.sent"] == events["gift.received"] == int(summary["totals"]["USD.gifts"])
    with store.unit_of_work() as uow:
        assert uow.outbox.pending(limit=1) == []  # all delivered
        assert uow.idempotency.get("enroll-creator-0") is None  # day 0's, forgotten


def test_the_providers_keep_only_what_events_to_come_need() -> None:
    people = crowd(decline="10%", pending="10%", refund="10%", chargeback="10%")
    simulation = _Run(plain(), people, MemoryStore(), seed=1)
    simulation.enroll()
    for day in range(10):
        simulation.day(day)
        coming = {charge for events in simulation.later.values() for _, charge in events}
        kept = {request.charge_id for request, _ in simulation.payments.charges()}
        assert kept == coming
        assert not simulation.payments.events
        assert not simulation.payouts.events
    assert coming  # refunds and chargebacks were still to come


def test_visits_come_through_the_day_so_timed_promotions_apply(tmp_path: Path) -> None:
    evenings = loads(
        PLAIN.replace("{share}", "50%")
        + """
[[promotions]]
id = "evening"
kind = "bonus-percent"
rate = "50%"
start = 2026-01-01T18:00:00Z
rrule = "FREQ=DAILY"
duration_seconds = 7200
"""
    )
    run(tmp_path, evenings, crowd(purchase="100%"), days=3)
    rows = (tmp_path / "days.csv").read_text().splitlines()
    header = rows[0].split(",")
    sold = [dict(zip(header, line.split(","), strict=True)) for line in rows[1:]]
    bonus = sum(int(row["bonus_coins"]) for row in sold)
    coins = sum(int(row["coins_sold"]) for row in sold)
    assert 0 < bonus < coins // 2  # some purchases in the two evening hours, not all


def test_creators_are_paid_within_the_cap_and_payouts_arrive() -> None:
    paying = loads(
        PLAIN.replace("{share}", "50%")
        + """
[creator_unit]
code = "DIAMOND"
[conversion]
rates = { USD = "0.01" }
[payouts]
minimum = ["1.00 USD"]
caps = [{ amount = "5.00 USD", period = "daily", time_zone = "UTC" }]
fee = { fixed = ["0.10 USD"] }
"""
    )
    people = crowd(purchase="100%", refund="5%", chargeback="5%")
    simulation = _Run(paying, people, MemoryStore(), seed=1)
    simulation.enroll()
    paid = []
    for day in range(15):
        simulation.day(day)
        paid.append(simulation.day_counts["USD", "paid_out"])
        list(simulation.rows(day))  # and the daily checks, the cash with the providers too
    assert paid[6] and paid[13] and not any(paid[:6])  # on the 7th and 14th days
    payouts = simulation.economy.payouts("creator-0")
    assert [p.status.value for p in payouts] == ["settled", "settled"]  # arrived the next day
    assert {p.amount for p in payouts} == {Money("5.00", "USD")}  # what the cap left


def test_the_daily_conservation_check_catches_books_that_do_not_balance() -> None:
    simulation = _Run(plain(), crowd(), MemoryStore(), seed=1)
    with pytest.raises(ValidationError, match="day 3: 10 coins issued, but 9 are held"):
        simulation.conserved(3, Counter({"issuance": -10, "wallet": 9}), Counter())
    with pytest.raises(ValidationError, match="day 4: USD does not balance, off by 1"):
        simulation.conserved(4, Counter(), Counter({("USD", "clearing"): 1}))
    simulation.cash["USD"] = 500  # taken, by the simulation's count
    simulation.conserved(5, Counter(), Counter({("USD", "clearing"): 500, ("USD", "fees"): -500}))
    with pytest.raises(ValidationError, match=r"day 6: the books hold 499 USD .* but 500 were"):
        simulation.conserved(
            6, Counter(), Counter({("USD", "clearing"): 499, ("USD", "fees"): -499})
        )


def test_every_purchase_is_counted_once(tmp_path: Path) -> None:
    # Three gifts a visit, and a budget for only the small package, of 6
    # coins: viewers buy it more than once in a visit.
    store = MemoryStore()
    small = loads(PLAIN.replace("{share}", "50%").replace("coins = 100\n", "coins = 6\n"))
    people = loads_population(
        CROWD.replace('budget = "1000"', 'budget = "1"').format(
            decline="0%",
            pending="0%",
            refund="0%",
            chargeback="0%",
            purchase="100%",
            sensitivity="1",
        )
    )
    simulate(small, people, days=5, seed=3, store=store, out=tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    with store.unit_of_work() as uow:
        bought = [t for t in uow.ledger.transactions() if t.kind.value == "purchase"]
    assert int(summary["totals"]["USD.purchases"]) == len(bought)
    gross = sum(p.amount for t in bought for p in t.postings if p.account.kind.value == "clearing")
    assert Decimal(summary["totals"]["USD.gross"]) * 100 == gross  # no fees, no tax here


def test_the_totals_sum_the_days_flows_and_end_at_their_balances(tmp_path: Path) -> None:
    people = crowd(refund="10%", chargeback="10%")
    found = totals(run(tmp_path, population=people, days=12))
    with (tmp_path / "days.csv").open(encoding="utf-8") as rows:
        days = [row for row in csv.DictReader(rows) if row["currency"] == "USD"]
    for key in ("gross", "tax", "fees", "net", "given_back", "paid_out"):
        assert Decimal(found[f"USD.{key}"]) == sum(Decimal(row[key]) for row in days), key
    for key in ("purchases", "gifts", "refunds", "chargebacks", "stickers"):
        assert int(found[f"USD.{key}"]) == sum(int(row[key]) for row in days), key
    for key in ("deferred_revenue", "recognised_revenue", "breakage", "losses"):
        assert Decimal(found[f"USD.{key}"]) == Decimal(days[-1][key]), key
    assert Decimal(found["USD.given_back"]) > 0  # the refunds and chargebacks gave back


def test_a_population_that_never_buys_yields_no_revenue(tmp_path: Path) -> None:
    summary = totals(run(tmp_path, population=crowd(purchase="0%")))
    assert summary.get("USD.gross", "0") == "0"
    assert summary.get("USD.purchases", "0") == "0"
    assert not any(key.startswith("packages.") for key in summary)


def test_doubled_prices_with_demand_that_ignores_price_double_gross_revenue(
    tmp_path: Path,
) -> None:
    people = crowd(sensitivity="0")
    base = totals(run(tmp_path / "base", plain(), people))
    doubled = totals(run(tmp_path / "doubled", plain(double=True), people))
    assert Fraction(base["USD.gross"]) > 0
    assert Fraction(doubled["USD.gross"]) == 2 * Fraction(base["USD.gross"])
    assert doubled["USD.gifts"] == base["USD.gifts"]


def test_a_revenue_share_of_zero_pays_creators_nothing(tmp_path: Path) -> None:
    assert run(tmp_path / "half")["creator_units_earned"] != 0
    assert run(tmp_path / "none", plain("0%"))["creator_units_earned"] == 0


def test_an_economy_compared_with_itself_differs_in_nothing(tmp_path: Path) -> None:
    rows = compare(
        plain(), plain(), crowd(), days=3, seeds=[1, 2], stores=MemoryStore, out=tmp_path
    )
    assert rows
    assert all(row["difference"] == "0.0000" and row["real"] == "false" for row in rows)
    assert (tmp_path / "a" / "seed-2" / "summary.json").exists()
    assert (tmp_path / "compare.csv").read_text().startswith("metric,a,b,difference")


def test_a_real_difference_is_told_from_noise(tmp_path: Path) -> None:
    rows = compare(
        plain(),
        plain(double=True),
        crowd(sensitivity="0"),
        days=3,
        seeds=[1, 2, 3],
        stores=MemoryStore,
        out=tmp_path,
    )
    found = {row["metric"]: row for row in rows}
    assert found["USD.gross"]["real"] == "true"
    assert found["USD.gifts"]["real"] == "false"


def test_the_interval_uses_students_t_for_the_seeds_it_has() -> None:
    assert [t975(n) for n in (1, 2, 4, 30)] == [
        Decimal("12.706"),
        Decimal("4.303"),
        Decimal("2.776"),
        Decimal("2.042"),
    ]
    assert [t975(n) for n in (35, 40, 59, 60, 119, 120, 10_000)] == [
        Decimal(t) for t in ("2.042", "2.021", "2.021", "2.000", "2.000", "1.980", "1.980")
    ]
    with pytest.raises(ValidationError):
        t975(0)


def test_a_viewer_buys_a_package_that_covers_the_gift_when_one_is_in_budget() -> None:
    simulation = _Run(plain(), crowd(), MemoryStore(), seed=1)
    viewer = simulation.viewers[0]
    draws = random.Random(5)
    assert {simulation.choose(viewer, draws, 500) for _ in range(200)} == {"large"}
    assert {simulation.choose(viewer, draws, 5000) for _ in range(200)} == {"small", "large"}
    assert {simulation.choose(viewer, draws, 50) for _ in range(200)} == {"small", "large"}


def test_the_gini_coefficient() -> None:
    assert gini([]) == 0
    assert gini([5, 5, 5, 5]) == 0
    assert gini([0, 0, 0, 10]) == Fraction(3, 4)
    assert gini([1, 2, 3, 4]) == Fraction(1, 4)


OVER = 'viewers = 5\n[payments]\ndecline = "60%"\npending = "50%"\n[[segments]]\nbudget = "5"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('viewers = 0\n[[segments]]\nbudget = "5"\n', "viewers is a positive int"),
        ("viewers = 5\n", "segments is an array"),
        ('viewers = 5\ncolour = 1\n[[segments]]\nbudget = "5"\n', "unknown key 'colour'"),
        ('viewers = 5\n[[segments]]\nbudget = "5"\narrival = "150%"\n', "at most 100%"),
        ('viewers = 5\n[[segments]]\nbudget = "5"\narrival = 0.5\n', "decimal or a percentage"),
        ("viewers = 5\n[[segments]]\nbudget = 5\n", "positive decimal as text"),
        (OVER, "more than 100%"),
        (
            (
                'viewers = 5\n[payments]\nrefund = "60%"\nchargeback = "50%"\n'
                '[[segments]]\nbudget = "5"\n'
            ),
            "refund and chargeback add up to more than 100%",
        ),
        (
            'viewers = 5\n[[segments]]\nbudget = "5"\nshare = "Infinity"\n',
            "decimal or a percentage",
        ),
        ('viewers = 5\n[[segments]]\nbudget = "5"\nshare = "NaN"\n', "decimal or a percentage"),
        ('viewers = 5\n[[segments]]\nbudget = "NaN"\n', "positive decimal as text"),
        ('viewers = 5\n[[segments]]\nbudget = "Infinity"\n', "positive decimal as text"),
        ('viewers = 5\n[[segments]]\nbudget = "1e400"\n', "budget is at most 1,000,000"),
        (
            'viewers = 5\n[[segments]]\nbudget = "5"\ngifts_per_visit = "1e400"\n',
            "at most 1,000,000",
        ),
        ('viewers = 5\n[creators]\nzipf_exponent = "2e6"\n[[segments]]\nbudget = "5"\n', "at most"),
        ("viewers = [", "a population is TOML"),
    ],
)
def test_a_malformed_population_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        loads_population(text)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ('viewers = 150\nstorefront = "wbe"', "names storefront 'wbe'"),
        ('viewers = 150\nregions = { FR = "1" }', "names region 'FR'"),
        ('viewers = 150\npayment_methods = { cash = "1" }', "names payment method 'cash'"),
        ('budget = "1000"\npackages = { huge = "1" }', "names package 'huge'"),
        ('budget = "1000"\npromotions = { sale = "2" }', "names promotion 'sale'"),
        ('budget = "1000"\ngift_mix = { lion = "1" }', "names gift 'lion'"),
    ],
)
def test_a_population_that_names_what_the_economy_lacks_is_refused(
    tmp_path: Path, change: str, message: str
) -> None:
    old = change.split("\n", maxsplit=1)[0]
    people = loads_population(
        CROWD.replace(old, change)
        .replace("{purchase}", "1")
        .replace("{sensitivity}", "1")
        .replace("{decline}", "0")
        .replace("{pending}", "0")
        .replace("{refund}", "0")
        .replace("{chargeback}", "0")
    )
    with pytest.raises(ValidationError, match=message):
        simulate(plain(), people, days=1, seed=1, store=MemoryStore(), out=tmp_path)


def test_the_default_and_example_populations_load() -> None:
    assert loads_population(DEFAULT_POPULATION).viewers == 1000
    example = load_population(EXAMPLES / "population.toml")
    assert [segment.name for segment in example.segments] == ["casual", "fans"]


def coinecon(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "coinecon", *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_the_command_runs_an_economy_and_says_what_it_wrote(tmp_path: Path) -> None:
    done = coinecon(
        "simulate",
        str(EXAMPLES / "economy.toml"),
        "--population",
        str(EXAMPLES / "population.toml"),
        "--days",
        "2",
        "--store",
        f"sqlite:{tmp_path / 'books.db'}",
        "--out",
        str(tmp_path / "run"),
    )
    assert done.returncode == 0, done.stderr
    assert "verify: the books are clean" in done.stdout
    assert "commands in" in done.stdout
    assert done.stderr == ""  # no progress when not on a terminal
    written = {path.name for path in (tmp_path / "run").iterdir()}
    assert {"days.csv", "packages.csv", "summary.json", "report.html"} <= written
    again = coinecon(
        "simulate", str(EXAMPLES / "economy.toml"), "--store", f"sqlite:{tmp_path / 'books.db'}"
    )
    assert again.returncode == 2
    assert "exists: a simulation starts from an empty store" in again.stderr


def test_the_command_compares_two_economies(tmp_path: Path) -> None:
    done = coinecon(
        "simulate",
        str(EXAMPLES / "economy.toml"),
        "--compare",
        str(EXAMPLES / "economy_bonus.toml"),
        "--days",
        "2",
        "--seeds",
        "2",
        "--out",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert "USD.gross" in done.stdout
    assert (tmp_path / "compare.csv").exists()
    bad = coinecon("simulate", str(EXAMPLES / "economy.toml"), "--store", "redis")
    assert bad.returncode == 2
    assert "--store is memory or sqlite:PATH" in bad.stderr


def test_the_seed_economy_runs_under_the_default_population(tmp_path: Path) -> None:
    summary = run(tmp_path, load(EXAMPLES / "economy.toml"), loads_population(DEFAULT_POPULATION))
    assert Fraction(totals(summary)["USD.gross"]) > 0


def test_the_command_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    done, shown = on_a_terminal(
        "simulate", str(EXAMPLES / "economy.toml"), "--days", "3", "--out", str(tmp_path)
    )
    assert done.returncode == 0, shown
    for day in (1, 2, 3):
        assert f"day {day}/3, ".encode() in shown
    assert b" commands/s, " in shown
    assert b" s left" in shown


_DRAWS = 2**53  # random() draws multiples of 2**-53 in [0, 1)


@given(
    chance=st.fractions(min_value=-1, max_value=2)
    | st.integers(0, _DRAWS).map(lambda k: Fraction(k, _DRAWS)),
    draw=st.integers(0, _DRAWS - 1),
)
@example(chance=Fraction(1, 5), draw=1801439850948198)  # 0.2's neighbours
@example(chance=Fraction(1, 5), draw=1801439850948199)
# Half way between two draws, where float() rounds down onto the lower one.
@example(chance=Fraction(_DRAWS + 1, 2 * _DRAWS), draw=_DRAWS // 2)
@example(chance=Fraction(3, _DRAWS), draw=3)
@example(chance=Fraction(3, _DRAWS), draw=2)
@example(chance=Fraction(0), draw=0)
@example(chance=Fraction(1), draw=_DRAWS - 1)
def test_a_threshold_decides_every_draw_as_the_exact_chance_does(
    chance: Fraction, draw: int
) -> None:
    """The simulation compares draws with float thresholds: for every value
    random() can give, the same way as with the exact chance."""
    value = draw / _DRAWS
    assert (value < _threshold(chance)) == (Fraction(draw, _DRAWS) < chance)


class _FreezeLog:
    """Progress that notes how many objects are frozen as each day ends."""

    def __init__(self) -> None:
        self.frozen: list[int] = []

    def write(self, text: str) -> int:
        if text.startswith("\rday "):
            self.frozen.append(gc.get_freeze_count())
        return len(text)

    def flush(self) -> None:
        """Nothing is buffered."""


def frozen_each_day(
    out: Path, days: int, log: _FreezeLog | None = None, *, gc_freeze: bool = True
) -> list[int]:
    """How many objects were frozen as each day of a run ended (noted in
    *log* as the days end, for a run that fails)."""
    log = _FreezeLog() if log is None else log
    simulate(
        plain(),
        crowd(),
        days=days,
        seed=1,
        store=MemoryStore(),
        out=out,
        progress=log,
        gc_freeze=gc_freeze,
    )
    return log.frozen


def test_a_run_sets_earlier_days_aside_from_the_collector_and_gives_them_back(
    tmp_path: Path,
) -> None:
    assert gc.get_freeze_count() == 0
    frozen = frozen_each_day(tmp_path, 3)
    assert len(frozen) == 3
    assert all(count > 0 for count in frozen), frozen
    assert frozen == sorted(frozen)  # each day adds what it left
    assert gc.get_freeze_count() == 0


def test_a_host_that_froze_objects_keeps_its_freezing(tmp_path: Path) -> None:
    gc.freeze()
    try:
        mine = gc.get_freeze_count()
        assert frozen_each_day(tmp_path, 2) == [mine, mine]
        assert gc.get_freeze_count() == mine
    finally:
        gc.unfreeze()


def test_a_run_that_fails_gives_back_what_it_set_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = _Run.day

    def failing(self: _Run, number: int) -> None:
        if number == 2:
            raise RuntimeError("the host's disk is full")
        day(self, number)

    monkeypatch.setattr(_Run, "day", failing)
    log = _FreezeLog()
    with pytest.raises(RuntimeError, match="disk is full"):
        frozen_each_day(tmp_path, 4, log)
    assert len(log.frozen) == 2 and log.frozen[-1] > 0
    assert gc.get_freeze_count() == 0


def test_a_run_freezes_nothing_unless_asked(tmp_path: Path) -> None:
    assert frozen_each_day(tmp_path, 2, gc_freeze=False) == [0, 0]
