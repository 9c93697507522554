"""The Stop button and the slash commands, driven through the fake Discord's interactions."""

from __future__ import annotations

import asyncio
from pathlib import Path

from adapters.discord.surface import STOP_ID
from bot.types import ConversationKey, Outcome
from tests.discord_harness import DiscordBench, discord_bench
from tests.fakes.discord import InteractionRecord, Perm, StoredMessage, User
from tests.fakes.gateway import Reply

MANAGE_GUILD = 1 << 5  # Discord's "Manage Server" permission bit
LONG = " ".join(f"word{i}" for i in range(400))


def said(rec: InteractionRecord) -> str:
    """The text of the interaction's answer, wherever it went (callback or follow-up)."""
    texts = [str((r.data.get("data") or r.data).get("content", "")) for r in rec.responses]
    return "\n".join(t for t in texts if t)


def ephemeral(rec: InteractionRecord) -> bool:
    flags = [int((r.data.get("data") or r.data).get("flags") or 0) for r in rec.responses]
    return bool(flags) and all(f & 64 for f in flags if f)


async def streaming_reply(bench: DiscordBench, user: User) -> StoredMessage:
    question = await bench.mention(bench.channel, user, "tell me a long story")
    thread = await bench.thread_opened(question)
    return await bench.fd.wait_for_message(thread, lambda m: m.content.startswith("word"), timeout=5)


async def test_the_requester_stops_a_reply_and_keeps_what_was_written(tmp_path: Path) -> None:
    async with discord_bench(tmp_path, default=Reply.paced(LONG, 40)) as bench:
        fd = bench.fd
        message = await streaming_reply(bench, bench.alice)

        rec = await fd.click_button(message, STOP_ID, bench.bob)  # not Bob's question
        await fd.wait_for_response(rec)
        assert "Only" in said(rec) and ephemeral(rec)
        assert STOP_ID in fd.messages[message.id].custom_ids  # still streaming

        rec = await fd.click_button(message, STOP_ID, bench.alice)
        await fd.wait_for_response(rec)
        assert rec.callback is not None and rec.callback.type == 6  # acknowledged, message untouched
        await bench.settle(answered=1)
        final = fd.messages[message.id]
        # The Stop button made way for the feedback buttons, in the final edit itself.
        assert STOP_ID not in final.custom_ids
        assert [c for c in final.custom_ids if c.startswith("parley:feedback:")] != []
        assert final.content.endswith("_(Stopped.)_") and final.content.startswith("word0")
        assert len(final.content) < len(LONG)
        assert await bench.gw.wait_for_disconnects(1)  # the generation itself was cancelled

        key = ConversationKey("discord", str(bench.guild.id), str(bench.channel.id), str(final.channel_id))
        conversation = await bench.runtime.store.conversations.find(key)
        assert conversation is not None
        stored = (await bench.runtime.store.history.load(conversation.id, 10))[-1]
        assert stored.role == "assistant" and stored.status is Outcome.STOPPED
        assert stored.text.strip() and final.content.startswith(stored.text.strip())


async def test_a_moderator_may_stop_anyones_reply(tmp_path: Path) -> None:
    async with discord_bench(tmp_path, default=Reply.paced(LONG, 40)) as bench:
        fd = bench.fd
        fd.create_role(bench.guild, "mods", Perm.MANAGE_MESSAGES, members=[bench.bob])
        message = await streaming_reply(bench, bench.alice)
        rec = await fd.click_button(message, STOP_ID, bench.bob)
        await fd.wait_for_response(rec)
        await bench.settle(answered=1)
        assert fd.messages[message.id].content.endswith("_(Stopped.)_")


