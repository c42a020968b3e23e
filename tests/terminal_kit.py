"""Running the ``coinecon`` command with its stderr on a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import subprocess
import sys


def on_a_terminal(
    *arguments: str, timeout: float = 300
) -> tuple[subprocess.CompletedProcess[str], bytes]:
    """Run ``coinecon *arguments`` with stdout piped and stderr on a
    pseudo-terminal; return the finished process and what the terminal showed."""
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(  # noqa: S603 (our own interpreter, our own module)
            [sys.executable, "-m", "coinecon", *arguments],
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=timeout,
            check=False,
        )
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    return done, shown
