"""tasks.py, the one entry point of a fresh clone: the main job installs only
what it runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_demo_installs_only_the_library_and_its_two_dependencies(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    files = subprocess.run(
        ["git", "ls-files"],  # noqa: S607 (git from the PATH, as a developer runs it)
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in files:
        target = clone / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    done = subprocess.run(
        [sys.executable, "tasks.py", "demo"],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verify(): clean" in done.stdout
    assert "development tools" not in done.stdout
    python = clone / ".venv" / "bin" / "python"
    listed = subprocess.run(  # noqa: S603 (the clone's own interpreter)
        [str(python), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    installed = {line.split("==")[0] for line in listed.split()}
    assert {"attrs", "python-dateutil", "coinecon"} <= installed
    assert not installed & {"pytest", "hypothesis", "mypy", "ruff", "sphinx"}
