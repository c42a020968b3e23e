"""Mutation testing for coinecon, on the standard library alone.

A mutant is the source of one module with one small change a rewrite could
make by mistake: a comparison flipped (``<`` to ``<=``), ``and`` for ``or``,
``any`` for ``all``, an integer off by one, ``+`` for ``-``, a ``not`` dropped,
a ``raise`` whose guard never fires, an ``abs()`` dropped, a value returned as
``None``. Each mutant is written into a private copy of the project (never
into the working tree), the tests mapped to its module run against it, and the
mutant is *killed* if they fail and *survives* if they pass. A surviving mutant
is a change the tests cannot see.

Usage (from the project root)::

    python3 tasks.py mutate                     # every target module
    python3 tasks.py mutate money wallets       # by name or path
    python3 tasks.py mutate --sample 20 --seed 1 --jobs 2 checks

Mutants that cannot change behaviour are listed, with the reason, in
``tools/equivalent_mutants.txt``; the report counts them as equivalent rather
than survived. See ``docs/development.md``.
"""

from __future__ import annotations

import argparse
import ast
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT_FILE = Path(__file__).resolve().parent / "equivalent_mutants.txt"

# The modules mutated by default, each with the tests that should notice a
# change in it: the fastest and most specific first, since pytest stops at the
# first failure. Tests that do not exist (yet) are skipped; a test may be a
# pytest node id (``file::Class``).
TARGETS: dict[str, tuple[str, ...]] = {
    "src/coinecon/money/money.py": (
        "tests/test_mutants_money.py",
        "tests/test_money.py",
        "tests/test_units.py",
        "tests/test_rate_rounding.py",
        "src/coinecon/money/money.py",
    ),
    "src/coinecon/money/rounding.py": (
        "tests/test_mutants_money.py",
        "tests/test_rate_rounding.py",
        "tests/test_money.py",
        "src/coinecon/money/rounding.py",
    ),
    "src/coinecon/money/units.py": (
        "tests/test_mutants_money.py",
        "tests/test_units.py",
        "tests/test_money.py",
        "src/coinecon/money/units.py",
    ),
    "src/coinecon/money/rate.py": (
        "tests/test_mutants_money.py",
        "tests/test_rate_rounding.py",
        "tests/test_money.py",
        "src/coinecon/money/rate.py",
    ),
    "src/coinecon/ledger/lots.py": (
        "tests/test_mutants_ledger.py",
        "tests/test_spendable.py",
        "tests/test_ledger.py",
        "tests/test_verification.py",
        "tests/test_wallets.py",
        "src/coinecon/ledger/lots.py",
    ),
    "src/coinecon/ledger/journal.py": (
        "tests/test_mutants_ledger.py",
        "tests/test_ledger.py",
        "tests/test_verification.py",
        "tests/test_trusted_builders.py",
        "tests/test_metadata_limits.py",
        "src/coinecon/ledger/journal.py",
    ),
    "src/coinecon/ledger/verification.py": (
        "tests/test_verification.py",
        "tests/test_flat_costs.py",
    ),
    "src/coinecon/ledger/wallets.py": (
        "tests/test_mutants_wallets.py",
        "tests/test_wallets.py",
        "tests/test_wallets_json.py",
        "tests/test_idempotency.py",
        "tests/test_prune.py",
        "tests/test_spendable.py",
        "tests/test_contract_memory.py",
        # The model on memory only: wallets.py is the same on every store,
        # and the SQLite machine takes several times as long.
        "tests/test_wallets_stateful.py::TestWalletsAgainstModel",
        "src/coinecon/ledger/wallets.py",
    ),
    "src/coinecon/ledger/entries.py": (
        "tests/test_entries.py",
        "tests/test_economy.py",
        "tests/test_wallets.py",
        "tests/test_verification.py",
        "tests/test_recharge_values.py",
        "src/coinecon/ledger/entries.py",
    ),
    "src/coinecon/recharge/books.py": (
        "tests/test_entries.py",
        "tests/test_recharge_values.py",
        "tests/test_economy.py",
        "src/coinecon/recharge/books.py",
    ),
    "src/coinecon/recharge/purchases.py": (
        "tests/test_economy.py",
        "tests/test_recharge_values.py",
    ),
    "src/coinecon/pricing/checks.py": (
        "tests/test_mutants_checker.py",
        "tests/test_pricing.py",
        "tests/test_pricing_properties.py",
    ),
    "src/coinecon/_recurrence.py": (
        "tests/test_recurrence.py",
        "tests/test_pricing.py",
    ),
}

