"""Arbitrary Discord messages through the real discord.py and Parley's normaliser: any text (lone
surrogates, control characters, mentions of the bot, roles and everyone), in a channel, a thread
or a DM, from a person or another bot, with odd attachments and replies to earlier messages.

Property: nothing crashes (no traceback is logged) and nothing is left hanging (every message
Parley posted ends without its Stop button and without a bare "…").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.background import Background
from tests.discord_harness import DiscordBench, discord_bench, is_live, quick_limits
from tests.fakes.gateway import Reply
from tests.test_hostile_slack_events import Tracebacks

wild = st.text(st.characters(codec=None, exclude_categories=()), max_size=120)


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    words = draw(
        st.lists(st.one_of(wild, st.sampled_from(["@bot", "@everyone", "@role", "```", "**"])), max_size=4)
    )
    return {
        "words": words,
        "where": draw(st.sampled_from(["channel", "channel", "dm", "thread"])),
        "author": draw(st.sampled_from(["alice", "alice", "bob", "bot"])),
        "attachments": draw(
            st.lists(
                st.tuples(
                    st.text(
                        st.characters(codec="utf-8", exclude_characters="/\\\x00"), min_size=1, max_size=30
                    ),
                    st.binary(max_size=200),
                    st.sampled_from(["application/pdf", "text/plain", "image/png", "application/x-evil", ""]),
                ),
                max_size=2,
            )
        ),
        "reply": draw(st.booleans()),
    }


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Background, DiscordBench, Tracebacks, Any]]:
    limits, budgets = quick_limits()
    crashes = Tracebacks()
    logging.getLogger().addHandler(crashes)
    try:
        with Background() as bg:
            bench = bg.enter(
                discord_bench(
                    tmp_path_factory.mktemp("hostile-discord"),
                    limits=limits,
                    budgets=budgets,
                    default=Reply(text="ok"),
                    env={"PARLEY_ALLOW_BOTS": ""},
                )
            )
            fd = bench.fd
            other_bot = fd.create_user("otherbot", bot=True)
            fd.add_member(bench.guild, other_bot)
            role = fd.create_role(bench.guild, "team", 0, members=[bench.alice])
            first = bg.run(bench.mention(bench.channel, bench.alice, "open a thread"))
            bg.run(bench.settle(answered=1))
            world = {"bot": other_bot, "role": role, "thread": bench.thread_of(first), "first": first}
            yield bg, bench, crashes, world
    finally:
        logging.getLogger().removeHandler(crashes)


async def _say(bench: DiscordBench, world: dict[str, Any], spec: dict[str, Any]) -> None:
    fd = bench.fd
    text = " ".join(
        {"@bot": fd.bot.mention, "@everyone": "@everyone", "@role": f"<@&{world['role'].id}>"}.get(w, w)
        for w in spec["words"]
    )
    if not text.strip() and not spec["attachments"]:
        text = fd.bot.mention  # Discord refuses an empty message: a bare mention instead
    author = {"alice": bench.alice, "bob": bench.bob, "bot": world["bot"]}[spec["author"]]
    where = {"channel": bench.channel, "thread": world["thread"], "dm": None}[spec["where"]]
    if where is None:
        author = bench.alice if author is world["bot"] else author
        where = fd.create_dm(author)
    reference = world["first"] if spec["reply"] and where is bench.channel else None
    await fd.user_says(where, author, text, attachments=spec["attachments"], reference=reference)
    await bench.settle(within=20)
    end = time.monotonic() + 20
    while bench.runtime.service.in_flight or bench.runtime.pacer.active:
        assert time.monotonic() < end, "a reply never finished"
        await fd.flush()


# Derandomized: the same twenty messages every run, so the check below that enough of them
# reached the model does not depend on the draw.
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(spec=messages())
def test_any_message_ends_without_a_crash_or_a_hanging_reply(
    live: tuple[Background, DiscordBench, Tracebacks, Any], spec: dict[str, Any]
) -> None:
    bg, bench, crashes, world = live
    bg.run(_say(bench, world, spec))
    assert not crashes.records, [r.getMessage() for r in crashes.records]
    for message in list(bench.fd.messages.values()):
        if message.author.id == bench.fd.bot.id and not message.ephemeral and not message.deleted:
            assert not is_live(message), message.content


def test_the_generated_messages_did_reach_the_model(
    live: tuple[Background, DiscordBench, Tracebacks, Any],
) -> None:
    _, bench, _, _ = live
    assert len(bench.gw.stream_requests) > 5
