"""Slack's Agent messaging experience, feedback and bursts, through the real slack-bolt against the
fake: the Messages tab's prompts (once a day), titled threads, the status while the model works,
"this channel", 👍 / 👎 counted exactly (also after a restart), and follow-ups typed mid-answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.slack.agent import asks_about_this_channel, title_of, viewed_channel
from adapters.slack.feedback import WHY_CALLBACK, WHY_INPUT, parse_value
from bot import commands
from bot.feedback import Vote
from bot.settings import load_settings
from bot.types import ConversationKey, Outcome
from tests.fakes.gateway import Reply
from tests.fakes.slack_api import DEFAULT_CHANNEL, DEFAULT_DM, DEFAULT_USER, OTHER_CHANNEL, OTHER_USER
from tests.slack_harness import SlackBench, slack_bench

TEAM = "T0FAKE0001"
MODEL = "gemini-2.5-flash"


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[SlackBench]:
    async with slack_bench(tmp_path, "socket") as b:
        yield b


def sample(bench: SlackBench, name: str, **labels: str) -> float:
    """A figure of Parley's /metrics (0 when the series does not exist yet)."""
    value = bench.runtime.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


def test_the_small_rules() -> None:
    assert title_of("  how do I rotate\nthe keys?") == "how do I rotate"
    long = title_of("word " * 40)
    assert len(long) <= 60 and long.endswith("…") and not long.endswith(" …")
    assert asks_about_this_channel("Summarise THIS channel please")
    assert not asks_about_this_channel("a channel")
    channel = {"type": "slack#/types/channel_id", "value": "C1"}
    assert viewed_channel({"context": {"entities": [channel]}}) == "C1"
    message = {"type": "slack#/types/message_context", "value": {"channel_id": "C2", "message_ts": "1.2"}}
    assert viewed_channel({"context": {"entities": [message]}}) == "C2"
    assert viewed_channel({"context": {}}) is None
    assert parse_value("up:42") == (Vote.UP, 42) and parse_value("sideways:4") is None
    assert parse_value("down:x") is None and parse_value("up:" + "9" * 40) is None


# -- the Messages tab ------------------------------------------------------------------------------


async def test_opening_the_messages_tab_sets_the_prompts_once_a_day(bench: SlackBench) -> None:
    fs = bench.fs
    await bench.deliver(fs.open_app_home(tab="messages"))
    await fs.wait_for(lambda: fs.prompt_calls)
    shown = fs.suggested_prompts[DEFAULT_DM]
    assert shown.applied and shown.thread_ts is None and shown.title == "Try asking"
    assert shown.prompts[0] == ("Summarise this channel", "Summarise the recent messages in this channel.")
    # Opened again, by the same person, after a restart too: not set again today.
    await bench.deliver(fs.open_app_home(tab="messages"))
    await bench.settle()
    await bench.restart()
    await bench.deliver(fs.open_app_home(tab="messages"))
    await bench.deliver(fs.open_app_home(tab="home"))
    await bench.settle()
    assert len(fs.prompt_calls) == 1
    # Another person gets theirs.
    await bench.deliver(fs.open_app_home(user=OTHER_USER, tab="messages"))
    await fs.wait_for(lambda: len(fs.prompt_calls) == 2)
    assert fs.dm_with(OTHER_USER).id in fs.suggested_prompts


async def test_prompts_refused_are_tried_again_at_the_next_open(bench: SlackBench) -> None:
    fs = bench.fs
    fs.fail("assistant.threads.setSuggestedPrompts", status=500, times=1)
    await bench.deliver(fs.open_app_home())
    await bench.settle()
    assert DEFAULT_DM not in fs.suggested_prompts
    await bench.deliver(fs.open_app_home())
    await fs.wait_for(lambda: DEFAULT_DM in fs.suggested_prompts)