# What a sandbox holds: enough of the project for pytest to run as it does here.
COPIED = ("src", "tests", "pyproject.toml", "conftest.py")

_COMPARE_FLIPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_OPERATOR_TEXT: dict[type[ast.AST], str] = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.And: "and",
    ast.Or: "or",
    ast.Add: "+",
    ast.Sub: "-",
}
# What ``return x`` -> ``return None`` applies to: plain values, not calls or
# constructions, whose replacement by None is a plausible slip.
_SIMPLE_RETURNS = (ast.Name, ast.Attribute, ast.Constant, ast.Compare, ast.BoolOp, ast.UnaryOp)
_SHORT = 60


# -- mutants -------------------------------------------------------------------


@dataclass(frozen=True)
class Mutant:
    """One change to one module.

    Attributes:
        module: the module's path relative to the project root, with ``/``.
        scope: the qualified name of the function (or class) it is in, such
            as ``Lot.take``; empty at module level.
        line: the 1-based line the change starts on.
        operator: the kind of change (``compare``, ``boolean``, ``constant``...).
        description: what changes, such as ``` `<` -> `<=` in `a < b` ```.
        line_text: the source line, stripped, as the allow-list quotes it.
        start: the byte offset in the source where the replaced text starts.
        end: the byte offset where it ends.
        replacement: the text put in its place.
    """

    module: str
    scope: str
    line: int
    operator: str
    description: str
    line_text: str
    start: int
    end: int
    replacement: str

    def apply(self, source: bytes) -> bytes:
        """The module's *source* with this change made."""
        return source[: self.start] + self.replacement.encode() + source[self.end :]

    @property
    def where(self) -> str:
        """``module:line``."""
        return f"{self.module}:{self.line}"


def _shorten(text: str) -> str:
    return text if len(text) <= _SHORT else text[: _SHORT - 1] + "…"


@dataclass
class _Candidate:
    node: ast.expr | ast.stmt
    operator: str
    description: str
    replacement: str
    scope: str
    statement: bool = False


