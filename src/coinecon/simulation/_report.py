"""The simulation's plots and its one-page HTML report.

:func:`report` reads what :func:`~coinecon.simulation.simulate` (``days.csv``,
``packages.csv``, ``summary.json``) or :func:`~coinecon.simulation.compare`
(``compare.csv`` and the runs under ``a/`` and ``b/``) wrote into a folder,
draws PNG plots there with matplotlib (the ``coinecon[sim]`` extra), and
writes ``report.html``: one page, the plots embedded as data URIs, the key
totals and the ``verify()`` verdict, no JavaScript and nothing fetched.

matplotlib is imported only inside this module's functions, never when
:mod:`coinecon` or :mod:`coinecon.simulation` is imported; without it the
report holds the tables only and says how to get the plots.
"""

from __future__ import annotations

import base64
import csv
import html
import importlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["PLOTS_HINT", "plots_available", "report"]

PLOTS_HINT = 'the plots need matplotlib: pip install "coinecon[sim]"'
"""What the report (and the command line) say when matplotlib is missing."""

REPORT = "report.html"

_MONEY = ("gross", "tax", "fees", "net", "recognised_revenue", "deferred_revenue")
_COMPARED = ("metric", "a", "b", "difference", "interval", "real")
_TOTALS = (
    "gross",
    "tax",
    "fees",
    "net",
    "recognised_revenue",
    "deferred_revenue",
    "breakage",
    "losses",
    "paid_out",
    "purchases",
    "refunds",
    "chargebacks",
    "gifts",
    "stickers",
)


def plots_available() -> bool:
    """Whether matplotlib can be imported (so :func:`report` draws plots)."""
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        return False
    return True


def report(folder: Path) -> Path | None:
    """Draw the plots of the simulation outputs in *folder* and write its
    one-page ``report.html`` there; the report's path, or ``None`` when
    *folder* holds neither a run (``summary.json``) nor a comparison
    (``compare.csv``).

    A run gets ``revenue.png`` (gross, net, recognised and deferred revenue
    over time, per currency), ``packages.png`` (purchases per package) and
    ``creators.png`` (creator earnings, sorted, and their Lorenz curve with
    the Gini coefficient); a comparison gets ``differences.png`` (B - A per
    metric, relative to A, with 95 % intervals), ``revenue.png`` (A and B
    over time, averaged over the seeds) and ``packages.png`` (A and B).
    Without matplotlib no PNG is drawn and the page says how to get them.
    """
    folder = Path(folder)
    comparison = (folder / "compare.csv").exists()
    if not comparison and not (folder / "summary.json").exists():
        return None
    plots = plots_available()
    if comparison:
        figures = _draw_comparison(folder) if plots else []
        before, after = _comparison_body(folder)
        title = "coinecon comparison report"
    else:
        figures = _draw_run(folder) if plots else []
        before, after = _run_body(folder), ""
        title = "coinecon simulation report"
    shown = [(name, caption, folder / name) for name, caption in figures]
    page = _page(title, before, shown, after, plots=plots)
    path = folder / REPORT
    path.write_text(page, encoding="utf-8")
    return path


# -- reading the outputs ---------------------------------------------------------------


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def _summary(folder: Path) -> dict[str, Any]:
    path = folder / "summary.json"
    if not path.exists():
        return {}
    found: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return found


def _number(text: str | None) -> float:
    try:
        return float(Decimal(text or "0"))
    except InvalidOperation:
        return 0.0


def _natural(name: str) -> tuple[Any, ...]:
    """A sort key that puts ``coins_500`` before ``coins_1000``."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def _series(rows: Iterable[dict[str, str]]) -> dict[str, dict[str, list[float]]]:
    """Per currency: the days and the revenue columns, gross and net cumulated
    (flows), recognised and deferred revenue as they are (balances)."""
    found: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        series = found[row["currency"]]
        series["day"].append(_number(row["day"]))
        for column in _MONEY:
            value = _number(row.get(column))
            if column in {"gross", "net", "tax", "fees"} and series[column]:
                value += series[column][-1]
            series[column].append(value)
    return found


def _packages(rows: Iterable[dict[str, str]]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for row in rows:
        totals[row["sku"]] += int(row["purchases"])
    return {sku: totals[sku] for sku in sorted(totals, key=_natural)}


def _seed_folders(folder: Path, side: str) -> list[Path]:
    base = folder / side
    if not base.is_dir():
        return []
    return sorted(
        (path for path in base.iterdir() if (path / "summary.json").exists()),
        key=lambda path: _natural(path.name),
    )


def _mean_series(folders: Sequence[Path]) -> dict[str, dict[str, list[float]]]:
    """The revenue series of *folders*' runs, averaged day by day."""
    runs = [_series(_read_csv(path / "days.csv")) for path in folders]
    found: dict[str, dict[str, list[float]]] = {}
    for currency in sorted({code for run in runs for code in run}):
        have = [run[currency] for run in runs if currency in run]
        length = min(len(series["day"]) for series in have)
        found[currency] = {
            column: [sum(series[column][i] for series in have) / len(have) for i in range(length)]
            for column in ("day", *_MONEY)
        }
    return found