async def test_model_autocompletes_and_the_next_reply_uses_it(tmp_path: Path) -> None:
    async with discord_bench(tmp_path) as bench:
        fd = bench.fd
        question = await bench.mention(bench.channel, bench.alice, "hello")
        await bench.settle(answered=1)
        thread = bench.thread_of(question)
        assert bench.gw.stream_requests[-1].model == "gemini-2.5-flash"

        auto = await fd.autocomplete("model", {"name": "pro"}, "name", bench.alice, thread)
        await fd.wait_for_response(auto)
        assert auto.callback is not None
        assert [c["value"] for c in auto.callback.data["data"]["choices"]] == ["gemini-2.5-pro"]

        rec = await fd.slash_command("model", {"name": "gemini-2.5-pro"}, bench.alice, thread)
        await fd.wait_for_response(rec)
        assert "gemini-2.5-pro" in said(rec) and "this thread" in said(rec) and ephemeral(rec)
        await fd.user_says(thread, bench.alice, "again")
        await bench.settle(answered=2)
        assert bench.gw.stream_requests[-1].model == "gemini-2.5-pro"

        # set for the channel: a new thread there uses it; unknown names are refused with choices
        rec = await fd.slash_command("model", {"name": "claude-sonnet-4-5"}, bench.alice, bench.channel)
        await fd.wait_for_response(rec)
        rec = await fd.slash_command("model", {"name": "gpt-9"}, bench.alice, bench.channel)
        await fd.wait_for_response(rec)
        assert "no model `gpt-9`" in said(rec)
        await bench.mention(bench.channel, bench.bob, "fresh thread")
        await bench.settle(answered=3)
        assert bench.gw.stream_requests[-1].model == "claude-sonnet-4-5"
        assert bench.gw.stream_requests[-1].path == "/v1/messages"

        rec = await fd.slash_command("model", {}, bench.alice, thread)
        await fd.wait_for_response(rec)
        assert "gemini-2.5-pro" in said(rec)  # the thread's own choice wins over the channel's
        assert sum(r.path == "/v1/models" for r in bench.gw.requests) == 1  # the list is cached


async def test_settings_are_for_server_managers_when_admin_only(tmp_path: Path) -> None:
    async with discord_bench(tmp_path, env={"PARLEY_ADMIN_ONLY_SETTINGS": "true"}) as bench:
        fd = bench.fd
        rec = await fd.slash_command("model", {"name": "gemini-2.5-pro"}, bench.alice, bench.channel)
        await fd.wait_for_response(rec)
        assert "Manage Server" in said(rec)
        rec = await fd.slash_command("system", {"prompt": "Talk like a pirate."}, bench.alice, bench.channel)
        await fd.wait_for_response(rec)
        assert "Manage Server" in said(rec)
        rec = await fd.slash_command("model", {}, bench.alice, bench.channel)  # looking is fine
        await fd.wait_for_response(rec)
        assert "gemini-2.5-flash" in said(rec)

        fd.create_role(bench.guild, "admins", MANAGE_GUILD, members=[bench.bob])
        rec = await fd.slash_command("system", {"prompt": "Talk like a pirate."}, bench.bob, bench.channel)
        await fd.wait_for_response(rec)
        assert "will follow" in said(rec)
        await bench.mention(bench.channel, bench.alice, "hi")
        await bench.settle(answered=1)
        system = bench.gw.stream_requests[-1].json["messages"][0]
        assert system["role"] == "system" and system["content"].startswith("Talk like a pirate.")


async def test_usage_shows_the_users_and_the_servers_tokens(tmp_path: Path) -> None:
    async with discord_bench(tmp_path) as bench:
        fd = bench.fd
        await bench.mention(bench.channel, bench.alice, "count me")
        await bench.mention(bench.channel, bench.bob, "and me")
        await bench.settle(answered=2)
        rec = await fd.slash_command("usage", {}, bench.alice, bench.channel)
        await fd.wait_for_response(rec)
        text = said(rec)
        assert "**You:** 1 reply" in text and "**This server:** 2 replies" in text and ephemeral(rec)


