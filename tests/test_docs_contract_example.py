"""The examples that show a host how to run the contract suite, run for real.

``docs/storage.md`` ("Running the contract suite against your own adapter")
and the docstring of ``coinecon.testing.contract`` show a host's test module
that subclasses ``StoreContract`` for a store from their own package,
``myapp.storage``. They are not doctests, so this test takes them from the
text, writes each into a fresh directory as a test module next to a stand-in
``myapp/storage.py`` (backed by ``MemoryStore`` and ``SqliteStore``) and a
``conftest.py`` with the fixture the docs use, and runs pytest on that
directory in a new process, as the host would. Every example must run the
whole contract and pass it.

If the docs change shape (a block added, removed or moved out of the section),
the extraction fails and says so: update ``EXPECTED_BLOCKS`` and the stand-ins.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import coinecon.testing.contract
from coinecon.testing.contract import StoreContract

ROOT = Path(__file__).resolve().parents[1]
STORAGE_MD = ROOT / "docs" / "storage.md"
SECTION = "## Running the contract suite against your own adapter"
EXPECTED_BLOCKS = 2
"""How many ```python blocks the section holds."""

FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")
HEADING = re.compile(r"^(?P<level>#{1,6})\s")

# The host's package, as the examples import it. Each store is new and empty.
MYAPP_STORAGE = '''\
"""Stand-ins for the stores of the docs' hypothetical host application."""

from coinecon.adapters.memory import MemoryStore
from coinecon.adapters.sqlite import SqliteStore


class PostgresStore(MemoryStore):
    """What docs/storage.md imports: a new, empty store per instance."""

    def __init__(self, dsn, schema_per_test=False):
        super().__init__()
        assert dsn.startswith(("postgresql:", "dbname=")), dsn
        self.dsn = dsn
        self.schema_per_test = schema_per_test
        self.closed = False

    def close(self):
        assert not self.closed, "closed twice"
        self.closed = True


class MyStore(SqliteStore):
    """What the docstring of coinecon.testing.contract imports: a file per test."""

    def __init__(self, path):
        assert not path.exists(), f"{path} is not new"
        super().__init__(path)
'''

# pytest-postgresql's ``postgresql`` fixture, as far as the docs use it: a
# psycopg connection to a new database, whose ``info.dsn`` connects to it.
CONFTEST = """\
import itertools
import types

import pytest

_databases = itertools.count(1)


@pytest.fixture
def postgresql():
    info = types.SimpleNamespace(dsn=f"dbname=test_{next(_databases)} host=localhost")
    return types.SimpleNamespace(info=info)
"""

PYTEST_INI = """\
[pytest]
addopts = --import-mode=importlib --strict-markers --strict-config
filterwarnings = error
"""


def python_blocks(markdown: str, heading: str) -> list[str]:
    """The fenced ```python blocks of the section under *heading*, in order.

    The section ends at the next heading of the same or a higher level; lines
    inside fences (a ``# comment`` in code) are never taken for headings.
    """
    lines = markdown.splitlines()
    starts = [n for n, line in enumerate(lines) if line.rstrip() == heading]
    assert len(starts) == 1, f"{heading!r} is in {STORAGE_MD} {len(starts)} times, not once"
    level = len(heading) - len(heading.lstrip("#"))
    blocks: list[str] = []
    fence: str | None = None
    language = ""
    body: list[str] = []
    for line in lines[starts[0] + 1 :]:
        if fence is None:
            heading_match = HEADING.match(line)
            if heading_match and len(heading_match["level"]) <= level:
                break
            fence_match = FENCE.match(line)
            if fence_match:
                fence, language, body = fence_match["fence"], fence_match["info"], []
        elif line.strip().startswith(fence[0] * len(fence)) and not line.strip().strip(fence[0]):
            if language == "python":
                blocks.append("\n".join(body) + "\n")
            fence = None
        else:
            body.append(line)
    assert fence is None, f"a {fence} fence in {heading!r} is never closed"
    return blocks


def literal_blocks(docstring: str) -> list[str]:
    """The reStructuredText literal blocks (after a ``::``) of *docstring*, dedented."""
    lines = docstring.splitlines()
    blocks: list[str] = []
    for n, line in enumerate(lines):
        if not line.rstrip().endswith("::"):
            continue
        body: list[str] = []
        for following in lines[n + 1 :]:
            if following.strip() and not following[0].isspace():
                break
            body.append(following)
        blocks.append(textwrap.dedent("\n".join(body)).strip("\n") + "\n")
    return blocks


def examples() -> dict[str, str]:
    """Every example to run, by the name of the test module it becomes."""
    found = python_blocks(STORAGE_MD.read_text(encoding="utf-8"), SECTION)
    assert len(found) == EXPECTED_BLOCKS, (
        f"expected {EXPECTED_BLOCKS} ```python blocks under {SECTION!r} in {STORAGE_MD}, "
        f"found {len(found)}"
    )
    source = Path(coinecon.testing.contract.__file__).read_text(encoding="utf-8")
    docstring = ast.get_docstring(ast.parse(source))
    assert docstring, "coinecon.testing.contract has no module docstring"
    in_docstring = literal_blocks(docstring)
    assert len(in_docstring) == 1, (
        f"expected one :: example in coinecon.testing.contract's docstring, "
        f"found {len(in_docstring)}"
    )
    modules = {f"test_storage_md_{n}.py": code for n, code in enumerate(found, start=1)}
    modules["test_contract_docstring.py"] = in_docstring[0]
    for name, code in modules.items():
        assert "StoreContract" in code, f"{name} does not use StoreContract:\n{code}"
        compile(code, name, "exec")  # a syntax error is reported here, with the example
    return modules


def test_the_host_examples_run_the_whole_contract_and_pass(tmp_path: Path) -> None:
    modules = examples()
    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "__init__.py").write_text("")
    (tmp_path / "myapp" / "storage.py").write_text(MYAPP_STORAGE)
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "pytest.ini").write_text(PYTEST_INI)
    for name, code in modules.items():
        (tmp_path / name).write_text(code)

    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTEST_ADDOPTS", "PYTEST_PLUGINS"}
    }
    # myapp is imported as installed, not found next to the tests (importlib mode).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    # Only pytest itself: no plugin installed here (xdist, randomly, ...) changes the run.
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    done = subprocess.run(  # noqa: S603 (our own interpreter, our own arguments)
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = f"{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, output

    contract_tests = [name for name in dir(StoreContract) if name.startswith("test_")]
    assert len(contract_tests) > 30, contract_tests
    passed = Counter(re.findall(r"^PASSED (test_\w+\.py)::", done.stdout, flags=re.MULTILINE))
    assert passed == dict.fromkeys(modules, len(contract_tests)), output
    summary = done.stdout.strip().splitlines()[-1]
    expected = len(contract_tests) * len(modules)
    assert re.fullmatch(rf"{expected} passed in [\d.]+s( \([\d:]+\))?", summary), output
