"""Parley in Discord, end to end: the real discord.py against the fake Discord and fake gateway.

Each test looks at what users see (the fake's message timelines), what the model was sent (the
fake gateway's recorded request) and what the store holds.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import adapters.discord.events as events_module
from adapters.discord.surface import STOP_ID
from bot.types import ConversationKey
from tests.discord_harness import discord_bench, is_live, quick_limits
from tests.fakes.discord import ChannelType, Overwrite, Perm
from tests.fakes.gateway import Reply

ANSWER = (
    "Paris is the capital of France. It sits on the Seine, has about two million people in the "
    "city proper, and is known for the Louvre, the Eiffel Tower and its cafés. "
) * 2


async def test_mention_opens_a_thread_and_streams_the_answer_into_it(tmp_path: Path) -> None:
    reply = Reply.paced(ANSWER, 25, first_delay=0.3)
    async with discord_bench(tmp_path, default=reply) as bench:
        fd = bench.fd
        question = await bench.mention(bench.channel, bench.alice, "What is the capital of France and why?")
        await bench.settle(answered=1)

        thread = bench.thread_of(question)
        assert thread.type == ChannelType.PUBLIC_THREAD and thread.parent_id == bench.channel.id
        assert thread.name == "What is the capital of France and why?"
        (answer,) = bench.replies(thread)
        states = answer.history
        # a placeholder with a Stop button at once, growing edits, then the exact final text
        assert states[0].kind == "create" and states[0].content == "…"
        assert STOP_ID in str(states[0].components)
        growing = [s.content for s in states[1:-1]]
        assert growing and all(ANSWER.startswith(c) and c for c in growing)
        assert [len(c) for c in growing] == sorted(len(c) for c in growing)
        assert states[-1].content == ANSWER.strip() or states[-1].content == ANSWER
        # No Stop button any more: 👍 / 👎 in its place, named after the stored reply.
        assert not is_live(answer)
        assert [c.split(":")[-1] for c in answer.custom_ids] == ["up", "down"]
        assert all(c.startswith("parley:feedback:") for c in answer.custom_ids)
        # nothing in the channel itself but the question
        assert [m.id for m in fd.channel_messages(bench.channel)] == [question.id]
        # the typing indicator showed in the thread before the first token
        first_text_t = states[1].t
        assert any(t.channel_id == thread.id and t.t < first_text_t for t in fd.typing_log)

        request = bench.gw.stream_requests[-1]
        assert request.last_user_text == "What is the capital of France and why?"
        key = ConversationKey("discord", str(bench.guild.id), str(bench.channel.id), str(thread.id))
        assert await bench.runtime.store.conversations.has_reply(key)
        assert fd.rate_limited_count == 0 and bench.dpy_waits == 0


async def test_follow_ups_in_parleys_thread_need_no_mention(tmp_path: Path) -> None:
    async with discord_bench(tmp_path) as bench:
        fd = bench.fd
        question = await bench.mention(bench.channel, bench.alice, "first question")
        await bench.settle(answered=1)
        thread = bench.thread_of(question)

        await fd.user_says(thread, bench.bob, "and a follow-up from Bob")
        await bench.settle(answered=2)
        replies = bench.replies(thread)
        assert [m.content for m in replies] == [
            "You said: first question",
            "You said: [Bob] and a follow-up from Bob",
        ]
        # two people in the thread: each turn is attributed in the prompt
        messages = bench.gw.stream_requests[-1].json["messages"]
        users = [m["content"] for m in messages if m["role"] == "user"]
        assert users == ["[Alice] first question", "[Bob] and a follow-up from Bob"]

        # a thread Parley never answered in stays quiet without a mention
        other = fd.create_thread(bench.channel, "people talking", owner=bench.alice)
        await fd.user_says(other, bench.alice, "just chatting")
        await bench.settle()
        assert bench.replies(other) == [] and len(bench.gw.stream_requests) == 2


async def test_require_mention_makes_parley_wait_to_be_asked(tmp_path: Path) -> None:
    async with discord_bench(tmp_path, env={"PARLEY_REQUIRE_MENTION": "true"}) as bench:
        fd = bench.fd
        question = await bench.mention(bench.channel, bench.alice, "first")
        await bench.settle(answered=1)
        thread = bench.thread_of(question)
        await fd.user_says(thread, bench.bob, "an aside between people")
        await bench.settle()
        assert len(bench.replies(thread)) == 1
        await bench.mention(thread, bench.alice, "now you")
        await bench.settle(answered=2)
        # the aside was read in when Parley was asked again
        users = [m["content"] for m in bench.gw.stream_requests[-1].json["messages"] if m["role"] == "user"]
        assert users == ["[Alice] first", "[Bob] an aside between people\n\n[Alice] now you"]


async def test_direct_messages_are_one_conversation_until_reset(tmp_path: Path) -> None:
    limits, budgets = quick_limits()  # three replies in one DM channel: 3 posts and 6 edits
    async with discord_bench(tmp_path, limits=limits, budgets=budgets) as bench:
        fd = bench.fd
        dm = fd.create_dm(bench.alice)
        await fd.user_says(dm, bench.alice, "remember the word kiwi")
        await bench.settle(answered=1)
        await fd.user_says(dm, bench.alice, "which word?")
        await bench.settle(answered=2)
        assert [m.content for m in bench.replies(dm)] == [
            "You said: remember the word kiwi",
            "You said: which word?",
        ]
        assert "kiwi" in bench.gateway_body(-1)

        rec = await fd.slash_command("reset", {}, bench.alice, dm)
        await fd.wait_for_response(rec)
        assert rec.callback is not None and "afresh" in str(rec.callback.data)
        await fd.user_says(dm, bench.alice, "and now?")
        await bench.settle(answered=3)
        assert "kiwi" not in bench.gateway_body(-1)
        assert all(c.parent_id != dm.id for c in fd.channels.values())  # no threads in DMs


async def test_a_reply_chain_is_read_as_context(tmp_path: Path) -> None:
    async with discord_bench(tmp_path) as bench:
        fd = bench.fd
        first = await fd.user_says(bench.channel, bench.alice, "The launch moves to Tuesday.")
        second = await fd.user_says(bench.channel, bench.bob, "Then the venue is Berlin.", reference=first)
        await bench.mention(bench.channel, bench.alice, "what did we decide?", reference=second)
        await bench.settle(answered=1)
        users = [m["content"] for m in bench.gw.stream_requests[-1].json["messages"] if m["role"] == "user"]
        said = [
            "[Alice] The launch moves to Tuesday.",
            "[Bob] Then the venue is Berlin.",
            "[Alice] what did we decide?",
        ]
        assert users == ["\n\n".join(said)]


async def test_mentioned_in_an_existing_thread_it_reads_the_thread_first(tmp_path: Path) -> None:
    async with discord_bench(tmp_path) as bench:
        fd = bench.fd
        starter = await fd.user_says(bench.channel, bench.alice, "Planning the offsite")
        thread = fd.create_thread(bench.channel, "offsite", owner=bench.alice, message=starter)
        await fd.user_says(thread, bench.alice, "I suggest Lisbon.")
        await fd.user_says(thread, bench.bob, "Porto is cheaper.")
        await bench.mention(thread, bench.bob, "summarize this thread")
        await bench.settle(answered=1)
        (answer,) = bench.replies(thread)
        assert answer.content.endswith("[Bob] summarize this thread")
        body = bench.gateway_body(-1)
        for said in ("[Alice] Planning the offsite", "[Alice] I suggest Lisbon.", "[Bob] Porto is cheaper."):
            assert said in body
        reads = sum(1 for r in fd.requests if r.route == "GET /channels/{channel_id}/messages")

        # the thread is Parley's conversation now: later messages are answered and not read again
        await fd.user_says(thread, bench.alice, "and the dates?")
        await bench.settle(answered=2)
        assert sum(1 for r in fd.requests if r.route == "GET /channels/{channel_id}/messages") == reads
        key = ConversationKey("discord", str(bench.guild.id), str(bench.channel.id), str(thread.id))
        conversation = await bench.runtime.store.conversations.find(key)
        assert conversation is not None
        stored = await bench.runtime.store.history.load(conversation.id, 50)
        assert [m.text for m in stored].count("Porto is cheaper.") == 1


async def test_a_forum_post_is_its_own_conversation(tmp_path: Path) -> None:
    async with discord_bench(tmp_path) as bench:
        fd = bench.fd
        forum = fd.create_channel(bench.guild, "help", type=15)
        post = fd.create_thread(forum, "Build fails on CI", owner=bench.alice)
        await fd.user_says(post, bench.alice, "The build fails with exit code 137.")
        await bench.mention(post, bench.alice, "any idea?")
        await bench.settle(answered=1)
        assert [m.content for m in bench.replies(post)] == [
            "You said: The build fails with exit code 137.\n\nany idea?"
        ]


async def test_a_long_reply_continues_in_further_messages_with_fences_intact(tmp_path: Path) -> None:
    code = "\n".join(f"    print('line {i:03d} of the program')" for i in range(150))
    text = "Here is the script:\n\n```python\ndef main():\n" + code + "\n```\n\nRun it with `python x.py`."
    assert len(text) > 5000
    async with discord_bench(tmp_path, default=Reply(text=text, chunk_chars=400, delay=0.02)) as bench:
        question = await bench.mention(bench.channel, bench.alice, "write a long script")
        await bench.settle(answered=1)
        parts = [m.content for m in bench.replies(bench.thread_of(question))]
        assert len(parts) >= 3 and all(len(p) <= 2000 for p in parts)
        for p in parts:
            fences = [line for line in p.splitlines() if line.startswith("```")]
            assert len(fences) % 2 == 0, p[:80]  # every part opens and closes its own fences
            assert all(not is_live(m) for m in bench.replies(bench.thread_of(question)))
        # without the fence closed at each cut and reopened (same info string) after it, the
        # parts are exactly the answer
        restored = parts[0]
        for p in parts[1:]:
            assert restored.endswith("\n```") and p.startswith("```python\n")
            restored = restored[: -len("```")] + p[len("```python\n") :]
        assert restored == text
        assert bench.fd.rate_limited_count == 0 and bench.dpy_waits == 0


async def test_own_messages_and_other_bots_are_ignored(tmp_path: Path) -> None:
    async with discord_bench(tmp_path) as bench:
        fd = bench.fd
        robot = fd.create_user("robot", bot=True)
        fd.add_member(bench.guild, robot)
        await bench.mention(bench.channel, robot, "hello from a bot")
        question = await bench.mention(bench.channel, bench.alice, "hello from a person")
        await bench.settle(answered=1)
        assert len(bench.gw.stream_requests) == 1
        thread = bench.thread_of(question)
        # a bot in Parley's own thread is not answered either, and Parley never answers itself
        await fd.user_says(thread, robot, "bot chatter")
        await bench.settle()
        assert len(bench.replies(thread)) == 1 and len(bench.gw.stream_requests) == 1


async def test_listed_bots_are_answered(tmp_path: Path) -> None:
    async with discord_bench(tmp_path, start=False) as bench:
        robot = bench.fd.create_user("robot", bot=True)
        bench.fd.add_member(bench.guild, robot)
        bench.env["PARLEY_ALLOW_BOTS"] = str(robot.id)
        await bench.start()
        try:
            question = await bench.mention(bench.channel, robot, "status report please")
            await bench.settle(answered=1)
            assert [m.content for m in bench.replies(bench.thread_of(question))] == [
                "You said: status report please"
            ]
        finally:
            await bench.stop()


async def test_without_thread_permission_it_answers_in_the_channel(tmp_path: Path) -> None:
    async with discord_bench(tmp_path) as bench:
        fd = bench.fd
        no_threads = Overwrite(bench.guild.id, 0, deny=Perm.CREATE_PUBLIC_THREADS)
        channel = fd.create_channel(bench.guild, "announcements", overwrites=[no_threads])
        question = await bench.mention(channel, bench.alice, "no threads here")
        await bench.settle(answered=1)
        (answer,) = bench.replies(channel)
        assert answer.content == "You said: no threads here"
        assert answer.reference is not None and answer.reference["message_id"] == str(question.id)
        assert fd.pinged_user_ids(answer) == []  # a reply, but nobody is pinged
        assert fd.invalid_request_count == 0  # it did not try and collect a 403


async def test_the_access_policy_applies_to_mentions_and_dms(tmp_path: Path) -> None:
    async with discord_bench(tmp_path, start=False) as bench:
        fd = bench.fd
        carol = fd.create_user("carol")
        fd.add_member(bench.guild, carol)
        members = fd.create_role(bench.guild, "members", members=[bench.alice, bench.bob])
        denied = fd.create_channel(bench.guild, "secret")
        bench.env.update(
            PARLEY_DENY_USERS=str(bench.bob.id),
            PARLEY_DISCORD_ALLOW_ROLES=str(members.id),
            PARLEY_DENY_CHANNELS=str(denied.id),
            PARLEY_ALLOW_DMS="false",
        )
        await bench.start()
        try:
            await bench.mention(bench.channel, bench.bob, "denied user")
            await bench.mention(bench.channel, carol, "not in an allowed role")
            await bench.mention(denied, bench.alice, "denied channel")
            await fd.user_says(fd.create_dm(bench.alice), bench.alice, "DMs are off")
            await bench.mention(bench.channel, bench.alice, "allowed")
            await bench.settle(answered=1)
            assert [r.last_user_text for r in bench.gw.stream_requests] == ["allowed"]
            assert bench.adapter.events.ignored == 4
        finally:
            await bench.stop()


async def test_attachments_are_fetched_lazily_with_a_cap(tmp_path: Path) -> None:
    async with discord_bench(tmp_path) as bench:
        fd = bench.fd
        bench.files.max_bytes = 1000
        await bench.mention(
            bench.channel,
            bench.alice,
            "read these",
            attachments=[
                ("notes.txt", b"small file", "text/plain"),
                ("big.pdf", b"%PDF" + b"x" * 5000, "application/pdf"),
            ],
        )
        await bench.settle(answered=1)
        got = {f.name: f for f in bench.files.fetched}
        assert got["notes.txt"].data == b"small file"
        assert got["big.pdf"].data is None and "big.pdf" in (got["big.pdf"].error or "")
        assert sum(fd.attachment_downloads.values()) == 1  # the big one was refused unread


async def test_quick_follow_ups_are_answered_in_the_order_they_were_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_chain = events_module.reply_chain

    async def slow_for_one(hub: Any, message: Any, **kwargs: Any) -> Any:
        if message.content == "one":
            await asyncio.sleep(0.3)  # e.g. a reply chain fetched over REST
        return await real_chain(hub, message, **kwargs)

    monkeypatch.setattr(events_module, "reply_chain", slow_for_one)
    limits, budgets = quick_limits()
    async with discord_bench(tmp_path, limits=limits, budgets=budgets) as bench:
        fd = bench.fd
        question = await bench.mention(bench.channel, bench.alice, "start")
        await bench.settle(answered=1)
        thread = bench.thread_of(question)
        for word in ("one", "two", "three", "four"):
            await fd.user_says(thread, bench.alice, word)
        await bench.settle(answered=5)
        assert [r.last_user_text for r in bench.gw.stream_requests] == [
            "start",
            "one",
            "two",
            "three",
            "four",
        ]
        assert [m.content for m in bench.replies(thread)] == [
            f"You said: {w}" for w in ("start", "one", "two", "three", "four")
        ]


async def test_without_history_permission_it_answers_without_reading(tmp_path: Path) -> None:
    async with discord_bench(tmp_path) as bench:
        fd = bench.fd
        no_history = Overwrite(bench.guild.id, 0, deny=Perm.READ_MESSAGE_HISTORY)
        channel = fd.create_channel(bench.guild, "write-only", overwrites=[no_history])
        thread = fd.create_thread(channel, "a thread", owner=bench.alice)
        await fd.user_says(thread, bench.alice, "something earlier")
        await bench.mention(thread, bench.alice, "hello?")
        await bench.settle(answered=1)
        assert [m.content for m in bench.replies(thread)] == ["You said: hello?"]
        assert fd.invalid_request_count == 0  # it did not ask and collect a 403


async def test_a_follow_up_while_the_first_answer_streams_is_answered(tmp_path: Path) -> None:
    # The thread is followed from the moment Parley starts answering there, not from when its
    # reply is stored (bot.routing asks the service, for both platforms).
    async with discord_bench(tmp_path) as bench:
        fd, gw = bench.fd, bench.gw
        thread = fd.create_thread(bench.channel, "people talking", owner=bench.alice)
        await fd.user_says(thread, bench.alice, "just chatting")
        await bench.settle()
        gw.script(Reply.paced(" ".join(f"word{i}" for i in range(60)), 40))
        await bench.mention(thread, bench.alice, "tell me a story")
        await fd.wait_for_message(thread, lambda m: m.content.startswith("word"), timeout=5)
        await fd.user_says(thread, bench.bob, "and one more thing")
        await bench.settle(answered=2)
        assert len(gw.stream_requests) == 2
        assert gw.stream_requests[-1].last_user_text.endswith("and one more thing")
        assert bench.replies(thread)[-1].content.endswith("and one more thing")