# -- drawing ---------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    """A figure drawn by the Agg backend (no display, no global pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> None:
    figure.savefig(path, format="png", metadata={"Software": None})


def _draw_run(folder: Path) -> list[tuple[str, str]]:
    figures: list[tuple[str, str]] = []
    series = _series(_read_csv(folder / "days.csv"))
    if series:
        _draw_revenue(folder / "revenue.png", {"": series})
        figures.append(
            (
                "revenue.png",
                (
                    "Revenue over time, per currency: gross and net cumulated since day 0; "
                    "recognised and deferred revenue as balances at each day's end."
                ),
            )
        )
    packages = _packages(_read_csv(folder / "packages.csv"))
    if packages:
        _draw_packages(folder / "packages.png", {"": packages})
        figures.append(("packages.png", "Package mix: purchases per package over the run."))
    summary = _summary(folder)
    earnings = summary.get("creator_earnings")
    if isinstance(earnings, list) and earnings:
        _draw_creators(folder / "creators.png", [int(value) for value in earnings])
        figures.append(
            (
                "creators.png",
                (
                    "Creator earnings (in the creator unit): each creator's, highest first, "
                    "and their Lorenz curve."
                ),
            )
        )
    return figures


def _draw_revenue(path: Path, sides: dict[str, dict[str, dict[str, list[float]]]]) -> None:
    currencies = sorted({code for series in sides.values() for code in series})
    figure = _figure(10, 3.2 * len(currencies) + 0.6)
    axes = figure.subplots(len(currencies), 1, squeeze=False)
    styles = {"": "-", "A": "-", "B": "--"}
    labels = {
        "gross": "gross (cumulative)",
        "net": "net (cumulative)",
        "recognised_revenue": "recognised revenue",
        "deferred_revenue": "deferred revenue",
    }
    colours = {
        "gross": "tab:blue",
        "net": "tab:green",
        "recognised_revenue": "tab:orange",
        "deferred_revenue": "tab:red",
    }
    for row, currency in enumerate(currencies):
        ax = axes[row][0]
        for side, series in sides.items():
            if currency not in series:
                continue
            days = series[currency]["day"]
            for column, label in labels.items():
                ax.plot(
                    days,
                    series[currency][column],
                    linestyle=styles.get(side, "-"),
                    color=colours[column],
                    label=f"{side} {label}".strip(),
                )
        ax.set_title(f"Revenue, {currency}")
        ax.set_xlabel("day")
        ax.set_ylabel(currency)
        ax.grid(visible=True, alpha=0.3)
        ax.legend(fontsize="small", ncols=2 if len(sides) > 1 else 1)
    _save(figure, path)


def _draw_packages(path: Path, sides: Mapping[str, Mapping[str, float]]) -> None:
    skus = sorted({sku for packages in sides.values() for sku in packages}, key=_natural)
    figure = _figure(10, 4)
    ax = figure.subplots()
    width = 0.8 / len(sides)
    for n, (side, packages) in enumerate(sides.items()):
        positions = [i - 0.4 + width * (n + 0.5) for i in range(len(skus))]
        ax.bar(positions, [packages.get(sku, 0) for sku in skus], width, label=side or "purchases")
    ax.set_xticks(range(len(skus)), skus, rotation=20 if len(skus) > 6 else 0)
    ax.set_ylabel("purchases" if len(sides) == 1 else "purchases (mean over seeds)")
    ax.set_title("Package mix")
    ax.grid(visible=True, axis="y", alpha=0.3)
    if len(sides) > 1:
        ax.legend()
    _save(figure, path)


def _draw_creators(path: Path, earnings: list[int]) -> None:
    from coinecon.simulation._run import gini  # noqa: PLC0415

    ordered = sorted(earnings)
    coefficient = gini(ordered)
    figure = _figure(10, 4)
    left, right = figure.subplots(1, 2)
    descending = ordered[::-1]
    left.bar(range(1, len(descending) + 1), descending, width=1.0, color="tab:purple")
    left.set_xlabel("creator, by earnings")
    left.set_ylabel("earned")
    left.set_title("Creator earnings, highest first")
    left.grid(visible=True, axis="y", alpha=0.3)
    total = sum(ordered) or 1
    shares = [0.0]
    for value in ordered:
        shares.append(shares[-1] + value / total)
    people = [i / len(ordered) for i in range(len(ordered) + 1)]
    right.plot(people, shares, color="tab:purple", label="Lorenz curve")
    right.plot([0, 1], [0, 1], color="grey", linestyle=":", label="equality")
    right.fill_between(people, shares, people, color="tab:purple", alpha=0.15)
    right.set_xlabel("share of creators (poorest first)")
    right.set_ylabel("share of earnings")
    right.set_title(f"Lorenz curve, Gini {float(coefficient):.3f}")
    right.set_aspect("equal")
    right.legend(loc="upper left")
    figure.suptitle(f"Creator earnings distribution (Gini {float(coefficient):.3f})")
    _save(figure, path)


