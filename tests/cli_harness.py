"""Run ``python -m bot`` as a subprocess, the way a user runs ``parley``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR", "USER")


def parley(
    *args: str, cwd: Path, env: dict[str, str], stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run parley with only ``env`` (plus basics) in the environment; stdin is not a TTY."""
    full = {k: v for k, v in os.environ.items() if k in _KEEP}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full,
        timeout=timeout,
    )


def one_clear_line(stderr: str) -> str:
    """Asserts stderr is a single line with no traceback, and returns it."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    return lines[0]
