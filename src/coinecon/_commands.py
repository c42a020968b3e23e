"""The operator's subcommands of the ``coinecon`` command: verify, balance,
history, export and migrate a SQLite store.

Each reads a store with nothing but the standard library and coinecon; each
reports an error as one line and a non-zero exit status (see
:func:`coinecon.__main__.main`). Long work shows what it is doing on a
terminal, and nothing when its output is piped.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO, TypeVar

import attrs

from coinecon.adapters.sqlite import SCHEMA_VERSION, SqliteStore
from coinecon.adapters.sqlite.schema import APPLICATION_ID
from coinecon.errors import CoineconError, NotFoundError, StorageError, ValidationError
from coinecon.export import export_ledger, export_statement
from coinecon.ledger.journal import AccountKind
from coinecon.ledger.verification import verify_books
from coinecon.ledger.wallets import Wallets
from coinecon.money.money import Currency, Money
from coinecon.money.units import Unit
from coinecon.ports import Store

__all__ = ["add_commands"]

_T = TypeVar("_T")

_MAX_LIMIT = 1000
"""The most entries ``--limit`` asks for (a page of :meth:`Wallets.history
<coinecon.ledger.wallets.Wallets.history>`)."""

_EXAMPLES = {
    "verify": "example: coinecon verify books.db",
    "balance": "example: coinecon balance books.db alice",
    "history": "example: coinecon history books.db alice --limit 20",
    "export": (
        "examples:\n  coinecon export books.db --format csv > ledger.csv\n"
        "  coinecon export books.db --format jsonl --holder alice "
        "--since 2026-03-01T00:00:00+00:00"
    ),
    "migrate": (
        "example: coinecon migrate books.db   (a backup is written first, next to it; "
        "an existing one is never overwritten)"
    ),
    "check": (
        "examples:\n  coinecon check economy.toml\n"
        "  coinecon check economy.toml --rule P002=error --rule F003=off --format json\n"
        "exit status: 0 clean, 1 problems at or above --fail-on (error), 2 a file that "
        "cannot be read"
    ),
    "simulate": (
        "examples:\n  coinecon simulate economy.toml --days 30 --out run/\n"
        "  coinecon simulate economy.toml --population people.toml --seed 7 --out run/\n"
        "  coinecon simulate economy.toml --compare bonus.toml --seeds 5 --out ab/"
    ),
    "quote": (
        "examples:\n  coinecon quote economy.toml --sku coins_1000 --region US --method card\n"
        "  coinecon quote economy.toml --coins 2500 --region GB --method card --storefront web"
    ),
}


def _status(message: str) -> None:
    """Say what is being done, on a terminal only (stderr, so stdout stays data)."""
    if sys.stderr.isatty():
        print(message, file=sys.stderr, flush=True)


class _Progress:
    """A count shown on one line of a terminal as work goes (at most a few
    times a second), and nothing when stderr is not a terminal."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.count = 0
        self.shown = 0.0
        self.live = sys.stderr.isatty()

    def add(self, count: int = 1) -> None:
        self.count += count
        if self.live and time.monotonic() - self.shown > 0.25:
            self.shown = time.monotonic()
            print(f"\r{self.what}: {self.count:,}", end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.live:
            print(f"\r{self.what}: {self.count:,}, done", file=sys.stderr, flush=True)

    def counting(self, items: Iterable[_T]) -> Iterator[_T]:
        """*items*, counted as they are read."""
        for item in items:
            self.add()
            yield item


class _CountingOutput:
    """A text output that counts the records (lines) written through it."""

    def __init__(self, out: TextIO, progress: _Progress) -> None:
        self.out = out
        self.progress = progress

    def write(self, text: str) -> int:
        self.progress.add(text.count("\n"))
        return self.out.write(text)


def _existing(path: Path) -> Path:
    """*path*, a file that exists; otherwise a StorageError (exit 2)."""
    if not path.exists():
        raise StorageError(f"cannot read {path}: no such file")
    if not path.is_file():
        raise StorageError(f"{path} is not a file")
    return path


def _limit(text: str) -> int:
    """A ``--limit``: an int from 1 to 1000, or argparse's usage error."""
    try:
        limit = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= limit <= _MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"{limit} is not from 1 to {_MAX_LIMIT}")
    return limit


def _time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            f"{text!r} is not an ISO 8601 time such as 2026-03-01T00:00:00+00:00"
        ) from None
    if moment.tzinfo is None:
        raise ValidationError(f"{text!r} has no time zone; add one, such as +00:00")
    return moment


