#!/usr/bin/env python3
"""Development tasks for coinecon, with nothing but Python needed to start.

Each task makes sure ``.venv/`` exists and holds the project and its
development tools (re-installing when ``pyproject.toml`` changes; the demo
installs only the library and its two dependencies), then runs:

    python3 tasks.py demo        the coinecon demo
    python3 tasks.py test        the test suite (tests, docs and docstring examples)
    python3 tasks.py typecheck   mypy --strict over src/, tests/, benchmarks/ and tools/
    python3 tasks.py lint        ruff check and ruff format --check
    python3 tasks.py docs        the Sphinx docs, warnings as errors
    python3 tasks.py bench       the benchmarks (ratios against raw baselines, growth with size)
    python3 tasks.py check       test, typecheck, lint and docs, as CI runs them
    python3 tasks.py mutate      mutation testing of the money-critical modules (slow, not in check)

Extra arguments after the task go to the tool (``python3 tasks.py test -k money``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".coinecon-installed"


def _run(*args: str | Path) -> int:
    return subprocess.call([str(a) for a in args], cwd=ROOT)


def _ensure_env(*, dev: bool = True) -> None:
    """Make sure ``.venv/`` holds the project: with its development tools
    (*dev*), or, for the demo, only what it runs (coinecon, attrs and
    python-dateutil); a development install serves the demo too."""
    if sys.version_info < (3, 11):  # noqa: UP036 (this script runs before any install)
        sys.exit(f"coinecon needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print("creating .venv/ ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    have = STAMP.read_text() if STAMP.exists() else ""
    if have == f"{wanted} dev" or (not dev and have == f"{wanted} runtime"):
        return
    quiet = ["--quiet", "--disable-pip-version-check"]
    if dev:
        print("installing coinecon and its development tools into .venv/ ...", flush=True)
        # Dependency groups (PEP 735) need pip 25.1 or newer.
        steps = [
            [PYTHON, "-m", "pip", "install", *quiet, "--upgrade", "pip>=25.1"],
            [PYTHON, "-m", "pip", "install", *quiet, "--editable", ".", "--group", "dev"],
        ]
    else:
        print("installing coinecon (attrs, python-dateutil) into .venv/ ...", flush=True)
        steps = [[PYTHON, "-m", "pip", "install", *quiet, "--editable", "."]]
    for step in steps:
        if _run(*step) != 0:
            sys.exit("installation failed; see the pip output above")
    STAMP.write_text(f"{wanted} {'dev' if dev else 'runtime'}")


def _tool(module: str, *args: str) -> int:
    return _run(PYTHON, "-m", module, *args)


def demo(args: list[str]) -> int:
    return _tool("coinecon", "demo", *args)


def test(args: list[str]) -> int:
    return _tool("pytest", *args)


def typecheck(args: list[str]) -> int:
    return _tool("mypy", *args)


def lint(args: list[str]) -> int:
    checked = _tool("ruff", "check", *(args or ["."]))
    formatted = _tool("ruff", "format", "--check", *(args or ["."]))
    return checked or formatted


def docs(args: list[str]) -> int:
    return _tool(
        "sphinx",
        "--fail-on-warning",
        "--nitpicky",
        "--quiet",
        "--builder",
        "html",
        "docs",
        "docs/_build/html",
        *args,
    )


def bench(args: list[str]) -> int:
    scripts = [*sorted((ROOT / "benchmarks").glob("bench_*.py")), ROOT / "benchmarks" / "scale.py"]
    status = 0
    for script in scripts:
        status = _run(PYTHON, script, *args) or status
    return status


def mutate(args: list[str]) -> int:
    return _run(PYTHON, ROOT / "tools" / "mutate.py", *args)


def check(args: list[str]) -> int:
    failed = [
        name
        for name, task in (("test", test), ("typecheck", typecheck), ("lint", lint), ("docs", docs))
        if task(args if name == "test" else []) != 0
    ]
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


TASKS = {f.__name__: f for f in (demo, test, typecheck, lint, docs, bench, check, mutate)}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        print(__doc__)
        return 2
    _ensure_env(dev=sys.argv[1] != "demo")  # the demo needs only the library
    return TASKS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