async def test_a_new_question_gets_a_titled_thread_and_a_status_until_the_answer_starts(
    bench: SlackBench,
) -> None:
    fs, gw = bench.fs, bench.gw
    gw.script(Reply(text="Rotate them monthly.", first_delay=1.0))
    question = fs.dm_message("How do I rotate the API keys?\nWe use Vault.")
    await bench.deliver(question)
    # While the model has not written a word, the thread shows the status, loading messages and all.
    status = await fs.wait_for(lambda: fs.thread_status(DEFAULT_DM, question["ts"]))
    assert status is not None and status.status == "is thinking…"
    assert status.loading_messages == ("Reading your message…", "Thinking it over…", "Finding the words…")
    (reply,) = await bench.reply_in(DEFAULT_DM, question["ts"])
    assert reply.thread_ts == question["ts"]
    assert fs.thread_titles[(DEFAULT_DM, question["ts"])] == "How do I rotate the API keys?"
    await bench.settle(1)
    assert fs.thread_status(DEFAULT_DM, question["ts"]) is None
    # Set once after the placeholder, cleared once when the answer began: before the final edit.
    changes = [c for c in fs.status_changes if c.thread_ts == question["ts"]]
    assert [c.cause for c in changes] == ["set", "clear"]
    final = fs.timeline(DEFAULT_DM, reply.ts)[-1]
    assert changes[1].t <= final.t
    assert not any(c.cause == "timeout" for c in changes)
    # A follow-up in the thread continues it: no new title.
    await bench.deliver(fs.dm_message("And how often?", thread_ts=question["ts"]))
    await bench.reply_in(DEFAULT_DM, question["ts"], count=2)
    assert len(fs.title_calls) == 1
    assert "How do I rotate the API keys?" in bench.gateway_text()


async def test_this_channel_is_read_only_where_both_may_read_it(bench: SlackBench) -> None:
    fs = bench.fs
    fs.channel_message("The launch moves to Thursday.", user=OTHER_USER)
    fs.channel_message("QA signs off on Wednesday.")
    secret = fs.add_channel("C0SECRET01", "secret-plans")
    secret.members = {OTHER_USER, fs.identity.bot_user_id}  # alice is not in it
    fs.channel_message("The budget is 1M.", channel=secret.id, user=OTHER_USER)
    quiet = fs.add_channel("C0NOBOT001", "no-bot")
    quiet.members = {DEFAULT_USER, OTHER_USER}  # Parley is not in it
    fs.channel_message("Lunch at noon.", channel=quiet.id)

    async def ask(viewing: str, text: str) -> str:
        await bench.deliver(fs.context_changed(viewing=viewing))
        question = fs.dm_message(text)
        await bench.deliver(question)
        await bench.reply_in(DEFAULT_DM, question["ts"])
        return bench.gateway_text()

    body = await ask(DEFAULT_CHANNEL, "What is happening in this channel?")
    assert "The launch moves to Thursday." in body and "QA signs off on Wednesday." in body
    assert "#general" in body
    # Alice looks at a channel she is not in (a link, a preview): nothing of it reaches the model.
    body = await ask(secret.id, "Summarise this channel")
    assert "The budget is 1M." not in body and "secret-plans" not in body
    # A channel Parley is not in: not read either.
    body = await ask(quiet.id, "Summarise this channel")
    assert "Lunch at noon." not in body
    # Not asked about the channel: not read.
    await bench.deliver(fs.context_changed(viewing=DEFAULT_CHANNEL))
    reads = len(fs.calls_for("conversations.history"))
    plain = fs.dm_message("What is 2 + 2?")
    await bench.deliver(plain)
    await bench.reply_in(DEFAULT_DM, plain["ts"])
    assert len(fs.calls_for("conversations.history")) == reads
    # Bob, looking at #random, gets his own view, not Alice's.
    fs.channel_message("Random chatter.", channel=OTHER_CHANNEL)
    await bench.deliver(fs.context_changed(user=OTHER_USER, viewing=OTHER_CHANNEL))
    bob = fs.dm_message("this channel?", channel=fs.dm_with(OTHER_USER).id, user=OTHER_USER)
    await bench.deliver(bob)
    await bench.reply_in(bob["channel"], bob["ts"])
    assert "Random chatter." in bench.gateway_text() and "Thursday" not in bench.gateway_text()


# -- feedback --------------------------------------------------------------------------------------