def _reader(path: Path) -> SqliteStore:
    return SqliteStore(_existing(path), read_only=True)


def verify(arguments: argparse.Namespace, out: TextIO) -> int:
    """Check the whole books of a store: exit 0 clean, 1 with its problems."""
    progress = _Progress(f"verifying {arguments.db}: postings read")
    with _reader(arguments.db) as store, store.unit_of_work() as uow:
        report = verify_books(
            uow.ledger.transactions(),
            progress.counting(uow.ledger.postings()),
            uow.ledger.accounts(),
            uow.lots.all(),
        )
    progress.done()
    print(str(report), file=out)
    return 0 if report.ok else 1


def _amount(kind: AccountKind, asset: Unit | Currency, balance: int) -> str:
    if isinstance(asset, Currency):
        money = Money.from_minor(balance, asset)
        if kind is AccountKind.CREATOR_PAYABLE:
            return f"{Money.from_minor(-balance, asset)} owed to them"
        return str(money)
    return str(asset(balance))


def balance(arguments: argparse.Namespace, out: TextIO) -> int:
    """Every account of a holder or creator, with its balance."""
    with _reader(arguments.db) as store, store.unit_of_work() as uow:
        accounts = uow.ledger.accounts_of(arguments.holder)
    if not accounts:
        raise NotFoundError(f"{arguments.holder} has no accounts in {arguments.db}")
    for account, amount in sorted(accounts.items(), key=lambda pair: str(pair[0])):
        shown = _amount(account.kind, account.asset, amount)
        print(f"{account.kind.value:<16} {account.asset.code:<8} {shown}", file=out)
    return 0


def history(arguments: argparse.Namespace, out: TextIO) -> int:
    """The latest entries of each of a holder's accounts, newest first."""
    with _reader(arguments.db) as store:
        with store.unit_of_work() as uow:
            accounts = sorted(uow.ledger.accounts_of(arguments.holder), key=str)
        if not accounts:
            raise NotFoundError(f"{arguments.holder} has no accounts in {arguments.db}")
        wallets = Wallets(store)
        for account in accounts:
            print(f"{account}:", file=out)
            page = wallets.history(account, limit=arguments.limit)
            for entry in page.entries:
                amount = _amount(account.kind, account.asset, entry.amount)
                after = _amount(account.kind, account.asset, entry.balance_after)
                print(
                    f"  {entry.occurred_at.isoformat()}  {entry.kind.value:<12} {amount:>16}"
                    f"  -> {after:<16} {entry.cause}  ({entry.transaction_id})",
                    file=out,
                )
            if page.next_cursor is not None:
                print(f"  ... older entries: {_more(arguments)}", file=out)
    return 0


def _more(arguments: argparse.Namespace) -> str:
    """How to see more of a holder's history than ``--limit`` showed."""
    if arguments.limit < _MAX_LIMIT:
        return f"--limit {min(arguments.limit * 10, _MAX_LIMIT)}"
    return f"coinecon export {arguments.db} --format csv --holder {arguments.holder}"


def export(arguments: argparse.Namespace, out: TextIO) -> int:
    """The ledger (or a holder's statement) as CSV or JSON Lines."""
    since, until = _time(arguments.since), _time(arguments.until)
    progress = _Progress(f"exporting {arguments.db}: records written")
    counted = _CountingOutput(out, progress)
    with _reader(arguments.db) as store:
        if arguments.holder is not None:  # an unknown holder: refused before any output
            with store.unit_of_work() as uow:
                if not uow.ledger.accounts_of(arguments.holder):
                    raise NotFoundError(f"{arguments.holder} has no accounts in {arguments.db}")
        if arguments.holder is None:
            export_ledger(store, counted, file_format=arguments.format, since=since, until=until)
        else:
            export_statement(
                store,
                counted,
                file_format=arguments.format,
                holder=arguments.holder,
                since=since,
                until=until,
            )
    progress.done()
    return 0


def _schema_version(path: Path, source: sqlite3.Connection) -> int:
    """The schema version of the store *source* (at *path*), after refusing
    a file of another application and a version newer than this coinecon's."""
    try:
        application_id: int = source.execute("PRAGMA application_id").fetchone()[0]
        version: int = source.execute("PRAGMA user_version").fetchone()[0]
        tables: int = source.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
    except sqlite3.Error as error:
        raise StorageError(f"cannot use {path} as a coinecon store: {error}") from error
    # As the store checks it: unmarked is an empty file; marked is coinecon's own.
    foreign = bool(tables) if application_id == version == 0 else application_id != APPLICATION_ID
    if foreign:
        raise StorageError(
            f"{path} is a SQLite database of another application, not a coinecon store"
        )
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"{path} has schema version {version}, newer than this coinecon's "
            f"{SCHEMA_VERSION}: upgrade coinecon"
        )
    return version


