"""What the tests of several instances share: instances in this process or as ``parley run``
processes, and a check of a platform's sliding-window budget against calls as they were sent and
answered. Their fresh PostgreSQL databases are ``pg_url`` and ``pg_database`` (tests/store_fixtures.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from tests.fakes.gateway import FakeGateway
from tests.fakes.run import ParleyProcess
from tests.fakes.slack_api import FakeSlack
from tests.slack_harness import SlackBench, bench_env
from tests.store_fixtures import POSTGRES_URL

needs_postgres = pytest.mark.skipif(not POSTGRES_URL, reason="PARLEY_TEST_POSTGRES_URL is not set")


def most_in_any_window(times: Iterable[float], window: float) -> int:
    """The most of ``times`` that fall in any half-open interval ``window`` seconds long."""
    ordered = sorted(times)
    most = start = 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - window:
            start += 1
        most = max(most, end - start + 1)
    return most


async def slack_instances(
    stack: AsyncExitStack, tmp: Path, fs: FakeSlack, gw: FakeGateway, pg_url: str, n: int, **env: str
) -> list[SlackBench]:
    """``n`` runtimes with the real Slack adapter in HTTP mode, in this process, on one database;
    ``fs.events_urls`` lists them. Stopped when ``stack`` closes."""
    benches = []
    for i in range(n):
        cwd = tmp / f"instance-{i}"
        cwd.mkdir()
        extra = {"DATABASE_URL": pg_url, "PARLEY_INSTANCE_TIMEOUT": "1", **env}
        bench = SlackBench(fs, gw, cwd, "http", bench_env(fs, gw, cwd, "http", extra), None, {})
        await bench.start()
        stack.push_async_callback(bench.stop)
        benches.append(bench)
    fs.events_urls = [f"http://127.0.0.1:{b.server.port}/slack/events" for b in benches if b.server]
    return benches


def start_instances(tmp: Path, n: int, env: Callable[[Path], dict[str, str]]) -> list[ParleyProcess]:
    """``n`` ``parley run`` processes, each in a folder of its own with ``env(folder)``, started
    together (close them in a ``finally``); wait for them with :func:`wait_all`."""
    runs = []
    for i in range(n):
        cwd = tmp / f"instance-{i}"
        cwd.mkdir()
        runs.append(ParleyProcess(cwd, {**env(cwd), "PARLEY_INSTANCE_ID": f"pod-{i}"}, f"pod-{i}").start())
    return runs


def wait_all(runs: Iterable[ParleyProcess], within: float = 60.0) -> list[int]:
    """Until every one is running and healthy; their HTTP ports."""
    ports = [run.wait_ready(within) for run in runs]
    for run in runs:
        run.wait_healthy(within)
    return ports