async def test_reset_in_a_thread_forgets_and_in_a_channel_explains(tmp_path: Path) -> None:
    async with discord_bench(tmp_path) as bench:
        fd = bench.fd
        question = await bench.mention(bench.channel, bench.alice, "the secret is mango")
        await bench.settle(answered=1)
        thread = bench.thread_of(question)
        rec = await fd.slash_command("reset", {}, bench.alice, bench.channel)
        await fd.wait_for_response(rec)
        assert "inside the thread" in said(rec)
        rec = await fd.slash_command("reset", {}, bench.alice, thread)
        await fd.wait_for_response(rec)
        assert "afresh" in said(rec)
        await fd.user_says(thread, bench.alice, "what was the secret?")
        await bench.settle(answered=2)
        assert "mango" not in bench.gateway_body(-1)


async def test_slow_work_is_deferred_within_three_seconds(tmp_path: Path) -> None:
    async with discord_bench(tmp_path) as bench:
        fd = bench.fd
        real = bench.runtime.gateway.list_models

        async def slow() -> list[str]:
            await asyncio.sleep(2.0)
            return await real()

        bench.runtime.gateway.list_models = slow  # type: ignore[method-assign]
        rec = await fd.slash_command("model", {"name": "gemini-2.5-pro"}, bench.alice, bench.channel)
        await fd.wait_for(lambda: len(rec.responses) == 2, 5)
        assert rec.callback is not None and rec.callback.type == 5  # deferred, "thinking"
        assert rec.callback.t - rec.created_t < 3.0
        assert rec.responses[1].route == "followup" and "gemini-2.5-pro" in said(rec)


async def test_the_access_policy_applies_to_commands_and_buttons(tmp_path: Path) -> None:
    async with discord_bench(tmp_path, default=Reply.paced(LONG, 150), start=False) as bench:
        fd = bench.fd
        bench.env["PARLEY_DENY_USERS"] = str(bench.bob.id)
        await bench.start()
        try:
            commands: list[tuple[str, dict[str, object]]] = [
                ("usage", {}),
                ("model", {"name": "gemini-2.5-pro"}),
                ("reset", {}),
            ]
            for name, options in commands:
                rec = await fd.slash_command(name, options, bench.bob, bench.channel)
                await fd.wait_for_response(rec)
                assert said(rec) == "Sorry, Parley isn't available to you here." and ephemeral(rec)
            auto = await fd.autocomplete("model", {"name": "g"}, "name", bench.bob, bench.channel)
            await fd.wait_for_response(auto)
            assert auto.callback is not None and auto.callback.data["data"]["choices"] == []

            message = await streaming_reply(bench, bench.alice)
            rec = await fd.click_button(message, STOP_ID, bench.bob)
            await fd.wait_for_response(rec)
            assert said(rec) == "Sorry, Parley isn't available to you here."
            await bench.settle(answered=1)
            parts = [m.content for m in bench.replies(message.channel_id)]
            assert " ".join(parts).split() == LONG.split()  # not stopped
        finally:
            await bench.stop()


async def test_commands_at_once_ask_the_gateway_for_its_models_once(tmp_path: Path) -> None:
    # One model list for both platforms in bot.controls (Slack's copy used to have no lock).
    async with discord_bench(tmp_path) as bench:
        fd = bench.fd
        names = ["gemini-2.5-pro", "gemini-2.5-prox", "gpt-9", "claude-sonnet-4-5"]
        records = await asyncio.gather(
            *(fd.slash_command("model", {"name": n}, bench.alice, bench.channel) for n in names)
        )
        for rec in records:
            await fd.wait_for_response(rec)
        answers = [said(rec) for rec in records]
        assert [a.startswith("Parley now answers with") for a in answers] == [True, False, False, True]
        auto = await fd.autocomplete("model", {"name": "claude"}, "name", bench.alice, bench.channel)
        await fd.wait_for_response(auto)
        assert sum(r.path == "/v1/models" for r in bench.gw.requests) == 1