def _new_backup(path: Path, version: int) -> Path:
    """A new, empty file next to *path* for its backup: never one that exists."""
    stamp = datetime.now().astimezone().strftime("%Y%m%dT%H%M%S")
    for number in range(1, 1000):
        suffix = "" if number == 1 else f"-{number}"
        backup = path.with_name(f"{path.name}.v{version}-{stamp}{suffix}.bak")
        try:
            backup.open("x").close()  # created here, or taken: the next name
        except FileExistsError:
            continue
        return backup
    raise StorageError(f"cannot name a new backup of {path}: too many backups of it this second")


def migrate(arguments: argparse.Namespace, out: TextIO) -> int:
    """Upgrade a store's schema to this coinecon's, after a backup.

    A file of another application, or of a newer schema, is refused before
    anything is written; the backup never overwrites an existing file."""
    path = _existing(arguments.db)
    source = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        version = _schema_version(path, source)
        if version == SCHEMA_VERSION:
            print(f"{path} is at schema version {version} already: nothing to do", file=out)
            return 0
        backup = _new_backup(path, version)
        _status(f"backing up {path} to {backup} ...")
        try:
            target = sqlite3.connect(backup)
            try:
                source.backup(target)
            finally:
                target.close()
        except BaseException:
            backup.unlink(missing_ok=True)  # no half-written backup left behind
            raise
    finally:
        source.close()
    _status(f"migrating {path} from version {version} to {SCHEMA_VERSION} ...")
    SqliteStore(path).close()
    print(
        f"{path}: migrated from schema version {version} to {SCHEMA_VERSION}; "
        f"the file as it was is in {backup}",
        file=out,
    )
    return 0


def quote(arguments: argparse.Namespace, out: TextIO) -> int:
    """What a package (or a custom amount) costs, line by line, as a
    definition file prices it."""
    from coinecon.adapters.fake_payments import FakePaymentGateway  # noqa: PLC0415
    from coinecon.adapters.memory import MemoryStore  # noqa: PLC0415
    from coinecon.definitions import load  # noqa: PLC0415
    from coinecon.economy import CoinEconomy  # noqa: PLC0415
    from coinecon.recharge import EligibilityPolicy  # noqa: PLC0415

    definition = _definition(arguments.file, load)
    settings = definition.economy_settings()
    # A quote, not a purchase: the definition's rules, without the age requirement.
    eligibility = settings.get("eligibility") or EligibilityPolicy()
    settings["eligibility"] = attrs.evolve(eligibility, require_age=False)
    economy = CoinEconomy(store=MemoryStore(), gateway=FakePaymentGateway(), **settings)
    priced = economy.quote(
        "quote",
        region=arguments.region,
        storefront=arguments.storefront,
        payment_method=arguments.method,
        sku=arguments.sku,
        coins=arguments.coins,
    )
    print(f"{priced.total_coins} for {priced.total}", file=out)
    print("what the buyer pays:", file=out)
    for line in priced.buyer_lines:
        print(f"  {line}", file=out)
    print("what the platform pays out of it:", file=out)
    for line in priced.platform_lines:
        print(f"  {line}", file=out)
    print(f"the platform keeps {priced.net_revenue}", file=out)
    return 0