class _Collector(ast.NodeVisitor):
    """Walks a module and proposes a replacement text for each mutable node.

    It leaves alone what only documents or types the code, or only words its
    messages: docstrings, annotations, decorators, f-strings, ``__all__`` and
    ``if TYPE_CHECKING:`` blocks.
    """

    def __init__(self) -> None:
        self.found: list[_Candidate] = []
        self._scope: list[str] = []

    def _add(
        self,
        node: ast.expr | ast.stmt,
        operator: str,
        description: str,
        replacement: str,
        *,
        statement: bool = False,
    ) -> None:
        scope = ".".join(self._scope)
        self.found.append(
            _Candidate(node, operator, description, replacement, scope, statement=statement)
        )

    # Parts that are skipped.

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        """Skip f-strings: they only word messages."""

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        args = node.args
        for default in [*args.defaults, *args.kw_defaults]:
            if default is not None:
                self.visit(default)
        self._scope.append(node.name)
        for statement in node.body:
            self.visit(statement)
        self._scope.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        """Visit the defaults and the body, not the decorators or annotations."""
        self._visit_function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        """As :meth:`visit_FunctionDef`."""
        self._visit_function(node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        """Visit the body of a lambda."""
        self.visit(node.body)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        """Visit the body, not the decorators."""
        self._scope.append(node.name)
        for statement in node.body:
            self.visit(statement)
        self._scope.pop()

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        """Visit the value, not the annotation."""
        if node.value is not None:
            self.visit(node.value)

    def visit_Assign(self, node: ast.Assign) -> None:
        """Skip ``__all__``."""
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return
        self.generic_visit(node)

    def visit_If(self, node: ast.If) -> None:
        """Skip ``if TYPE_CHECKING:``; drop the guard of an ``if ...: raise``."""
        if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            return
        if isinstance(node.body[-1], ast.Raise):
            test = _shorten(ast.unparse(node.test))
            self._add(node.test, "raise-guard", f"`if {test}: raise` -> `if False: raise`", "False")
        self.generic_visit(node)

    # Mutations.

    def visit_Compare(self, node: ast.Compare) -> None:
        """Flip each comparison operator of a (chained) comparison."""
        for i, op in enumerate(node.ops):
            flipped = _COMPARE_FLIPS.get(type(op))
            if flipped is None:
                continue
            ops = list(node.ops)
            ops[i] = flipped()
            mutated = ast.Compare(left=node.left, ops=ops, comparators=node.comparators)
            text, changed = ast.unparse(node), ast.unparse(mutated)
            if len(text) <= _SHORT:
                description = f"`{text}` -> `{changed}`"
            else:
                before, after = _OPERATOR_TEXT[type(op)], _OPERATOR_TEXT[flipped]
                description = f"`{before}` -> `{after}` in `{_shorten(text)}`"
            self._add(node, "compare", description, changed)
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        """``and`` <-> ``or``."""
        other: ast.boolop = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        mutated = ast.BoolOp(op=other, values=node.values)
        before, after = _OPERATOR_TEXT[type(node.op)], _OPERATOR_TEXT[type(other)]
        self._add(
            node,
            "boolean",
            f"`{before}` -> `{after}` in `{_shorten(ast.unparse(node))}`",
            ast.unparse(mutated),
        )
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        """``+`` <-> ``-`` on numbers (not on text, where ``-`` cannot run)."""
        texts = (ast.JoinedStr,)
        is_text = any(
            isinstance(side, texts)
            or (isinstance(side, ast.Constant) and isinstance(side.value, str))
            for side in (node.left, node.right)
        )
        if isinstance(node.op, (ast.Add, ast.Sub)) and not is_text:
            other: ast.operator = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
            mutated = ast.BinOp(left=node.left, op=other, right=node.right)
            before, after = _OPERATOR_TEXT[type(node.op)], _OPERATOR_TEXT[type(other)]
            self._add(
                node,
                "arithmetic",
                f"`{before}` -> `{after}` in `{_shorten(ast.unparse(node))}`",
                ast.unparse(mutated),
            )
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        """``+=`` <-> ``-=``."""
        if isinstance(node.op, (ast.Add, ast.Sub)):
            other: ast.operator = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
            mutated = ast.AugAssign(target=node.target, op=other, value=node.value)
            before, after = _OPERATOR_TEXT[type(node.op)], _OPERATOR_TEXT[type(other)]
            self._add(
                node,
                "arithmetic",
                f"`{before}=` -> `{after}=` in `{_shorten(ast.unparse(node))}`",
                ast.unparse(mutated),
                statement=True,
            )
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        """``not x`` -> ``x``."""
        if isinstance(node.op, ast.Not):
            operand = ast.unparse(node.operand)
            self._add(
                node,
                "not",
                f"`not {_shorten(operand)}` -> `{_shorten(operand)}`",
                operand,
            )
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        """``any`` <-> ``all``; ``abs(x)`` -> ``x``."""
        func = node.func
        if isinstance(func, ast.Name) and func.id in {"any", "all"} and not node.keywords:
            other = "all" if func.id == "any" else "any"
            self._add(
                func,
                "any-all",
                f"`{func.id}` -> `{other}` in `{_shorten(ast.unparse(node))}`",
                other,
            )
        if isinstance(func, ast.Name) and func.id == "abs" and len(node.args) == 1:
            argument = ast.unparse(node.args[0])
            self._add(node, "abs", f"`abs({_shorten(argument)})` -> `{argument}`", argument)
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        """An integer off by one: n -> n + 1, and 1 -> 0."""
        value = node.value
        if type(value) is not int:
            return
        self._add(node, "constant", f"`{value}` -> `{value + 1}`", str(value + 1))
        if value == 1:
            self._add(node, "constant", "`1` -> `0`", "0")

    def visit_Return(self, node: ast.Return) -> None:
        """``return x`` -> ``return None`` for a plain value."""
        value = node.value
        if (
            value is not None
            and isinstance(value, _SIMPLE_RETURNS)
            and not (isinstance(value, ast.Constant) and value.value is None)
        ):
            self._add(
                value,
                "return",
                f"`return {_shorten(ast.unparse(value))}` -> `return None`",
                "None",
            )
        self.generic_visit(node)


def _line_offsets(source: bytes) -> list[int]:
    """The byte offset at which each line starts (index 0 is line 1)."""
    offsets = [0]
    for line in source.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    return offsets


def _skip_docstrings(tree: ast.Module) -> None:
    """Blank out docstrings so that nothing inside them is visited (they hold
    no code, but doctest examples would otherwise look like strings anyway)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                body[0] = ast.Pass()


def generate(module: str, source: bytes) -> list[Mutant]:
    """Every mutant of *source*, the text of *module*, in source order.

    A mutant that does not parse, or that parses to the same code as the
    original (a flip that changes nothing), is left out.
    """
    tree = ast.parse(source)
    original = ast.dump(tree)
    _skip_docstrings(tree)
    collector = _Collector()
    collector.visit(tree)
    offsets = _line_offsets(source)
    lines = source.decode().splitlines()
    mutants: list[Mutant] = []
    seen: dict[tuple[int, str], int] = {}
    for candidate in collector.found:
        node = candidate.node
        start_line, end_line = node.lineno, node.end_lineno or node.lineno
        start = offsets[start_line - 1] + node.col_offset
        end = offsets[end_line - 1] + (node.end_col_offset or 0)
        # Padded with the line breaks the original spanned, so the lines below
        # keep their numbers (and tracebacks their meaning); an expression in
        # parentheses, so it binds as the original did.
        breaks = "\n" * (end_line - start_line)
        replacement = (
            f"{candidate.replacement}{breaks}"
            if candidate.statement
            else f"({candidate.replacement}{breaks})"
        )
        description = candidate.description
        count = seen.get((start_line, description), 0) + 1
        seen[start_line, description] = count
        if count > 1:
            description = f"{description} (#{count})"
        mutant = Mutant(
            module=module,
            scope=candidate.scope,
            line=start_line,
            operator=candidate.operator,
            description=description,
            line_text=lines[start_line - 1].strip(),
            start=start,
            end=end,
            replacement=replacement,
        )
        try:
            mutated = ast.dump(ast.parse(mutant.apply(source)))
        except SyntaxError:
            continue
        if mutated != original:
            mutants.append(mutant)
    mutants.sort(key=lambda m: (m.line, m.start, m.end, m.operator, m.description))
    return mutants


# -- the allow-list of equivalent mutants --------------------------------------


@dataclass(frozen=True)
class Equivalent:
    """One entry of the allow-list: a mutant that cannot change behaviour.

    Attributes:
        module: the module's path, as in :attr:`Mutant.module`, optionally
            followed by ``::`` and the function's qualified name
            (``src/coinecon/ledger/lots.py::Lot.take``) where the same line
            text appears in several places.
        line_text: the stripped source line.
        description: the mutation, as in :attr:`Mutant.description`.
        reason: why no test can tell the mutant from the original.
    """

    module: str
    line_text: str
    description: str
    reason: str

    def matches(self, mutant: Mutant) -> bool:
        """Whether this entry names *mutant*."""
        module, _, scope = self.module.partition("::")
        return (module, self.line_text, self.description) == (
            mutant.module,
            mutant.line_text,
            mutant.description,
        ) and scope in {"", mutant.scope}


SEPARATOR = " || "


def read_equivalents(path: Path) -> list[Equivalent]:
    """The entries of the allow-list at *path* (none if it does not exist).

    Each entry is one line, ``module || line text || mutation || reason``;
    blank lines and lines starting with ``#`` are ignored.
    """
    if not path.exists():
        return []
    entries = []
    for number, raw in enumerate(path.read_text("utf-8").splitlines(), start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        parts = [part.strip() for part in text.split(SEPARATOR)]
        if len(parts) != 4 or not all(parts):
            msg = f"{path}:{number}: expected 'module || line text || mutation || reason'"
            raise SystemExit(msg)
        entries.append(Equivalent(*parts))
    return entries


# -- running -------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What the tests said about one mutant.

    Attributes:
        mutant: the mutant.
        status: ``killed``, ``survived`` or ``equivalent``.
        detail: how it was killed (``tests failed``, ``timeout``...), or why
            it is equivalent.
        seconds: how long the tests ran.
    """

    mutant: Mutant
    status: str
    detail: str
    seconds: float


class Sandbox:
    """A private copy of the project in a temporary directory, where one
    mutant at a time is written and tested.

    Args:
        root: the project to copy.
        python: the interpreter that runs pytest.
    """

    def __init__(self, root: Path, python: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="coinecon-mutants-"))
        self.python = python
        ignore = shutil.ignore_patterns("__pycache__", ".hypothesis", "*.pyc")
        for name in COPIED:
            source = root / name
            if source.is_dir():
                shutil.copytree(source, self.dir / name, ignore=ignore)
            elif source.is_file():
                shutil.copy2(source, self.dir / name)
        self.env = dict(os.environ)
        for name in ("COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG", "PYTEST_ADDOPTS"):
            self.env.pop(name, None)
        # The copy's src/ comes before anything installed (an editable install
        # of the working tree included); nothing is cached between mutants.
        paths = [str(self.dir / "src"), self.env.get("PYTHONPATH", "")]
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        self.env["PYTHONDONTWRITEBYTECODE"] = "1"

    def check_isolated(self, module: str) -> None:
        """Make sure *module* imports from the sandbox, not the working tree."""
        if not module.startswith("src/"):
            return
        name = module.removeprefix("src/").removesuffix(".py").replace("/", ".")
        script = f"import {name} as m; print(m.__file__)"
        found = subprocess.run(  # noqa: S603 (our interpreter, our arguments)
            [self.python, "-c", script],
            cwd=self.dir,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        where = found.stdout.strip()
        if found.returncode != 0 or not Path(where).resolve().is_relative_to(self.dir.resolve()):
            msg = f"{module} does not import from the sandbox {self.dir}: {where or found.stderr}"
            raise SystemExit(msg)

    def run_tests(
        self, tests: Sequence[str], timeout: float, *, output: Path | None = None
    ) -> tuple[str, float]:
        """Run *tests* in the sandbox; return how they ended and how long it took.

        The result is ``passed``, ``tests failed``, ``collection error``,
        ``pytest exit N`` or ``timeout``. pytest's output goes to the file
        *output*, if given, else nowhere.
        """
        command = [
            self.python,
            "-m",
            "pytest",
            "-x",
            "-q",
            "-p",
            "no:cacheprovider",
            "--hypothesis-seed=0",
            *tests,
        ]
        started = time.monotonic()
        with (
            output.open("wb") if output else open(os.devnull, "wb") as sink,  # noqa: PTH123 (devnull)
            subprocess.Popen(  # noqa: S603 (our interpreter, our arguments)
                command,
                cwd=self.dir,
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            ) as process,
        ):
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                # The whole session: pytest may have started children.
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                return "timeout", time.monotonic() - started
        seconds = time.monotonic() - started
        return {0: "passed", 1: "tests failed", 2: "collection error"}.get(
            code, f"pytest exit {code}"
        ), seconds

    def run_mutant(self, mutant: Mutant, tests: Sequence[str], timeout: float) -> Outcome:
        """Write *mutant* into the sandbox, run *tests*, put the module back."""
        path = self.dir / mutant.module
        original = path.read_bytes()
        path.write_bytes(mutant.apply(original))
        try:
            ended, seconds = self.run_tests(tests, timeout)
            if ended == "timeout":
                # Once more with twice the time, to tell a hang from a busy machine.
                ended, seconds = self.run_tests(tests, 2 * timeout)
        finally:
            path.write_bytes(original)
        if ended == "passed":
            return Outcome(mutant, "survived", "", seconds)
        return Outcome(mutant, "killed", ended, seconds)

    def remove(self) -> None:
        """Delete the sandbox."""
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class ModuleReport:
    """The outcomes of one module's mutants.

    Attributes:
        module: the module.
        tests: the tests that ran against it.
        outcomes: one per mutant, in source order.
        baseline: seconds the tests took on the unchanged module.
        error: why the module could not be tested, if it could not.
    """

    module: str
    tests: tuple[str, ...]
    outcomes: list[Outcome] = field(default_factory=list)
    baseline: float = 0.0
    error: str = ""

    def count(self, status: str) -> int:
        """How many outcomes have *status*."""
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def score(self) -> float | None:
        """Killed over killed and survived, in percent (equivalents left out)."""
        judged = self.count("killed") + self.count("survived")
        return None if judged == 0 else 100 * self.count("killed") / judged


def _tests_for(root: Path, module: str, override: Sequence[str]) -> tuple[str, ...]:
    wanted = tuple(override) if override else TARGETS.get(module, ())
    if not wanted:
        msg = f"no tests are mapped to {module}; pass --tests"
        raise SystemExit(msg)
    return tuple(test for test in wanted if (root / test.partition("::")[0]).exists())


def resolve_modules(root: Path, names: Sequence[str]) -> list[str]:
    """The module paths that *names* mean: paths relative to *root*, or the
    stem (``money``, ``wallets``, ``checks``) or dotted name of a target."""
    if not names:
        return list(TARGETS)
    modules = []
    for name in names:
        path = Path(name)
        if (root / path).is_file():
            modules.append((root / path).resolve().relative_to(root.resolve()).as_posix())
            continue
        dotted = name.replace(".", "/")
        found = [
            target
            for target in TARGETS
            if Path(target).stem == name or target.removesuffix(".py").endswith(dotted)
        ]
        if len(found) != 1:
            msg = f"{name!r} names no single module; use a path or one of: " + ", ".join(
                Path(t).stem for t in TARGETS
            )
            raise SystemExit(msg)
        modules.extend(found)
    return modules


def _sample(mutants: list[Mutant], size: int | None, seed: int) -> list[Mutant]:
    if size is None or size >= len(mutants):
        return mutants
    chosen = random.Random(seed).sample(mutants, size)  # noqa: S311 (sampling, not secrets)
    return sorted(chosen, key=mutants.index)


@dataclass
class Options:
    """How to run: see :func:`parse_args` for each option."""

    root: Path
    modules: list[str]
    tests: list[str]
    sample: int | None
    seed: int
    jobs: int
    timeout: float | None
    equivalent: Path
    list_only: bool
    fail_under: float | None
    quiet: bool
    verbose: bool


def _progress(options: Options, text: str) -> None:
    if not options.quiet:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def _run_module(
    options: Options,
    module: str,
    mutants: list[Mutant],
    sandboxes: queue.Queue[Sandbox],
    pool: ThreadPoolExecutor,
    equivalents: list[Equivalent],
) -> ModuleReport:
    tests = _tests_for(options.root, module, options.tests)
    report = ModuleReport(module, tests)
    first = sandboxes.get()
    try:
        first.check_isolated(module)
        log = first.dir / "baseline.log"
        ended, report.baseline = first.run_tests(tests, options.timeout or 600, output=log)
        said = log.read_text("utf-8", "replace").splitlines()
    finally:
        sandboxes.put(first)
    if ended != "passed":
        tail = "\n".join(f"    {line}" for line in said[-15:])
        report.error = f"the tests fail on the unchanged module ({ended}); pytest said:\n{tail}"
        return report
    timeout = options.timeout or max(10.0, 3 * report.baseline + 5)
    _progress(
        options,
        f"{module}: {len(mutants)} mutants, tests take {report.baseline:.1f} s "
        f"(timeout {timeout:.0f} s)",
    )

    def judge(mutant: Mutant) -> Outcome:
        listed = next((e for e in equivalents if e.matches(mutant)), None)
        sandbox = sandboxes.get()
        try:
            outcome = sandbox.run_mutant(mutant, tests, timeout)
        finally:
            sandboxes.put(sandbox)
        if listed is not None and outcome.status == "survived":
            outcome = Outcome(mutant, "equivalent", listed.reason, outcome.seconds)
        elif listed is not None:
            outcome = Outcome(
                mutant,
                "killed",
                f"{outcome.detail}; listed as equivalent: remove it from the allow-list",
                outcome.seconds,
            )
        if outcome.status == "survived" or options.verbose:
            detail = f" ({outcome.detail})" if outcome.detail else ""
            _progress(options, f"  {outcome.status} {mutant.where}: {mutant.description}{detail}")
        return outcome

    report.outcomes = list(pool.map(judge, mutants))
    return report


def _format_report(reports: list[ModuleReport], seconds: float, unused: list[Equivalent]) -> str:
    lines = [f"mutation testing: {sum(len(r.outcomes) for r in reports)} mutants, {seconds:.0f} s"]
    width = max([len(r.module) for r in reports] + [6])
    lines.append(f"{'module':<{width}}  mutants  killed  survived  equivalent  score  tests(s)")
    for report in reports:
        if report.error:
            lines.append(f"{report.module:<{width}}  ERROR: {report.error}")
            continue
        score = report.score
        shown = "-" if score is None else f"{score:.1f}%"
        lines.append(
            f"{report.module:<{width}}  {len(report.outcomes):>7}  {report.count('killed'):>6}"
            f"  {report.count('survived'):>8}  {report.count('equivalent'):>10}  {shown:>6}"
            f"  {report.baseline:>7.1f}"
        )
        timeouts = sum(1 for o in report.outcomes if o.detail.startswith("timeout"))
        if timeouts:
            lines.append(f"{'':<{width}}  ({timeouts} of the killed by a timeout)")
    killed = sum(r.count("killed") for r in reports)
    survived = sum(r.count("survived") for r in reports)
    if killed + survived:
        total = f"{100 * killed / (killed + survived):.1f}%"
        lines.append(
            f"{'total':<{width}}  {'':>7}  {killed:>6}  {survived:>8}  {'':>10}  {total:>6}"
        )
    survivors = [o for r in reports for o in r.outcomes if o.status == "survived"]
    if survivors:
        lines.append("")
        lines.append("survived:")
        lines.extend(
            f"  {o.mutant.where}: {o.mutant.description}    [{o.mutant.line_text}]"
            for o in survivors
        )
    stale = [o for r in reports for o in r.outcomes if "listed as equivalent" in o.detail]
    if stale:
        lines.append("")
        lines.append("killed, yet listed as equivalent:")
        lines.extend(f"  {o.mutant.where}: {o.mutant.description}" for o in stale)
    if unused:
        lines.append("")
        lines.append("allow-list entries that match no mutant generated:")
        lines.extend(f"  {e.module}: {e.line_text} || {e.description}" for e in unused)
    return "\n".join(lines)


def run(options: Options) -> int:
    """Generate, run and report; return the exit status."""
    equivalents = read_equivalents(options.equivalent)
    plan: list[tuple[str, list[Mutant]]] = []
    generated: list[Mutant] = []
    for module in options.modules:
        mutants = generate(module, (options.root / module).read_bytes())
        generated.extend(mutants)
        plan.append((module, _sample(mutants, options.sample, options.seed)))
    if options.list_only:
        for _module, mutants in plan:
            for mutant in mutants:
                sys.stdout.write(f"{mutant.where}: {mutant.description}\n")
        return 0
    started = time.monotonic()
    python = sys.executable
    sandboxes: queue.Queue[Sandbox] = queue.Queue()
    made: list[Sandbox] = []
    try:
        for _ in range(options.jobs):
            sandbox = Sandbox(options.root, python)
            made.append(sandbox)
            sandboxes.put(sandbox)
        with ThreadPoolExecutor(max_workers=options.jobs) as pool:
            reports = [
                _run_module(options, module, mutants, sandboxes, pool, equivalents)
                for module, mutants in plan
            ]
    finally:
        for sandbox in made:
            sandbox.remove()
    checked = set(options.modules)
    unused = [
        e
        for e in equivalents
        if e.module in checked
        and options.sample is None
        and not any(e.matches(m) for m in generated)
    ]
    sys.stdout.write(_format_report(reports, time.monotonic() - started, unused) + "\n")
    if any(r.error for r in reports):
        return 2
    if options.fail_under is not None and any(
        r.score is not None and r.score < options.fail_under for r in reports
    ):
        return 1
    return 0


def parse_args(argv: Sequence[str]) -> Options:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        prog="mutate",
        description="Mutation testing: change the code in small ways, check the tests notice.",
    )
    parser.add_argument(
        "modules",
        nargs="*",
        help="module paths, or target names (money, rounding, units, rate, lots, journal, "
        "wallets, verification, checks, _recurrence); all targets by default",
    )
    parser.add_argument("--root", type=Path, default=ROOT, help="the project root (default: here)")
    parser.add_argument(
        "--tests", nargs="+", default=[], help="test files to run instead of the mapped ones"
    )
    parser.add_argument("--sample", type=int, help="test only N mutants per module, at random")
    parser.add_argument("--seed", type=int, default=0, help="the seed of --sample (default 0)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested at once (default 1)")
    parser.add_argument(
        "--timeout", type=float, help="seconds per mutant (default: 3 x the tests' time + 5)"
    )
    parser.add_argument(
        "--equivalent",
        type=Path,
        default=EQUIVALENT_FILE,
        help="the allow-list of equivalent mutants (default: tools/equivalent_mutants.txt)",
    )
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    parser.add_argument(
        "--fail-under", type=float, help="exit 1 if a module scores below this percentage"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="every mutant's outcome on stderr, not only survivors",
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if args.sample is not None and args.sample < 1:
        parser.error("--sample must be at least 1")
    root = args.root.resolve()
    return Options(
        root=root,
        modules=resolve_modules(root, args.modules),
        tests=args.tests,
        sample=args.sample,
        seed=args.seed,
        jobs=args.jobs,
        timeout=args.timeout,
        equivalent=args.equivalent,
        list_only=args.list,
        fail_under=args.fail_under,
        quiet=args.quiet,
        verbose=args.verbose,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run from the command line."""
    return run(parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
