"""The economy simulator: a synthetic population driven, day by day, through
the real :class:`~coinecon.economy.CoinEconomy`, to see what a price book
earns, pays out and leaves unspent before it ships.

Every purchase, gift, sticker, expiry, conversion and payout is the engine's
own command, with the fake payment provider scripted for declines, pending
payments, refunds and chargebacks at the population's rates: there is no
second model of the rules. Randomness comes from one seed (each viewer's day
from its own stream, so two economies run on the same population see the
same draws until their rules make them differ), and the same inputs give
byte-identical outputs. :func:`report` draws the plots (matplotlib, the
``coinecon[sim]`` extra, imported only when it runs) and writes the one-page
``report.html``. See ``docs/simulation.md``.
"""

from coinecon.simulation._population import (
    DEFAULT_POPULATION,
    Payments,
    Population,
    Segment,
    load_population,
    loads_population,
)
from coinecon.simulation._report import report
from coinecon.simulation._run import (
    COMPARE_COLUMNS,
    DAY_COLUMNS,
    SimulationResult,
    compare,
    gini,
    simulate,
)

__all__ = [
    "COMPARE_COLUMNS",
    "DAY_COLUMNS",
    "DEFAULT_POPULATION",
    "Payments",
    "Population",
    "Segment",
    "SimulationResult",
    "compare",
    "gini",
    "load_population",
    "loads_population",
    "report",
    "simulate",
]