def check(arguments: argparse.Namespace, out: TextIO) -> int:
    """Lint definition files: each file's problems (those of the file, and
    the price book's rules, with the file's and the command line's
    overrides), as text or JSON."""
    from coinecon.definitions import DefinitionError, load  # noqa: PLC0415
    from coinecon.pricing import Severity, render, rule_overrides, worst  # noqa: PLC0415

    overrides = {}
    for given in arguments.rule:
        code, _, level = given.partition("=")
        overrides[code.strip()] = level.strip()
    try:  # an unknown code or level: a usage error, before any file is read
        rule_overrides(overrides)
    except CoineconError as error:
        print(f"coinecon: --rule: {error}", file=sys.stderr)
        return 2
    for path in arguments.files:  # every file, before any output
        _existing(path)
    failing = Severity(arguments.fail_on)
    status = 0
    found: list[dict[str, str]] = []
    for path in arguments.files:
        try:
            definition = load(path)
        except DefinitionError as error:
            status = max(status, 1)
            for problem in error.problems:
                found.append(
                    {"file": str(path), "code": "D000", "severity": "error"}
                    | {"where": problem.where, "message": problem.message}
                )
                if arguments.format == "text":
                    print(f"{path}: error[D000]: {problem.where}: {problem.message}", file=out)
            continue
        problems = definition.price_book.check(rules=overrides)
        if arguments.format == "text":
            for line in render(problems).splitlines():
                print(f"{path}: {line}", file=out)
        found.extend({"file": str(path)} | p.to_data() for p in problems)
        bad = worst(problems)
        if bad is Severity.ERROR or (bad is not None and failing is Severity.WARNING):
            status = max(status, 1)
    if arguments.format == "json":
        print(json.dumps(found, indent=2), file=out)
    return status


def _definition(path: Path, load: Any) -> Any:
    """The definition at *path*; a file that cannot be read is a StorageError (exit 2)."""
    return load(_existing(path))


def _store_factory(text: str) -> Callable[[], Store]:
    """``memory`` or ``sqlite:PATH`` as a maker of empty stores (one file per
    run: ``PATH``, then ``PATH`` with ``-2``, ``-3``... before its suffix)."""
    from coinecon.adapters.memory import MemoryStore  # noqa: PLC0415

    if text == "memory":
        return MemoryStore
    if not text.startswith("sqlite:") or not text.removeprefix("sqlite:"):
        raise argparse.ArgumentTypeError(f"--store is memory or sqlite:PATH, got {text!r}")
    path = Path(text.removeprefix("sqlite:"))
    made = itertools.count(1)

    def sqlite() -> Store:
        n = next(made)
        target = path if n == 1 else path.with_stem(f"{path.stem}-{n}")
        if target.exists():
            raise StorageError(f"{target} exists: a simulation starts from an empty store")
        return SqliteStore(target)

    return sqlite


