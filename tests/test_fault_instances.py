"""Exactly once across instances: two ``parley run`` processes on one PostgreSQL, in Slack's HTTP
mode, both receive the same signed event (and the same message again under another event id):
one answer. Needs ``PARLEY_TEST_POSTGRES_URL`` (see tests/store_fixtures.py); skipped without."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.fakes.gateway import FakeGateway, Reply
from tests.fakes.run import ParleyProcess, free_port, wait_until
from tests.fakes.slack_api import DEFAULT_CHANNEL, FakeSlack
from tests.reliability_harness import finished, thread_replies
from tests.slack_harness import bench_env
from tests.store_fixtures import POSTGRES_URL

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="PARLEY_TEST_POSTGRES_URL is not set")


def test_two_instances_on_one_postgres_answer_an_event_once(tmp_path: Path, pg_database: str) -> None:
    answer = " ".join(f"word{i}" for i in range(30))
    with (
        FakeGateway.in_thread(default=Reply.paced(answer, tokens_per_s=30)) as gw,
        FakeSlack.in_thread() as fs,
    ):
        ports = [free_port(), free_port()]
        runs = []
        for i, port in enumerate(ports):
            cwd = tmp_path / f"instance-{i}"
            cwd.mkdir()
            env = bench_env(fs, gw, cwd, "http", {"DATABASE_URL": pg_database, "PARLEY_HTTP_PORT": str(port)})
            runs.append(ParleyProcess(cwd, env, f"instance-{i}").start())
        try:
            for run, port in zip(runs, ports, strict=True):
                run.wait_http(port, within=40)
            event = fs.app_mention("answer me once, whoever you are")
            payload = fs.event_callback(event)
            as_message = fs.event_callback({**event, "type": "message", "channel_type": "channel"})
            urls = [f"http://127.0.0.1:{port}/slack/events" for port in ports]

            async def both() -> list[tuple[int, str]]:
                return list(
                    await asyncio.gather(
                        fs.post_http(payload, url=urls[0]),
                        fs.post_http(payload, url=urls[1]),
                        fs.post_http(as_message, url=urls[1]),
                    )
                )

            statuses = [status for status, _ in fs.run(both())]
            assert statuses == [200, 200, 200]
            (reply,) = wait_until(lambda: finished(fs, DEFAULT_CHANNEL, event["ts"]), 20, "the answer")
            assert reply.visible_text() == answer
            time.sleep(1.0)  # time for a second answer to show, were there one
            assert len(thread_replies(fs, DEFAULT_CHANNEL, event["ts"])) == 1
            assert len(gw.stream_requests) == 1
            assert [run.terminate() for run in runs] == [0, 0]
        finally:
            for run in runs:
                run.close()