async def test_votes_are_counted_exactly_and_shown_by_parley_usage(
    bench: SlackBench, capsys: pytest.CaptureFixture[str]
) -> None:
    fs = bench.fs
    question = fs.app_mention("is the sky blue?")
    await bench.deliver(question)
    (reply,) = await bench.reply_in(DEFAULT_CHANNEL, question["ts"])

    def up() -> float:
        return sample(bench, "parley_feedback_total", platform="slack", model=MODEL, value="up")

    def down() -> float:
        return sample(bench, "parley_feedback_total", platform="slack", model=MODEL, value="down")

    click = await fs.click_feedback(reply.ts, "positive")
    await click.wait_acked()
    await fs.wait_for(lambda: up() == 1)
    # The same click delivered again, and the same vote again: nothing changes.
    await fs.deliver("interactive", click.payload)
    await (await fs.click_feedback(reply.ts, "positive")).wait_acked()
    await bench.settle()
    assert (up(), down()) == (1, 0)
    # Alice changes her mind: counted once, on the new value; Bob votes 👍.
    await (await fs.click_feedback(reply.ts, "negative")).wait_acked()
    await (await fs.click_feedback(reply.ts, "positive", user=OTHER_USER)).wait_acked()
    await fs.wait_for(lambda: (up(), down()) == (2, 1))
    await bench.settle()
    assert (up(), down()) == (2, 1)
    exposition = bench.runtime.metrics.exposition()[0].decode()
    labels = f'model="{MODEL}",parley_instance="{bench.runtime.metrics.instance}",platform="slack"'
    assert f'parley_feedback_total{{{labels},value="down"}} 1.0' in exposition

    # Stored with the reply: each person's current vote. parley usage counts those.
    reply_id = await _reply_id(bench, ConversationKey("slack", TEAM, DEFAULT_CHANNEL, question["ts"]))
    votes = await bench.runtime.store.feedback.of_reply(reply_id)
    assert {user: value for user, (value, _) in votes.items()} == {DEFAULT_USER: "down", OTHER_USER: "up"}
    assert await commands.usage(load_settings(bench.env, cwd=bench.tmp)) == 0
    out = capsys.readouterr().out
    assert f"  {MODEL}: 1 up / 1 down" in out


async def test_a_thumbs_down_asks_what_was_wrong_and_keeps_the_answer(bench: SlackBench) -> None:
    fs = bench.fs
    question = fs.app_mention("what year is it?")
    await bench.deliver(question)
    (reply,) = await bench.reply_in(DEFAULT_CHANNEL, question["ts"])
    await (await fs.click_feedback(reply.ts, "negative")).wait_acked()
    (modal,) = await fs.wait_for(lambda: fs.opened_views(WHY_CALLBACK))
    assert modal.user == DEFAULT_USER and modal.view["title"]["text"] == "What was wrong?"
    submitted = await fs.submit_view(modal.id, {WHY_INPUT: "It was out of date."})
    await submitted.wait_acked()
    await fs.wait_for(lambda: modal.state == "submitted")
    await bench.settle()
    reply_id = await _reply_id(bench, ConversationKey("slack", TEAM, DEFAULT_CHANNEL, question["ts"]))
    assert await bench.runtime.store.feedback.of_reply(reply_id) == {
        DEFAULT_USER: ("down", "It was out of date.")
    }
    # 👍 asks nothing.
    await (await fs.click_feedback(reply.ts, "positive", user=OTHER_USER)).wait_acked()
    await bench.settle()
    assert len(fs.opened_views(WHY_CALLBACK)) == 1


async def test_feedback_buttons_work_after_a_restart(bench: SlackBench) -> None:
    fs = bench.fs
    question = fs.app_mention("first")
    await bench.deliver(question)
    (reply,) = await bench.reply_in(DEFAULT_CHANNEL, question["ts"])
    await bench.restart()  # a new process: the buttons carry everything a click needs
    await (await fs.click_feedback(reply.ts, "positive")).wait_acked()
    await fs.wait_for(
        lambda: sample(bench, "parley_feedback_total", platform="slack", model=MODEL, value="up") == 1
    )
    assert fs.responses == []  # no complaint sent back


async def test_a_denied_person_cannot_vote(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "socket", env={"PARLEY_DENY_USERS": OTHER_USER}) as bench:
        fs = bench.fs
        question = fs.app_mention("hi")
        await bench.deliver(question)
        (reply,) = await bench.reply_in(DEFAULT_CHANNEL, question["ts"])
        await (await fs.click_feedback(reply.ts, "positive", user=OTHER_USER)).wait_acked()
        await fs.wait_for(lambda: fs.responses)
        assert "isn't available to you" in fs.responses[0].payload["text"]
        reply_id = await _reply_id(bench, ConversationKey("slack", TEAM, DEFAULT_CHANNEL, question["ts"]))
        assert await bench.runtime.store.feedback.of_reply(reply_id) == {}


# -- bursts and follow-ups mid-answer ----------------------------------------------------------------


BURSTS = {"PARLEY_MERGE_WINDOW": "1.0"}