def simulate(arguments: argparse.Namespace, out: TextIO) -> int:
    """``coinecon simulate``: run, or compare, economies on a synthetic population."""
    from coinecon.definitions import load  # noqa: PLC0415
    from coinecon.simulation import (  # noqa: PLC0415
        DEFAULT_POPULATION,
        compare,
        load_population,
        loads_population,
        report,
    )
    from coinecon.simulation import simulate as run  # noqa: PLC0415
    from coinecon.simulation._report import PLOTS_HINT, plots_available  # noqa: PLC0415

    def reported(folder: Path) -> None:
        page = report(folder)
        if page is not None:
            print(f"report: {page}", file=out)
        if not plots_available():
            print(f"no plots: {PLOTS_HINT}", file=out)

    definition = _definition(arguments.file, load)
    population = (
        loads_population(DEFAULT_POPULATION)
        if arguments.population is None
        else load_population(_existing(arguments.population))
    )
    stores: Callable[[], Store] = arguments.store
    if arguments.days < 1 or arguments.seeds < 1:
        raise ValidationError("--days and --seeds are at least 1")
    folder = arguments.out
    if arguments.compare is not None:
        other = _definition(arguments.compare, load)
        seeds = list(range(arguments.seed, arguments.seed + arguments.seeds))
        _status(f"comparing over {len(seeds)} seed(s): {2 * len(seeds)} runs")
        rows = compare(
            definition,
            other,
            population,
            days=arguments.days,
            seeds=seeds,
            stores=stores,
            out=folder,
            gc_freeze=True,  # this process is the simulation's own
        )
        print(f"{'metric':32} {'A':>14} {'B':>14} {'B - A':>14} {'± 95 %':>12}  real", file=out)
        for row in rows:
            print(
                f"{row['metric']:32} {row['a']:>14} {row['b']:>14} {row['difference']:>14} "
                f"{row['interval']:>12}  {row['real']}",
                file=out,
            )
        print(f"written to {folder / 'compare.csv'}", file=out)
        reported(folder)
        return 0
    result = run(
        definition,
        population,
        days=arguments.days,
        seed=arguments.seed,
        store=stores(),
        out=folder,
        progress=sys.stderr if sys.stderr.isatty() else None,
        gc_freeze=True,  # this process is the simulation's own
    )
    rate = result.commands / result.seconds if result.seconds else 0.0
    engine = result.engine_seconds / result.seconds if result.seconds else 0.0
    print(
        f"{result.days} days, {result.commands:,} commands in {result.seconds:,.1f} s "
        f"({rate:,.0f}/s, {engine:.0%} of the time in the engine)",
        file=out,
    )
    for key, value in result.totals["totals"].items():
        print(f"  {key:32} {value}", file=out)
    print(f"  {'creator earnings Gini':32} {result.totals['creator_gini']}", file=out)
    print(f"written to {folder}: days.csv, packages.csv, summary.json", file=out)
    reported(folder)
    if result.verified:
        print("verify: the books are clean", file=out)
        return 0
    print(f"verify: {len(result.problems)} problem(s), the first: {result.problems[0]}", file=out)
    return 1


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the store subcommands to the ``coinecon`` command line."""

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=_EXAMPLES[name],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.add_argument("db", type=Path, help="the SQLite store")
        return parser

    command("verify", "check the whole books of a store (exit 1 if not clean)").set_defaults(
        run=verify
    )
    shown = command("balance", "every account of a holder or creator, with its balance")
    shown.add_argument("holder", help="the holder or creator")
    shown.set_defaults(run=balance)
    listed = command("history", "the latest entries of a holder's accounts, newest first")
    listed.add_argument("holder", help="the holder or creator")
    listed.add_argument(
        "--limit", type=_limit, default=50, help=f"entries per account, 1 to {_MAX_LIMIT} (50)"
    )
    listed.set_defaults(run=history)
    exported = command("export", "the ledger, or a holder's statement, as CSV or JSON Lines")
    exported.add_argument("--format", choices=("csv", "jsonl"), required=True)
    exported.add_argument("--holder", help="a holder's statement instead of the whole ledger")
    exported.add_argument("--since", help="from this ISO 8601 time (inclusive)")
    exported.add_argument("--until", help="to this ISO 8601 time (exclusive)")
    exported.set_defaults(run=export)
    command("migrate", "upgrade a store's schema, after writing a backup").set_defaults(run=migrate)
    linted = commands.add_parser(
        "check",
        help="lint economy definition files (the price book's rules, by code)",
        description="lint economy definition files (the price book's rules, by code)",
        epilog=_EXAMPLES["check"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    linted.add_argument("files", type=Path, nargs="+", help="definition files (TOML)")
    linted.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="CODE=LEVEL",
        help="raise, lower or silence a rule: error, warning or off (repeatable)",
    )
    linted.add_argument("--format", choices=("text", "json"), default="text")
    linted.add_argument(
        "--fail-on",
        choices=("error", "warning"),
        default="error",
        help="the least severity that fails the check (error)",
    )
    linted.set_defaults(run=check)
    priced = commands.add_parser(
        "quote",
        help="what a package or a custom amount costs, as a definition file prices it",
        description="what a package or a custom amount costs, as a definition file prices it",
        epilog=_EXAMPLES["quote"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    priced.add_argument("file", type=Path, help="the economy definition (TOML)")
    what = priced.add_mutually_exclusive_group(required=True)  # one, or a usage error
    what.add_argument("--sku", help="a package")
    what.add_argument("--coins", type=int, help="a custom amount of coins")
    priced.add_argument("--region", required=True, help="the buyer's region (ISO 3166-1)")
    priced.add_argument("--method", required=True, help="the payment method")
    priced.add_argument("--storefront", default="web", help="the storefront (web)")
    priced.set_defaults(run=quote)
    simulated = commands.add_parser(
        "simulate",
        help="run a synthetic population through an economy, day by day",
        description="run a synthetic population through an economy, day by day",
        epilog=_EXAMPLES["simulate"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    simulated.add_argument("file", type=Path, help="the economy definition (TOML)")
    simulated.add_argument("--population", type=Path, help="the population (TOML)")
    simulated.add_argument("--days", type=int, default=30, help="days to simulate (30)")
    simulated.add_argument("--seed", type=int, default=1, help="the random seed (1)")
    simulated.add_argument(
        "--store",
        type=_store_factory,
        default="memory",
        help="memory (the default) or sqlite:PATH (a new file)",
    )
    simulated.add_argument("--out", type=Path, default=Path("simulation"), help="(simulation/)")
    simulated.add_argument("--compare", type=Path, help="a second economy, run on the same draws")
    simulated.add_argument(
        "--seeds", type=int, default=1, help="with --compare: seeds from --seed on (1)"
    )
    simulated.set_defaults(run=simulate)
