"""Arbitrary Slack event payloads, signed, to ``POST /slack/events``: through the real slack-bolt
app and Parley's normaliser.

Property: whatever arrives, nothing crashes (no exception escapes, no listener logs a
traceback) and nothing is left hanging (every message Parley posted ends finished, never a bare
"…" or a Stop button). The payloads mix plausible events with wrong types, unknown ids,
control characters and lone surrogates where Slack would put strings.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.slack.surface import SlackBudgets
from tests.background import Background
from tests.fakes.slack_api import DEFAULT_CHANNEL, DEFAULT_DM, DEFAULT_USER, OTHER_USER, PRIVATE_CHANNEL
from tests.slack_harness import SlackBench, is_live, slack_bench

BOT = "U0BOT00001"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
# Any code point, surrogates included (JSON carries them as \\udXXX escapes).
wild_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=200)
channels = st.sampled_from(
    [DEFAULT_CHANNEL, DEFAULT_CHANNEL, DEFAULT_DM, PRIVATE_CHANNEL, "C0NOSUCH01", "D0NOSUCH01", ""]
)
users = st.sampled_from([DEFAULT_USER, DEFAULT_USER, OTHER_USER, BOT, "U0NOSUCH01", ""])
_SEQ = itertools.count(1)
# Fresh ones mostly (a repeated ts is the same message: answered once, the rest are duplicates).
timestamps = st.one_of(
    st.builds(lambda: f"{1_750_000_000 + next(_SEQ)}.000100"),
    st.builds(lambda: f"{1_750_000_000 + next(_SEQ)}.000200"),
    st.floats(1.7e9, 1.8e9).map(lambda f: f"{f:.6f}"),
)
said = st.text(st.characters(codec=None, exclude_categories=()), min_size=1, max_size=200)
texts = st.one_of(
    said, said.map(lambda t: f"<@{BOT}> {t}"), said.map(lambda t: f"<@{BOT}> {t}"), st.just(f"<@{BOT}>")
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a plausible value, sometimes any JSON value at all."""
    return st.one_of(*[strategy] * 6, json_values)


files = st.lists(
    st.fixed_dictionaries(
        {"id": maybe(st.text(max_size=8))},
        optional={
            "name": maybe(wild_text),
            "mimetype": maybe(st.sampled_from(["application/pdf", "text/plain", "image/png"])),
            "size": maybe(st.integers(-5, 10**12)),
            "url_private": maybe(
                st.sampled_from(
                    ["http://127.0.0.1:1/x", "https://files.slack.com/x", "file:///etc/passwd", "not a url"]
                )
            ),
            "mode": maybe(st.sampled_from(["hosted", "external", "tombstone"])),
        },
    ),
    max_size=2,
)

events = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["app_mention", "app_mention", "message"]),
        "channel": maybe(channels),
        "user": maybe(users),
        "text": maybe(texts),
        "ts": maybe(timestamps),
    },
    optional={
        "thread_ts": maybe(timestamps),
        "subtype": maybe(
            st.sampled_from(["bot_message", "file_share", "thread_broadcast", "message_changed"])
        ),
        "bot_id": maybe(st.sampled_from(["B0OTHER001", "B0BOT00001"])),
        "channel_type": maybe(st.sampled_from(["channel", "im", "group", "mpim"])),
        "files": maybe(files),
        "bot_profile": json_values,
        "team": maybe(st.just("T0FAKE0001")),
        "hidden": st.booleans(),
    },
)

event_bodies = st.builds(
    lambda event, team, event_id: {
        "type": "event_callback",
        "team_id": team,
        "api_app_id": "A0APP00001",
        "event": event,
        "event_id": event_id,
        "event_time": 1,
    },
    events,
    maybe(st.just("T0FAKE0001")),
    maybe(st.text(min_size=1, max_size=12)),
)
not_events = st.dictionaries(st.text(max_size=10), json_values, max_size=4)
bodies = st.one_of(event_bodies, event_bodies, event_bodies, not_events)


class Tracebacks(logging.Handler):
    """Collects log records that carry an exception: each is a crash somewhere."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[0] is not None:
            self.records.append(record)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Background, SlackBench, Tracebacks]]:
    fast = SlackBudgets(post=(1000, 1.0), update=(1000, 1.0))
    crashes = Tracebacks()
    logging.getLogger().addHandler(crashes)
    try:
        with Background() as bg:
            bench = bg.enter(slack_bench(tmp_path_factory.mktemp("hostile"), "http", budgets=fast))
            bench.fs.limits.enabled = False
            yield bg, bench, crashes
    finally:
        logging.getLogger().removeHandler(crashes)


async def _deliver(bench: SlackBench, body: dict[str, Any]) -> int:
    """POST the body, signed, to Parley's /slack/events, and wait until Parley is idle again."""
    status, _ = await bench.fs.post_http(json.dumps(body).encode())
    await bench.settle(within=20)
    end = time.monotonic() + 20
    while bench.runtime.service.in_flight or bench.runtime.pacer.active:
        assert time.monotonic() < end, "a reply never finished"
        await bench.fs.wait_for(lambda: True)
    return status


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bodies)
def test_any_event_payload_ends_without_a_crash_or_a_hanging_reply(
    live: tuple[Background, SlackBench, Tracebacks], body: dict[str, Any]
) -> None:
    bg, bench, crashes = live
    status = bg.run(_deliver(bench, body))
    assert status < 500
    assert not crashes.records, [r.getMessage() for r in crashes.records]
    for message in bench.fs.bot_messages():
        if message.deleted:
            continue
        assert not is_live(message), message
        assert bench.fs.visible_text(message.channel, message.ts).strip() not in ("", "…"), message


def test_the_generated_payloads_did_reach_the_model(live: tuple[Background, SlackBench, Tracebacks]) -> None:
    """Runs after the property: plausible payloads were answered, so the paths were exercised."""
    _, bench, _ = live
    assert len(bench.gw.stream_requests) > 0, bench.adapter.ws.stats
    assert bench.adapter.ws.stats.answered > 0