def _draw_comparison(folder: Path) -> list[tuple[str, str]]:
    figures: list[tuple[str, str]] = []
    rows = _read_csv(folder / "compare.csv")
    if _draw_differences(folder / "differences.png", rows):
        figures.append(
            (
                "differences.png",
                (
                    "B - A per metric, as a share of A's mean, with its 95 % interval over "
                    "the seeds; red where the interval leaves out zero (a real effect), grey "
                    "where it does not (noise)."
                ),
            )
        )
    sides = {
        side.upper(): _mean_series(_seed_folders(folder, side))
        for side in ("a", "b")
        if _seed_folders(folder, side)
    }
    if any(sides.values()):
        _draw_revenue(folder / "revenue.png", sides)
        figures.append(
            (
                "revenue.png",
                "Revenue over time, A (solid) and B (dashed), averaged over the seeds.",
            )
        )
    packages: dict[str, dict[str, float]] = {"A": {}, "B": {}}
    for row in rows:
        if row["metric"].startswith("packages."):
            sku = row["metric"].removeprefix("packages.")
            packages["A"][sku] = _number(row["a"])
            packages["B"][sku] = _number(row["b"])
    if packages["A"] or packages["B"]:
        _draw_packages(folder / "packages.png", packages)
        figures.append(("packages.png", "Package mix, A and B (mean purchases over the seeds)."))
    return figures


def differences_scale(shown: list[tuple[float, float, bool]]) -> float:
    """The half-width of the differences plot's axis, in % of A, for
    differences given as (difference, interval, real): what the real ones
    need with their intervals, at least 10, and 15 % more. A difference
    beyond it (a small A, a wide interval) is drawn at the edge with its
    value in its label, so that it does not flatten the others."""
    return 1.15 * max([10.0] + [abs(value) + width for value, width, real in shown if real])


def _draw_differences(path: Path, rows: list[dict[str, str]]) -> bool:
    shown = []
    for row in sorted(rows, key=lambda row: _natural(row["metric"])):
        a, difference = _number(row["a"]), _number(row["difference"])
        if a == 0:
            continue  # no scale to measure the difference against
        interval = _number(row["interval"]) if row["interval"] else 0.0
        shown.append(
            (row["metric"], 100 * difference / abs(a), 100 * interval / abs(a), row["real"])
        )
    if not shown:
        return False
    figure = _figure(10, 0.32 * len(shown) + 1.4)
    ax = figure.subplots()
    edge = differences_scale(
        [(value, interval, real == "true") for _, value, interval, real in shown]
    )
    labels = []
    for y, (metric, value, interval, real) in enumerate(shown):
        colour = "tab:red" if real == "true" else "tab:grey"
        if abs(value) + interval > edge:
            ax.plot(max(-edge, min(edge, value)), y, marker="D", color=colour)
            labels.append(f"{metric} (off scale: {value:+.0f} % ± {interval:.0f})")
            continue
        ax.errorbar(value, y, xerr=interval, fmt="o", color=colour, capsize=3)
        labels.append(metric)
    ax.set_xlim(-edge * 1.05, edge * 1.05)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(shown)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("B - A, % of A (95 % interval)")
    ax.set_title("A/B differences")
    ax.grid(visible=True, axis="x", alpha=0.3)
    _save(figure, path)
    return True


# -- the page --------------------------------------------------------------------------

_STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 1.5em auto; padding: 0 1em;
       color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; margin-top: 1.5em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f0f0f0; }
