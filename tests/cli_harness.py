"""Run ``python -m bot`` as a subprocess, the way a user runs ``parley``.

Also the fixtures of those tests (a plugin of ``conftest.py``): ``gateway``, the fake gateway in
a thread of its own, and ``env``, a one-shot command's environment pointing at it. A module with
a ``gateway`` of its own (an async client, say) overrides it; one that needs more settings
overrides ``env`` by asking for it (``def env(env): return {**env, ...}``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.gateway import FakeGateway
from tests.fakes.run import KEEP


def parley(
    *args: str, cwd: Path, env: dict[str, str], stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run parley with only ``env`` (plus basics) in the environment; stdin is not a TTY."""
    full = {k: v for k, v in os.environ.items() if k in KEEP}
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


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    with FakeGateway.in_thread() as gw:
        yield gw


@pytest.fixture
def env(gateway: FakeGateway, tmp_path: Path) -> dict[str, str]:
    """The fake gateway and a SQLite file in a ``data`` folder that Parley has to make."""
    from tests.stack import parley_env  # here: it imports the whole runtime, which few tests want

    return parley_env(gateway, tmp_path / "data", {})
