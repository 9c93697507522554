"""Feedback and bursts on Discord, through the real discord.py against the fake: 👍 / 👎 counted
exactly (a changed vote, a second person, a click seen twice), buttons that work after a restart,
"what was wrong?" in a modal, three messages in a burst answered once, "stop" in a thread."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.discord.feedback import WHY_INPUT, parse_vote, typed_text
from adapters.discord.surface import STOP_ID
from bot import commands
from bot.feedback import THANKS, Vote
from bot.settings import load_settings
from bot.types import ConversationKey, Outcome
from tests.discord_harness import DiscordBench, discord_bench
from tests.fakes.discord import InteractionType, StoredMessage
from tests.fakes.gateway import Reply

MODEL = "gemini-2.5-flash"


def votes(bench: DiscordBench, value: str) -> float:
    labels = {"platform": "discord", "model": MODEL, "value": value}
    return bench.runtime.metrics.registry.get_sample_value("parley_feedback_total", labels) or 0.0


def messages(bench: DiscordBench, outcome: str) -> float:
    labels = {"platform": "discord", "outcome": outcome}
    return bench.runtime.metrics.registry.get_sample_value("parley_messages_total", labels) or 0.0


def test_custom_ids_and_modal_answers_are_read_back() -> None:
    assert parse_vote("parley:feedback:42:down") == (42, Vote.DOWN)
    assert parse_vote("parley:feedback:x:up") is None and parse_vote("parley:stop") is None
    assert parse_vote("parley:feedback:" + "9" * 60 + ":up") is None
    submitted = [{"type": 1, "components": [{"type": 4, "custom_id": "why", "value": "too long"}]}]
    assert typed_text(submitted, WHY_INPUT) == "too long"
    labelled = [{"type": 18, "component": {"type": 4, "custom_id": "why", "value": "wrong"}}]
    assert typed_text(labelled, WHY_INPUT) == "wrong" and typed_text([], WHY_INPUT) == ""


async def answered(bench: DiscordBench, text: str) -> tuple[StoredMessage, int]:
    """A mention answered in its thread: the answer's message and the thread's id."""
    question = await bench.mention(bench.channel, bench.alice, text)
    await bench.settle(answered=bench.adapter.events.answered + 1)
    thread = bench.thread_of(question)
    (answer,) = bench.replies(thread)
    return answer, thread.id


async def test_votes_are_counted_exactly_and_work_after_a_restart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with discord_bench(tmp_path, env={"PARLEY_FEEDBACK_ASK_WHY": "false"}) as bench:
        fd = bench.fd
        answer, thread = await answered(bench, "Is the sky blue?")
        up, down = answer.custom_ids
        assert STOP_ID not in answer.custom_ids and up.endswith(":up") and down.endswith(":down")

        rec = await fd.click_button(answer, up, bench.alice)
        await fd.wait_for_response(rec)
        assert rec.callback is not None and rec.callback.type == 6  # acknowledged, buttons untouched
        assert votes(bench, "up") == 1
        # The same click seen twice (a replayed event), and the same vote again: no change.
        fd.emit("INTERACTION_CREATE", rec.payload, guild_id=bench.guild.id, intent=0)
        again = await fd.click_button(answer, up, bench.alice)
        await fd.wait_for_response(again)
        await bench.settle()
        assert (votes(bench, "up"), votes(bench, "down")) == (1, 0)
        # Alice changes her mind: counted once on 👎.
        changed = await fd.click_button(answer, down, bench.alice)
        await fd.wait_for_response(changed)
        assert (votes(bench, "up"), votes(bench, "down")) == (1, 1)

        # A new process: the buttons carry what a click needs; Bob's 👍 counts.
        await bench.stop()
        await bench.start()
        later = await fd.click_button(answer, up, bench.bob)
        await fd.wait_for_response(later)
        assert later.callback is not None and later.callback.type == 6
        assert votes(bench, "up") == 1  # this process's own count: one vote cast here
        key = ConversationKey("discord", str(bench.guild.id), str(bench.channel.id), str(thread))
        conversation = await bench.runtime.store.conversations.find(key)
        assert conversation is not None
        stored = await bench.runtime.store.history.load(conversation.id, 10)
        reply_id = next(m.id for m in stored if m.role == "assistant")
        current = await bench.runtime.store.feedback.of_reply(reply_id)
        assert {u: v for u, (v, _) in current.items()} == {
            str(bench.alice.id): "down",
            str(bench.bob.id): "up",
        }
        assert await commands.usage(load_settings(bench.env, cwd=bench.tmp)) == 0
        assert f"  {MODEL}: 1 up / 1 down" in capsys.readouterr().out


async def test_a_thumbs_down_asks_what_was_wrong_in_a_modal(tmp_path: Path) -> None:
    async with discord_bench(tmp_path) as bench:
        fd = bench.fd
        answer, thread = await answered(bench, "What year is it?")
        down = answer.custom_ids[1]
        rec = await fd.click_button(answer, down, bench.alice)
        await fd.wait_for_response(rec)
        assert rec.callback is not None and rec.callback.type == 9  # the modal
        modal = rec.callback.data["data"]
        assert modal["title"] == "What was wrong?" and modal["custom_id"].startswith("parley:why:")
        reply_id = int(modal["custom_id"].rsplit(":", 1)[1])

        data = {
            "custom_id": modal["custom_id"],
            "components": [
                {"type": 1, "components": [{"type": 4, "custom_id": "why", "value": "Out of date."}]}
            ],
        }
        submit = fd.start_interaction(
            InteractionType.MODAL_SUBMIT, data, bench.alice, fd.channels[thread], answer
        )
        await fd.wait_for_response(submit)
        assert submit.callback is not None and THANKS in str(submit.callback.data)
        assert await bench.runtime.store.feedback.of_reply(reply_id) == {
            str(bench.alice.id): ("down", "Out of date.")
        }


BURSTS = {"PARLEY_MERGE_WINDOW": "1.0"}


async def test_three_messages_in_a_burst_get_one_answer(tmp_path: Path) -> None:
    async with discord_bench(tmp_path, env=BURSTS) as bench:
        fd = bench.fd
        dm = fd.create_dm(bench.alice)
        for text in ("hey", "quick question", "what is the capital of France?"):
            await fd.user_says(dm, bench.alice, text)
            await asyncio.sleep(0.2)  # typing
        await bench.settle(answered=3)
        burst = "hey\n\nquick question\n\nwhat is the capital of France?"
        assert len(bench.gw.stream_requests) == 1 and bench.gw.stream_requests[0].last_user_text == burst
        (reply,) = bench.replies(dm)
        assert reply.content == f"You said: {burst}"
        assert (messages(bench, "merged"), messages(bench, "answered")) == (2, 1)


async def test_in_a_thread_a_later_message_waits_and_stop_stops(tmp_path: Path) -> None:
    async with discord_bench(tmp_path, env=BURSTS) as bench:
        fd, gw = bench.fd, bench.gw
        gw.script(Reply.paced("one two three " * 20, tokens_per_s=30))
        question = await bench.mention(bench.channel, bench.alice, "tell me a long story")
        thread = await bench.thread_opened(question)
        await fd.wait_for(lambda: len(gw.stream_requests) == 1, 10)
        await asyncio.sleep(0.3)
        await fd.user_says(thread, bench.alice, "and then a short one")
        await bench.settle(answered=2)
        first, second = bench.replies(thread)
        assert second.content == "You said: and then a short one" and first.content.startswith("one two")
        assert len(gw.stream_requests) == 2

        gw.script(Reply.paced("four five six " * 40, tokens_per_s=20))
        await fd.user_says(thread, bench.alice, "one more, long please")
        await fd.wait_for(lambda: len(gw.stream_requests) == 3, 10)
        await asyncio.sleep(0.3)
        await fd.user_says(thread, bench.alice, "stop it")
        await fd.wait_for(lambda: messages(bench, "stopped_reply") == 1, 10)
        await bench.settle()
        assert len(gw.stream_requests) == 3
        stopped = bench.replies(thread)[-1]
        assert stopped.content.endswith("_(Stopped.)_") and STOP_ID not in stopped.custom_ids
        key = ConversationKey("discord", str(bench.guild.id), str(bench.channel.id), str(thread))
        conversation = await bench.runtime.store.conversations.find(key)
        assert conversation is not None
        stored = await bench.runtime.store.history.load(conversation.id, 20)
        assert stored[-1].status is Outcome.STOPPED and "stop it" not in [m.text for m in stored]
