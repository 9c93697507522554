"""Three ``parley run`` processes on one PostgreSQL in Slack's HTTP mode behave as one service.

- 30 mentions in 10 channels of one workspace at once, spread over the three (a few of them
  delivered to two instances at the same moment): each answered once, completely, and the fake
  Slack answered no call with a 429 — the workspace's ``chat.update`` budget is shared.
- Three follow-ups in one thread sent to the three instances 100 ms apart: answered one at a
  time in the order they arrived, each request carrying the exchanges before it.
- ``kill -9`` of the instance answering a thread, with the next turn of that thread waiting in
  it and another waiting elsewhere: the reply is closed as interrupted, and the waiting turns are
  answered by the others, in order, within ``PARLEY_INSTANCE_TIMEOUT`` and a tick.

Needs ``PARLEY_TEST_POSTGRES_URL``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.notes import INTERRUPTED
from tests.fakes.gateway import FakeGateway, RecordedRequest, Reply
from tests.fakes.run import wait_until
from tests.fakes.slack_api import DEFAULT_CHANNEL, FakeSlack
from tests.instances_harness import needs_postgres, start_instances, wait_all
from tests.reliability_harness import finished, thread_replies
from tests.slack_harness import bench_env

pytestmark = [needs_postgres, pytest.mark.timeout(300)]

TIMEOUT = 2.0  # PARLEY_INSTANCE_TIMEOUT: a silent instance is taken for dead after this
FILLER = " ".join(f"w{i}" for i in range(16))  # each answer streams for about a second


def _env(fs: FakeSlack, gw: FakeGateway, url: str) -> Callable[[Path], dict[str, str]]:
    extra = {"DATABASE_URL": url, "PARLEY_INSTANCE_TIMEOUT": str(TIMEOUT)}
    return lambda cwd: bench_env(fs, gw, cwd, "http", extra)


def _events_urls(ports: list[int]) -> list[str]:
    return [f"http://127.0.0.1:{port}/slack/events" for port in ports]


def _asked(request: RecordedRequest) -> str:
    return json.dumps(request.json["messages"], ensure_ascii=False)


def test_thirty_mentions_in_ten_channels_answered_once_each_and_no_429(
    tmp_path: Path, pg_database: str
) -> None:
    with FakeGateway.in_thread(default=Reply(delay=0.06, first_delay=0.2)) as gw, FakeSlack.in_thread() as fs:
        channels = [f"C0LOAD{i:04d}" for i in range(10)]
        for i, channel in enumerate(channels):
            fs.add_channel(channel, f"load-{i}")
        runs = start_instances(tmp_path, 3, _env(fs, gw, pg_database))
        try:
            fs.events_urls = _events_urls(wait_all(runs))
            events = [fs.app_mention(f"question {n}: {FILLER}", channel=channels[n % 10]) for n in range(30)]

            async def at_once() -> None:
                sent = []
                for n, event in enumerate(events):
                    if n % 10 == 0:  # one in ten reaches two instances at the same moment
                        pair = [fs.events_urls[n % 3], fs.events_urls[(n + 1) % 3]]
                        sent.append(fs.deliver_event_to(event, urls=pair))
                    else:
                        sent.append(fs.deliver_event(event, mode="http"))  # round-robin
                await asyncio.gather(*sent)

            started = time.monotonic()
            fs.run(at_once())
            for event in events:
                wait_until(lambda e=event: finished(fs, e["channel"], e["ts"]), 150, "every answer")
            took = time.monotonic() - started
            time.sleep(1.0)  # time for a second answer to show, were there one
            for event in events:
                (reply,) = thread_replies(fs, event["channel"], event["ts"])
                question = event["text"].split("> ", 1)[1]
                assert reply.visible_text() == f"You said: {question}"
            assert len(gw.stream_requests) == 30
            assert fs.rate_limited_count.total() == 0, fs.rate_limited_count
            updates = [c for c in fs.calls_for("chat.update") if c.ok]
            assert len(updates) >= 30  # every reply's final text at least
            logs = [run.logs for run in runs]
            answered = [log.count("reply conversation=") for log in logs]
            assert sum(answered) == 30 and min(answered) >= 5, answered  # all three took part
            assert [run.terminate() for run in runs] == [0, 0, 0]
            print(f"30 mentions over 3 instances: {took:.1f} s, {len(updates)} chat.update, 0 x 429")
        finally:
            for run in runs:
                run.close()


def test_follow_ups_in_order_across_instances_and_a_killed_lease_holder(
    tmp_path: Path, pg_database: str
) -> None:
    with FakeGateway.in_thread(default=Reply(delay=0.05, first_delay=0.1)) as gw, FakeSlack.in_thread() as fs:
        runs = start_instances(tmp_path, 3, _env(fs, gw, pg_database))
        try:
            urls = fs.events_urls = _events_urls(wait_all(runs))
            mention = fs.app_mention("start a thread")
            ts = mention["ts"]
            fs.run(fs.deliver_event(mention, mode="http", url=urls[0]))
            wait_until(lambda: finished(fs, DEFAULT_CHANNEL, ts), 20, "the first answer")

            async def follow_ups(first: int, to: list[str], gap: float) -> None:
                for n, url in enumerate(to, start=first):
                    event = fs.channel_message(f"follow-up {n}", thread_ts=ts)
                    await fs.deliver_event(event, mode="http", url=url)
                    await asyncio.sleep(gap)

            # Three follow-ups, one to each instance, 100 ms apart.
            fs.run(follow_ups(1, urls, 0.1))
            wait_until(lambda: finished(fs, DEFAULT_CHANNEL, ts, count=4), 30, "three answers")
            requests = gw.stream_requests
            assert len(requests) == 4
            for earlier, later in itertools.pairwise(requests):
                assert earlier.t_done is not None and earlier.t_done <= later.t_received  # one at a time
            for n in (1, 2, 3):
                asked = _asked(requests[n])
                assert f"follow-up {n}" in asked and f"follow-up {n + 1}" not in asked
                assert all(f"You said: follow-up {k}" in asked for k in range(1, n))
            shown = [m.visible_text() for m in thread_replies(fs, DEFAULT_CHANNEL, ts)]
            assert shown == ["You said: start a thread", *(f"You said: follow-up {n}" for n in (1, 2, 3))]

            # pod-0 answers follow-up 4 slowly; 5 waits in pod-0 and 6 in pod-1. pod-0 is killed.
            gw.script(Reply.paced(" ".join(f"story{i}" for i in range(100)), tokens_per_s=10))
            fs.run(follow_ups(4, [urls[0]], 0))
            wait_until(
                lambda: (
                    len(thread_replies(fs, DEFAULT_CHANNEL, ts)[-1].visible_text().split()) >= 6
                    and len(thread_replies(fs, DEFAULT_CHANNEL, ts)) == 5
                ),
                20,
                "follow-up 4 streaming",
            )
            fs.run(follow_ups(5, [urls[0], urls[1]], 0.1))
            time.sleep(0.5)  # both claimed and queued behind follow-up 4
            assert len(gw.stream_requests) == 5
            runs[0].kill()
            killed = time.monotonic()
            partial = thread_replies(fs, DEFAULT_CHANNEL, ts)[4].visible_text()

            wait_until(lambda: finished(fs, DEFAULT_CHANNEL, ts, count=7), 30, "the waiting turns answered")
            requests = gw.stream_requests
            assert len(requests) == 7  # 4 is not asked again; 5 and 6 once each
            assert requests[5].t_received - killed < TIMEOUT + 4.0  # the bound: timeout + a tick + work
            shown = [m.visible_text() for m in thread_replies(fs, DEFAULT_CHANNEL, ts)]
            assert shown[4] == f"{partial.rstrip()}\n\n{INTERRUPTED}"  # closed as interrupted
            assert shown[5:] == ["You said: follow-up 5", "You said: follow-up 6"]
            asked = _asked(requests[5])
            assert "follow-up 4" in asked and partial.split()[-1] in asked and "follow-up 6" not in asked
            assert requests[5].t_done is not None and requests[5].t_done <= requests[6].t_received
            survivors = runs[1].logs + runs[2].logs
            assert "left waiting by a stopped instance" in survivors
            assert [run.terminate() for run in runs[1:]] == [0, 0]
            print(f"after kill -9: follow-up 5 asked {requests[5].t_received - killed:.1f} s later")
        finally:
            for run in runs:
                run.close()
