"""The mutation tester itself (tools/mutate.py), on a throwaway project.

The real mutation run is too slow for CI; this checks in a few seconds that the
tool still generates mutants, kills them, and reports survivors and listed
equivalents as such, so it cannot break unnoticed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parent.parent / "tools" / "mutate.py"

MODULE = '''\
"""A throwaway module."""


def clamp(x: int) -> int:
    """Never below zero."""
    if x < 0:
        return 0
    return x
'''

# clamp(0) is 0 whichever branch runs, so `x < 0` -> `x <= 0` and `0` -> `1`
# in the comparison survive these tests; everything else is killed.
TESTS = """\
from tiny import clamp


def test_clamp() -> None:
    assert clamp(-1) == 0
    assert clamp(5) == 5
"""


def project(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "tiny.py").write_text(MODULE)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_tiny.py").write_text(TESTS)
    return tmp_path


def mutate(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our interpreter and tool)
        [
            sys.executable,
            str(TOOL),
            "--root",
            str(root),
            "--tests",
            "tests/test_tiny.py",
            "--quiet",
            *args,
            "src/tiny.py",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_lists_the_mutants_in_source_order(tmp_path: Path) -> None:
    listed = mutate(project(tmp_path), "--list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        "src/tiny.py:6: `x < 0` -> `x <= 0`",
        "src/tiny.py:6: `0` -> `1`",
        "src/tiny.py:7: `0` -> `1`",
        "src/tiny.py:7: `return 0` -> `return None`",
        "src/tiny.py:8: `return x` -> `return None`",
    ]


def test_kills_reports_survivors_and_equivalents(tmp_path: Path) -> None:
    root = project(tmp_path)
    allow = tmp_path / "equivalent.txt"
    allow.write_text(
        "# comment\n"
        "\n"
        "src/tiny.py || if x < 0: || `x < 0` -> `x <= 0` || clamp(0) is 0 either way\n"
        "src/tiny.py || return 0 || `0` -> `1` || wrongly listed: clamp(-1) would be 1\n"
    )
    done = mutate(root, "--jobs", "2", "--equivalent", str(allow), "--fail-under", "90")
    assert done.returncode == 1, done.stdout + done.stderr  # 3 of 4 is below 90 %
    lines = done.stdout.splitlines()
    row = next(line for line in lines if line.startswith("src/tiny.py "))
    assert row.split()[:6] == ["src/tiny.py", "5", "3", "1", "1", "75.0%"]
    start = lines.index("survived:")
    assert lines[start : start + 2] == ["survived:", "  src/tiny.py:6: `0` -> `1`    [if x < 0:]"]
    start = lines.index("killed, yet listed as equivalent:")
    assert lines[start + 1] == "  src/tiny.py:7: `0` -> `1`"
    # The mutants were tested in a copy: the project is as it was.
    assert (root / "src" / "tiny.py").read_text() == MODULE


def test_samples_with_a_seed(tmp_path: Path) -> None:
    root = project(tmp_path)
    first = mutate(root, "--list", "--sample", "2", "--seed", "3")
    again = mutate(root, "--list", "--sample", "2", "--seed", "3")
    assert first.returncode == 0
    assert len(first.stdout.splitlines()) == 2
    assert first.stdout == again.stdout


def test_refuses_a_project_whose_tests_fail(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "tests" / "test_tiny.py").write_text(
        "def test_fails() -> None:\n    raise AssertionError\n"
    )
    done = mutate(root)
    assert done.returncode == 2
    assert "ERROR: the tests fail on the unchanged module (tests failed)" in done.stdout