.clean { color: #156915; font-weight: bold; }
.dirty { color: #a31515; font-weight: bold; }
.note { background: #fff8dc; border: 1px solid #e0d090; padding: 0.5em 0.8em; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _table(header: Sequence[str], rows: Iterable[Sequence[object]], numeric: int = 1) -> str:
    """An HTML table; the columns from *numeric* on are right-aligned."""
    head = "".join(f"<th>{_e(name)}</th>" for name in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{_e(cell)}</td>' if i >= numeric else f"<td>{_e(cell)}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>\n"
        for row in rows
    )
    return f"<table>\n<tr>{head}</tr>\n{body}</table>\n"


def _verdict(summaries: Sequence[dict[str, Any]]) -> str:
    problems = [str(p) for summary in summaries for p in summary.get("problems", [])]
    unclean = sum(1 for summary in summaries if not summary.get("verified", False))
    if not summaries:
        return '<p class="dirty">verify: no run found</p>\n'
    runs = "the run" if len(summaries) == 1 else f"all {len(summaries)} runs"
    if not unclean:
        return f'<p class="clean">verify: the books are clean ({runs})</p>\n'
    listed = "".join(f"<li>{_e(problem)}</li>" for problem in problems[:20])
    return (
        f'<p class="dirty">verify: {unclean} of {len(summaries)} run(s) found problems</p>\n'
        f"<ul>{listed}</ul>\n"
    )


def _run_body(folder: Path) -> str:
    summary = _summary(folder)
    totals: dict[str, str] = summary.get("totals", {})
    parts = [
        "<p>"
        + ", ".join(
            f"{name} {_e(summary.get(name, '?'))}"
            for name in ("days", "seed", "viewers", "creators")
        )
        + "</p>\n",
        _verdict([summary]),
        "<h2>Key totals</h2>\n",
    ]
    currencies = sorted({key.split(".", 1)[0] for key in totals if not key.startswith("packages.")})
    rows = [
        [column.replace("_", " ")] + [totals.get(f"{code}.{column}", "") for code in currencies]
        for column in _TOTALS
        if any(f"{code}.{column}" in totals for code in currencies)
    ]
    if rows:
        parts.append(_table(["total", *currencies], rows))
    packages = sorted(
        (
            (key.removeprefix("packages."), value)
            for key, value in totals.items()
            if key.startswith("packages.")
        ),
        key=lambda item: _natural(item[0]),
    )
    if packages:
        parts.extend(["<h2>Package mix</h2>\n", _table(["package", "purchases"], packages)])
    parts.extend(
        [
            "<h2>Creators</h2>\n",
            _table(
                ["creators", "earned (creator unit)", "Gini"],
                [
                    [
                        summary.get("creators", ""),
                        summary.get("creator_units_earned", ""),
                        summary.get("creator_gini", ""),
                    ]
                ],
                numeric=0,
            ),
        ]
    )
    return "".join(parts)


def _comparison_body(folder: Path) -> tuple[str, str]:
    """The comparison's summary and verdict (above the plots), and its table
    of differences (below them: it is long)."""
    rows = _read_csv(folder / "compare.csv")
    runs = {side: _seed_folders(folder, side) for side in ("a", "b")}
    summaries = [_summary(path) for side in ("a", "b") for path in runs[side]]
    first = summaries[0] if summaries else {}
    seeds = len(runs["a"])
    parts = [
        "<p>Economy A and economy B on the same population and the same draws, over "
        f"{seeds} seed(s); "
        + ", ".join(
            f"{name} {_e(first.get(name, '?'))}" for name in ("days", "viewers", "creators")
        )
        + ". B - A is the mean per-seed difference; ± 95 % is the half-width of its 95 % "
        "interval; <em>real</em> says whether that interval leaves out zero.</p>\n",
        _verdict(summaries),
    ]
    ginis = {
        side.upper(): [_number(_summary(path).get("creator_gini")) for path in runs[side]]
        for side in ("a", "b")
    }
    if all(ginis.values()):
        means = {side: sum(values) / len(values) for side, values in ginis.items()}
        parts.append(
            f"<p>Creator earnings Gini (mean over seeds): A {means['A']:.4f}, "
            f"B {means['B']:.4f}</p>\n"
        )
    table = "<h2>Differences</h2>\n" + _table(
        ["metric", "A", "B", "B - A", "± 95 %", "real"],
        [[row[column] for column in _COMPARED] for row in rows],
    )
    return "".join(parts), table


def _page(
    title: str,
    before: str,
    figures: Sequence[tuple[str, str, Path]],
    after: str,
    *,
    plots: bool,
) -> str:
    """The page: *before*, the *figures* (name, caption, PNG file) embedded as
    data URIs (or the hint on how to get them), then *after*."""
    parts = [
        "<!DOCTYPE html>\n",
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        f"<title>{_e(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n",
        f"<h1>{_e(title)}</h1>\n",
        before,
    ]
    if not plots:
        parts.append(f'<p class="note">No plots: {_e(PLOTS_HINT)}.</p>\n')
    elif figures:
        parts.append("<h2>Plots</h2>\n")
    for name, caption, path in figures:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        parts.append(
            f'<figure id="{_e(Path(name).stem)}">\n'
            f'<img src="data:image/png;base64,{data}" alt="{_e(name)}" title="{_e(name)}">\n'
            f"<figcaption>{_e(caption)} ({_e(name)})</figcaption>\n</figure>\n"
        )
    parts.extend([after, "</body>\n</html>\n"])
    return "".join(parts)