async def test_three_messages_in_a_burst_get_one_answer(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "socket", env=BURSTS) as bench:
        fs = bench.fs
        first = fs.app_mention("hey")
        await bench.deliver(first)
        second = fs.channel_message("quick question", thread_ts=first["ts"])
        await bench.deliver(second)
        await asyncio.sleep(0.3)  # typing
        await bench.deliver(fs.channel_message("what is the capital of France?", thread_ts=first["ts"]))
        (reply,) = await bench.reply_in(DEFAULT_CHANNEL, first["ts"])
        await bench.settle()
        burst = "hey\n\nquick question\n\nwhat is the capital of France?"
        assert len(bench.gw.stream_requests) == 1 and bench.gw.stream_requests[0].last_user_text == burst
        assert fs.visible_text(DEFAULT_CHANNEL, reply.ts) == f"You said: {burst}"
        stored = await bench.stored(ConversationKey("slack", TEAM, DEFAULT_CHANNEL, first["ts"]))
        question = stored[2]
        assert [(m.role, m.text, m.merged_into) for m in stored] == [
            ("user", "hey", question.id),
            ("user", "quick question", question.id),
            ("user", "what is the capital of France?", None),
            ("assistant", f"You said: {burst}", None),
        ]
        assert sample(bench, "parley_messages_total", platform="slack", outcome="merged") == 2
        assert sample(bench, "parley_messages_total", platform="slack", outcome="answered") == 1


async def test_a_message_during_an_answer_is_answered_after_it_and_stop_stops_it(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "socket", env=BURSTS) as bench:
        fs, gw = bench.fs, bench.gw
        gw.script(Reply.paced("one two three " * 20, tokens_per_s=30))
        first = fs.app_mention("tell me a long story")
        await bench.deliver(first)
        await fs.wait_for(lambda: len(gw.stream_requests) == 1, within=10)
        await asyncio.sleep(0.3)
        later = fs.channel_message("and then a short one", thread_ts=first["ts"])
        await bench.deliver(later)
        replies = await bench.reply_in(DEFAULT_CHANNEL, first["ts"], count=2)
        assert fs.visible_text(DEFAULT_CHANNEL, replies[1].ts) == "You said: and then a short one"
        assert len(gw.stream_requests) == 2 and "one two three" in bench.gateway_text()

        # "stop" while the next answer streams stops it and gets no answer of its own.
        gw.script(Reply.paced("four five six " * 40, tokens_per_s=20))
        third = fs.channel_message("one more, long please", thread_ts=first["ts"])
        await bench.deliver(third)
        await fs.wait_for(lambda: len(gw.stream_requests) == 3, within=10)
        await asyncio.sleep(0.3)
        await bench.deliver(fs.channel_message("Stop!", thread_ts=first["ts"]))
        await bench.reply_in(DEFAULT_CHANNEL, first["ts"], count=3)
        await bench.settle()
        assert len(gw.stream_requests) == 3
        stored = await bench.stored(ConversationKey("slack", TEAM, DEFAULT_CHANNEL, first["ts"]))
        assert stored[-1].status is Outcome.STOPPED and "Stop!" not in [m.text for m in stored]
        assert sample(bench, "parley_messages_total", platform="slack", outcome="stopped_reply") == 1
        assert sample(bench, "parley_messages_total", platform="slack", outcome="answered") == 3


async def test_a_lone_question_waits_only_the_window(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "socket", env={"PARLEY_MERGE_WINDOW": "0.5"}) as bench:
        fs = bench.fs
        question = fs.app_mention("alone")
        delivered = asyncio.get_running_loop().time()
        await bench.deliver(question)
        await fs.wait_for(lambda: bench.gw.stream_requests, within=5)
        waited = asyncio.get_running_loop().time() - delivered
        assert 0.5 <= waited < 3.0
        await bench.reply_in(DEFAULT_CHANNEL, question["ts"])


async def _reply_id(bench: SlackBench, key: ConversationKey) -> int:
    stored = await bench.stored(key)
    return next(m.id for m in reversed(stored) if m.role == "assistant")


async def test_every_message_ends_counted_by_what_became_of_it(bench: SlackBench) -> None:
    fs = bench.fs
    await bench.deliver(fs.channel_message("just chatting"))  # no mention, no thread
    question = fs.app_mention("hello")
    delivery = await bench.deliver(question)
    await bench.reply_in(DEFAULT_CHANNEL, question["ts"])
    await fs.deliver("events_api", delivery.payload)  # Slack delivers it again
    await bench.settle()

    def seen(outcome: str) -> float:
        return sample(bench, "parley_messages_total", platform="slack", outcome=outcome)

    assert (seen("not_addressed"), seen("answered"), seen("duplicate")) == (1, 1, 1)
    assert len(bench.gw.stream_requests) == 1
