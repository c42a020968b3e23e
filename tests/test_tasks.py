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


@pytest.mark.slow
def test_a_built_wheel_and_sdist_install_and_run(tmp_path: Path) -> None:
    """``python -m build`` makes a wheel and an sdist; each installs into a
    new virtual environment (with only attrs and python-dateutil) and runs."""
    dist = tmp_path / "dist"
    built = subprocess.run(  # noqa: S603 (our own interpreter)
        [sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = dist.glob("*.whl")
    [sdist] = dist.glob("*.tar.gz")
    for n, package in enumerate((wheel, sdist)):
        env = tmp_path / f"env-{n}"
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)  # noqa: S603
        python = env / "bin" / "python"
        installed = subprocess.run(  # noqa: S603 (the new environment's interpreter)
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                str(package),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert installed.returncode == 0, installed.stdout + installed.stderr
        ran = subprocess.run(  # noqa: S603 (the new environment's interpreter)
            [str(env / "bin" / "coinecon"), "--version"], capture_output=True, text=True, check=True
        )
        assert ran.stdout.startswith("coinecon 0.")
        demo = subprocess.run(  # noqa: S603 (the new environment's interpreter)
            [str(python), "-m", "coinecon", "demo"], capture_output=True, text=True, check=True
        )
        assert "verify(): clean" in demo.stdout
