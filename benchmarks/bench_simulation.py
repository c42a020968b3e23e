"""The economy simulator at scale: 100,000 viewers and 1,000 creators over 30
days, in memory, through the real CoinEconomy.

Run with ``python3 tasks.py bench`` (or ``.venv/bin/python
benchmarks/bench_simulation.py``; ``--quick`` for a small run, ``--help`` for
the options). It runs ``examples/economy.toml`` with the audience of
``examples/population.toml`` scaled to ``--viewers`` and ``--creators``, and
prints, day by day, the commands run, the commands per second and the
process's resident memory; then the share of the time spent inside the
economy's commands (the engine) against the simulation's own code, and the
target: the whole run in under 10 minutes.

Memory: the simulation streams its metrics to CSV and keeps, besides one
small record per viewer and per creator, only the provider events it has
scheduled (at most 30 days ahead); the fake providers forget the charges and
payouts no event will follow, and each day ends by delivering the economy's
events and pruning what only retries need. The memory store keeps the whole
books (every transaction, posting, lot and record), so the process grows
with the commands run; ``--store sqlite`` keeps the books on disk instead,
which shows what the simulation itself holds. ``--own-memory`` measures the
simulation's own state with the memory store too: at the end of each day it
adds up the objects the run holds apart from the economy, the store and the
definitions (its viewers and creators, their counters, the provider events
still to come and the fake providers' charges), and prints it beside the
process's memory.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import attrs

from coinecon.adapters.memory import MemoryStore
from coinecon.adapters.sqlite import SqliteStore
from coinecon.definitions import load
from coinecon.ports import Store
from coinecon.simulation import _run, load_population, simulate

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TARGET_SECONDS = 600.0  # the whole run, 100,000 viewers over 30 days


# What a run holds that is not its own: the engine and its books, and the
# definitions it was given.
NOT_OWN = ("economy", "store", "definition", "population", "book", "catalog", "clock")


def deep_size(value: object, seen: set[int]) -> int:
    """The bytes of *value* and of what it holds (containers, instance
    dicts and slots), counting each object once across calls with *seen*."""
    if id(value) in seen or isinstance(value, type):
        return 0
    seen.add(id(value))
    size = sys.getsizeof(value)
    if isinstance(value, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in value.items())
    elif isinstance(value, list | tuple | set | frozenset):
        size += sum(deep_size(item, seen) for item in value)
    if hasattr(value, "__dict__"):
        size += deep_size(vars(value), seen)
    for cls in type(value).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if name != "__weakref__" and hasattr(value, name):
                size += deep_size(getattr(value, name), seen)
    return size


def track_own_memory(sizes: list[float]) -> None:
    """Append to *sizes*, at the end of each simulated day, the MiB the run
    holds of its own (see :data:`NOT_OWN`)."""
    # The run's own end of day: a benchmark may reach into the simulation.
    run_class = _run._Run  # noqa: SLF001
    keep_house = run_class.keep_house

    def measured(self: _run._Run) -> None:
        keep_house(self)
        seen = {id(getattr(self, name)) for name in NOT_OWN}
        held = sum(deep_size(v, seen) for name, v in vars(self).items() if name not in NOT_OWN)
        sizes.append(held / 2**20)

    run_class.keep_house = measured  # type: ignore[method-assign]


def resident_mib() -> float:
    """The process's resident memory now, in MiB (Linux)."""
    with Path("/proc/self/statm").open() as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class DayLog:
    """Takes the simulation's progress lines; notes time and memory per day
    (and the run's own memory, if *own* is filled in as days end)."""

    def __init__(self, own: list[float] | None = None) -> None:
        self.started = time.perf_counter()
        self.days: list[tuple[int, float, float]] = []  # day, seconds, MiB
        self.own = own

    def write(self, text: str) -> int:
        if text.startswith("\rday "):
            day = int(text.split()[1].split("/", maxsplit=1)[0])
            self.days.append((day, time.perf_counter() - self.started, resident_mib()))
            seconds, mib = self.days[-1][1], self.days[-1][2]
            own = f"  (the simulation's own: {self.own[-1]:6.2f} MiB)" if self.own else ""
            print(f"  day {day:>3}: {seconds:8.1f} s  {mib:8.1f} MiB{own}", flush=True)
        return len(text)

    def flush(self) -> None:
        """Nothing is buffered."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 viewers, 50 creators, 3 days")
    parser.add_argument("--viewers", type=int, default=100_000)
    parser.add_argument("--creators", type=int, default=1_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--store", choices=("memory", "sqlite"), default="memory")
    parser.add_argument(
        "--own-memory",
        action="store_true",
        help="also measure the simulation's own state at the end of each day (slower)",
    )
    options = parser.parse_args(argv)
    if options.quick:
        options.viewers, options.creators, options.days = 2_000, 50, 3
    definition = load(EXAMPLES / "economy.toml")
    population = attrs.evolve(
        load_population(EXAMPLES / "population.toml"),
        viewers=options.viewers,
        creators=options.creators,
    )
    print(
        f"simulation: {options.viewers:,} viewers, {options.creators:,} creators, "
        f"{options.days} days, {options.store} store"
    )
    own: list[float] = []
    if options.own_memory:
        track_own_memory(own)
    log = DayLog(own if options.own_memory else None)
    with tempfile.TemporaryDirectory() as directory:
        store: Store = (
            MemoryStore()
            if options.store == "memory"
            else SqliteStore(Path(directory) / "books.db", synchronous="OFF")
        )
        result = simulate(
            definition,
            population,
            days=options.days,
            seed=1,
            store=store,
            out=Path(directory) / "out",
            progress=log,
            gc_freeze=True,  # as `coinecon simulate` runs it
        )
    rate = result.commands / result.seconds
    engine = result.engine_seconds / result.seconds
    print(
        f"{result.commands:,} commands in {result.seconds:,.1f} s ({rate:,.0f}/s), "
        f"{engine:.0%} of the time in the engine, {1 - engine:.0%} in the simulation's own "
        f"code (with the final verify())"
    )
    if len(log.days) >= 2:
        first_day, _, first_mib = log.days[0]
        last_day, _, last_mib = log.days[-1]
        per_day = (last_mib - first_mib) / max(last_day - first_day, 1)
        print(
            f"memory: {first_mib:,.1f} MiB after day {first_day}, {last_mib:,.1f} after day "
            f"{last_day}: {per_day:,.1f} MiB a day"
            + (
                " (the memory store keeps the books: --own-memory or --store sqlite shows "
                "the simulation's own)"
                if options.store == "memory"
                else ""
            )
        )
        if own:
            print(
                f"the simulation's own state: {own[0]:,.2f} MiB after day {first_day}, "
                f"{own[-1]:,.2f} after day {last_day}: "
                f"{(own[-1] - own[0]) / max(last_day - first_day, 1):,.3f} MiB a day"
            )
    print(f"verify: {'clean' if result.verified else 'PROBLEMS: ' + result.problems[0]}")
    if (
        not options.quick
        and not options.own_memory  # its measuring takes time of its own
        and options.viewers >= 100_000
        and options.days >= 30
    ):
        verdict = "PASS" if result.seconds < TARGET_SECONDS else "FAIL"
        print(f"target: the whole run under {TARGET_SECONDS:.0f} s: {verdict}")
    return 0 if result.verified else 1


if __name__ == "__main__":
    sys.exit(main())
