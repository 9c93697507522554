"""The fake Discord, driven by the real discord.py (AutoShardedClient) and by raw HTTP.

These tests pin both the fake's faithfulness and the discord.py behaviours Parley's adapter relies on.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from tests.fakes.discord.clients import Harness, content_intents, running
from tests.fakes.discord.clients import pointed as _pointed
from tests.fakes.discord_api import (
    AppFlag,
    Channel,
    FakeDiscord,
    Guild,
    Limits,
    MessageFlag,
    Overwrite,
    Perm,
    RateLimitRule,
    User,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def fd() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(heartbeat_interval_ms=1000) as fake, _pointed(fake):
        yield fake
        assert not fake.server_errors


@dataclass
class Scene:
    guild: Guild
    channel: Channel
    alice: User


@pytest.fixture
def scene(fd: FakeDiscord) -> Scene:
    guild = fd.create_guild("Parley Test")
    channel = fd.create_channel(guild, "general")
    alice = fd.create_user("alice")
    fd.add_member(guild, alice)
    return Scene(guild, channel, alice)


# ---------------------------------------------------------------------------- connecting


async def test_autosharded_client_connects_and_gets_ready_with_the_guild(
    fd: FakeDiscord, scene: Scene
) -> None:
    before = len(fd.requests)  # the fixture's own GET /gateway/bot
    async with running(fd) as bot:
        client = bot.client
        assert client.user is not None and client.user.id == fd.bot.id
        guild = client.get_guild(scene.guild.id)
        assert guild is not None and guild.name == "Parley Test"
        channel = guild.get_channel(scene.channel.id)
        assert isinstance(channel, discord.TextChannel)
        perms = channel.permissions_for(guild.me)
        assert perms.send_messages and perms.create_public_threads and perms.read_message_history
        assert client.application_flags.gateway_message_content
        info = await client.application_info()
        assert info.flags.gateway_message_content and not info.flags.gateway_message_content_limited
    routes = [r.route for r in fd.requests[before:]]
    # login, then AutoShardedClient asks for the gateway address
    assert routes[:3] == ["GET /users/@me", "GET /oauth2/applications/@me", "GET /gateway/bot"]
    assert fd.gateway.identify_count == 1
    assert fd.gateway.heartbeat_count >= 1


async def test_plain_client_dials_default_gateway_without_asking(fd: FakeDiscord, scene: Scene) -> None:
    before = len(fd.requests)
    async with running(fd, cls=discord.Client) as bot:
        assert bot.client.get_guild(scene.guild.id) is not None
    assert all(r.route != "GET /gateway/bot" for r in fd.requests[before:])
    assert DiscordWebSocket.DEFAULT_GATEWAY.path == "/gateway"
    assert Route.BASE == fd.api_url


async def test_privileged_intent_not_enabled_is_refused_and_visible_in_app_flags() -> None:
    async with FakeDiscord(message_content_intent=False) as fake, _pointed(fake):
        fake.create_guild()
        with pytest.raises(discord.PrivilegedIntentsRequired):
            async with running(fake):
                pass
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{fake.api_url}/oauth2/applications/@me", headers={"Authorization": f"Bot {fake.token}"}
            ) as resp,
        ):
            flags = (await resp.json())["flags"]
        assert not flags & (AppFlag.GATEWAY_MESSAGE_CONTENT | AppFlag.GATEWAY_MESSAGE_CONTENT_LIMITED)


async def test_members_intent_chunks_the_guild_through_op_8() -> None:
    async with FakeDiscord(members_intent=True) as fake, _pointed(fake):
        guild = fake.create_guild()
        bob = fake.create_user("bob")
        fake.add_member(guild, bob)
        intents = content_intents()
        intents.members = True
        async with running(fake, intents=intents) as bot:
            g = bot.client.get_guild(guild.id)
            assert g is not None and g.chunked and g.get_member(bob.id) is not None


# ---------------------------------------------------------------------------- messages in


async def test_message_create_carries_content_author_mentions_and_attachments(
    fd: FakeDiscord, scene: Scene
) -> None:
    async with running(fd) as bot:
        pdf = b"%PDF-1.4 fake"
        await fd.user_says(
            scene.channel,
            scene.alice,
            f"{fd.bot.mention} summarise this",
            attachments=[("doc.pdf", pdf, "application/pdf")],
        )
        await bot.wait(lambda: bot.messages)
        msg = bot.messages[0]
        assert msg.content == f"<@{fd.bot.id}> summarise this"
        assert msg.author.id == scene.alice.id and isinstance(msg.author, discord.Member)
        assert msg.guild is not None and msg.guild.id == scene.guild.id
        assert bot.client.user in msg.mentions
        attachment = msg.attachments[0]
        assert attachment.filename == "doc.pdf" and attachment.content_type == "application/pdf"
        assert attachment.url.startswith(fd.http_root + "/attachments/")
        assert await attachment.read() == pdf
        assert sum(fd.attachment_downloads.values()) == 1


async def test_without_the_content_intent_only_mentions_carry_content(fd: FakeDiscord, scene: Scene) -> None:
    async with running(fd, intents=discord.Intents.default()) as bot:
        await fd.user_says(scene.channel, scene.alice, "plain words")
        await fd.user_says(scene.channel, scene.alice, f"{fd.bot.mention} hi")
        await bot.wait(lambda: len(bot.messages) == 2)
        assert bot.contents() == ["", f"<@{fd.bot.id}> hi"]


async def test_reply_carries_the_referenced_message_and_pings_its_author(
    fd: FakeDiscord, scene: Scene
) -> None:
    async with running(fd) as bot:
        channel = bot.client.get_channel(scene.channel.id)
        assert isinstance(channel, discord.TextChannel)
        answer = await channel.send("the answer")
        await fd.user_says(scene.channel, scene.alice, "why?", reference=answer.id)
        await bot.wait(lambda: any(m.content == "why?" for m in bot.messages))
        reply = next(m for m in bot.messages if m.content == "why?")
        assert reply.type is discord.MessageType.reply
        assert reply.reference is not None and reply.reference.message_id == answer.id
        assert isinstance(reply.reference.resolved, discord.Message)
        assert reply.reference.resolved.content == "the answer"
        assert bot.client.user in reply.mentions


async def test_direct_messages_have_no_guild_and_can_be_answered(fd: FakeDiscord, scene: Scene) -> None:
    dm = fd.create_dm(scene.alice)
    async with running(fd) as bot:
        await fd.user_says(dm, scene.alice, "hello in private")
        await bot.wait(lambda: bot.messages)
        msg = bot.messages[0]
        assert msg.guild is None and isinstance(msg.channel, discord.DMChannel)
        assert msg.content == "hello in private"
        await msg.channel.send("hi alice")
    assert fd.visible_text(dm) == "hello in private\nhi alice"


# ---------------------------------------------------------------------------- messages out


async def test_send_and_edit_are_both_on_the_timeline(fd: FakeDiscord, scene: Scene) -> None:
    async with running(fd) as bot:
        channel = bot.client.get_channel(scene.channel.id)
        assert isinstance(channel, discord.TextChannel)
        async with channel.typing():
            pass
        sent = await channel.send("thinking…")
        await sent.edit(content="The answer is 42.")
        stored = fd.messages[sent.id]
        assert [s.content for s in stored.history] == ["thinking…", "The answer is 42."]
        assert [s.kind for s in stored.history] == ["create", "edit"]
        assert stored.history[0].t <= stored.history[1].t
        assert fd.visible_text(scene.channel) == "The answer is 42."
        assert fd.typing_log and fd.typing_log[0].channel_id == scene.channel.id
        await sent.delete()
        assert fd.messages[sent.id].deleted and fd.visible_text(scene.channel) == ""
        # the bot also receives its own messages, as on Discord
        await bot.wait(lambda: any(m.id == sent.id for m in bot.messages))


async def test_2001_characters_is_invalid_form_body(fd: FakeDiscord, scene: Scene) -> None:
    async with running(fd) as bot:
        channel = bot.client.get_channel(scene.channel.id)
        assert isinstance(channel, discord.TextChannel)
        with pytest.raises(discord.HTTPException) as caught:
            await channel.send("x" * 2001)
        assert caught.value.status == 400 and caught.value.code == 50035
        assert "content" in caught.value.text
        ok = await channel.send("x" * 2000)
        with pytest.raises(discord.HTTPException) as caught:
            await ok.edit(content="y" * 2001)
        assert caught.value.code == 50035
        assert fd.messages[ok.id].content == "x" * 2000


async def test_uploads_are_stored_and_served(fd: FakeDiscord, scene: Scene) -> None:
    async with running(fd) as bot:
        channel = bot.client.get_channel(scene.channel.id)
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("here", file=discord.File(io.BytesIO(b"report body"), "report.txt"))
        stored = fd.messages[sent.id].attachments[0]
        assert stored.filename == "report.txt" and stored.data == b"report body"
        assert await sent.attachments[0].read() == b"report body"


async def test_history_pages_newest_first(fd: FakeDiscord, scene: Scene) -> None:
    posted = [await fd.user_says(scene.channel, scene.alice, f"m{i}") for i in range(5)]
    async with running(fd) as bot:
        channel = bot.client.get_channel(scene.channel.id)
        assert isinstance(channel, discord.TextChannel)
        assert [m.content async for m in channel.history(limit=3)] == ["m4", "m3", "m2"]
        after = [m.content async for m in channel.history(after=discord.Object(posted[1].id))]
        assert after == ["m2", "m3", "m4"]
        fetched = await channel.fetch_message(posted[0].id)
        assert fetched.content == "m0"
        with pytest.raises(discord.NotFound):
            await channel.fetch_message(12345)


async def test_missing_permission_is_403_50013(fd: FakeDiscord, scene: Scene) -> None:
    bot_role = fd.bot_role(scene.guild)
    readonly = fd.create_channel(
        scene.guild,
        "announcements",
        overwrites=[Overwrite(scene.guild.id, 0, deny=Perm.SEND_MESSAGES), Overwrite(bot_role.id, 0, deny=0)],
    )
    async with running(fd) as bot:
        channel = bot.client.get_channel(readonly.id)
        assert isinstance(channel, discord.TextChannel)
        assert not channel.permissions_for(channel.guild.me).send_messages  # discord.py agrees
        with pytest.raises(discord.Forbidden) as caught:
            await channel.send("hi")
        assert caught.value.code == 50013


# ---------------------------------------------------------------------------- threads


async def test_thread_from_a_message(fd: FakeDiscord, scene: Scene) -> None:
    async with running(fd) as bot:
        question = await fd.user_says(scene.channel, scene.alice, f"{fd.bot.mention} long question")
        await bot.wait(lambda: bot.messages)
        thread = await bot.messages[0].create_thread(name="Parley: long question")
        assert thread.id == question.id and thread.parent_id == scene.channel.id
        stored = fd.channels[thread.id]
        assert stored.is_thread and stored.name == "Parley: long question" and stored.owner_id == fd.bot.id
        await bot.wait(lambda: bot.threads)
        assert bot.threads[0].id == thread.id
        await thread.send("answer in the thread")
        assert fd.visible_text(thread.id) == "answer in the thread"
        await fd.user_says(thread.id, scene.alice, "follow-up")
        await bot.wait(lambda: any(m.content == "follow-up" for m in bot.messages))
        follow = next(m for m in bot.messages if m.content == "follow-up")
        assert isinstance(follow.channel, discord.Thread) and follow.channel.id == thread.id
        with pytest.raises(discord.HTTPException) as caught:
            await bot.messages[0].create_thread(name="again")
        assert caught.value.code == 160004


# ---------------------------------------------------------------------------- interactions


class StopView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Stop", custom_id="parley:stop", style=discord.ButtonStyle.danger)
    async def stop_button(
        self, interaction: discord.Interaction, button: discord.ui.Button[StopView]
    ) -> None:
        await interaction.response.edit_message(content="(stopped)", view=None)


async def test_button_click_arrives_as_an_interaction_and_the_response_is_recorded(
    fd: FakeDiscord, scene: Scene
) -> None:
    async with running(fd) as bot:
        channel = bot.client.get_channel(scene.channel.id)
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("streaming…", view=StopView())
        assert fd.messages[sent.id].custom_ids == ["parley:stop"]
        rec = await fd.click_button(sent.id, "parley:stop", scene.alice)
        await fd.wait_for_response(rec)
        assert rec.callback is not None and rec.callback.type == 7
        stored = fd.messages[sent.id]
        assert [s.content for s in stored.history] == ["streaming…", "(stopped)"]
        assert stored.components == []
        with pytest.raises(ValueError):
            await fd.click_button(sent.id, "parley:stop", scene.alice)


def _tree_with_ask(client: discord.Client) -> None:
    tree = app_commands.CommandTree(client)

    @tree.command(name="ask", description="Ask Parley")
    async def ask(interaction: discord.Interaction, question: str) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.followup.send(f"answer to {question}")
        await interaction.edit_original_response(content=f"final answer to {question}")

    @ask.autocomplete("question")
    async def ask_complete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=f"{current}?", value=f"{current}?")]

    @tree.command(name="slow", description="Answers too late")
    async def slow(interaction: discord.Interaction) -> None:
        await asyncio.sleep(0.4)
        try:
            await interaction.response.send_message("late")
        except discord.NotFound as exc:
            client.late_error = exc  # type: ignore[attr-defined]

    client.tree = tree  # type: ignore[attr-defined]


async def test_slash_command_defer_followup_and_edit(fd: FakeDiscord, scene: Scene) -> None:
    async with running(fd, setup=_tree_with_ask) as bot:
        synced = await bot.client.tree.sync()  # type: ignore[attr-defined]
        assert {c.name for c in synced} == {"ask", "slow"}
        rec = await fd.slash_command("ask", {"question": "life"}, scene.alice, scene.channel)
        await fd.wait_for(
            lambda: [r.route for r in rec.responses] == ["callback", "followup", "edit_original"]
        )
        assert rec.callback is not None and rec.callback.type == 5
        original = fd.messages[rec.original_message_id or 0]
        assert [s.content for s in original.history] == ["", "answer to life", "final answer to life"]
        assert original.history[0].flags & MessageFlag.LOADING and not original.flags & MessageFlag.LOADING
        assert original.interaction_metadata is not None and original.interaction_metadata["name"] == "ask"

        auto = await fd.autocomplete("ask", {"question": "why"}, "question", scene.alice, scene.channel)
        await fd.wait_for_response(auto)
        assert auto.callback is not None and auto.callback.type == 8
        assert auto.callback.data["data"]["choices"] == [{"name": "why?", "value": "why?"}]


async def test_interaction_answered_after_the_deadline_is_unknown() -> None:
    async with FakeDiscord(limits=Limits(interaction_ack_seconds=0.2)) as fake, _pointed(fake):
        guild = fake.create_guild()
        channel = fake.create_channel(guild, "general")
        alice = fake.create_user("alice")
        async with running(fake, setup=_tree_with_ask) as bot:
            await bot.client.tree.sync()  # type: ignore[attr-defined]
            rec = await fake.slash_command("slow", {}, alice, channel)
            await bot.wait(lambda: hasattr(bot.client, "late_error"))
            assert bot.client.late_error.code == 10062  # type: ignore[attr-defined]
            assert not rec.acked


# ---------------------------------------------------------------------------- rate limits


async def _seven_edits(bot: Harness, channel_id: int) -> tuple[discord.Message, list[float], float]:
    channel = bot.client.get_channel(channel_id)
    assert isinstance(channel, discord.TextChannel)
    message = await channel.send("v0")
    start = time.monotonic()
    done: list[float] = []

    async def edit(i: int) -> None:
        await message.edit(content=f"v{i}")
        done.append(time.monotonic() - start)

    await asyncio.gather(*(edit(i) for i in range(1, 8)))
    return message, done, time.monotonic() - start


async def test_hidden_edit_limit_gives_429s_that_discord_py_honours() -> None:
    # No X-RateLimit-* headers: a budget the client cannot see coming (Discord's undocumented edit limit).
    limits = Limits(message_edit=RateLimitRule(5, 1.0, announce=False))
    async with FakeDiscord(limits=limits) as fake, _pointed(fake):
        guild = fake.create_guild()
        channel = fake.create_channel(guild, "general")
        async with running(fake) as bot:
            message, _, elapsed = await _seven_edits(bot, channel.id)
        stored = fake.messages[message.id]
        assert stored.edit_count == 7  # everything eventually landed
        assert {s.content for s in stored.history} == {f"v{i}" for i in range(8)}
        route = "PATCH /channels/{channel_id}/messages/{message_id}"
        assert fake.rate_limited[route] >= 1 and fake.rate_limited_count == fake.rate_limited[route]
        assert elapsed >= 0.5  # discord.py slept retry_after before retrying
        assert [r.status for r in fake.requests if r.route == route].count(429) == fake.rate_limited[route]


async def test_announced_edit_limit_is_paced_by_discord_py_without_429s() -> None:
    limits = Limits(message_edit=RateLimitRule(5, 1.0))
    async with FakeDiscord(limits=limits) as fake, _pointed(fake):
        guild = fake.create_guild()
        channel = fake.create_channel(guild, "general")
        async with running(fake) as bot:
            message, done, elapsed = await _seven_edits(bot, channel.id)
            # sequential edits: the call that empties the bucket itself sleeps until the reset
            t0 = time.monotonic()
            durations = []
            for i in range(5):
                before = time.monotonic()
                await message.edit(content=f"s{i}")
                durations.append(time.monotonic() - before)
            sequential = time.monotonic() - t0
        assert fake.rate_limited_count == 0
        assert fake.messages[message.id].edit_count == 12
        assert elapsed >= 0.8  # 7 edits for a 5-per-second bucket: the last two waited for the window
        assert sorted(done)[-1] - sorted(done)[0] >= 0.5
        assert max(durations) >= 0.5 and sequential >= 0.5


async def test_global_limit_429_is_honoured() -> None:
    async with FakeDiscord(limits=Limits(global_per_second=10)) as fake, _pointed(fake):
        guild = fake.create_guild()
        channels = [fake.create_channel(guild, f"c{i}") for i in range(15)]
        async with running(fake) as bot:
            start = time.monotonic()
            fetched = await asyncio.gather(*(bot.client.fetch_channel(c.id) for c in channels))
            elapsed = time.monotonic() - start
        assert [c.id for c in fetched] == [c.id for c in channels]
        assert fake.rate_limited["global"] >= 1 and elapsed >= 0.2


async def test_raw_http_shapes_match_discord(fd: FakeDiscord, scene: Scene) -> None:
    fd.limits.message_create = RateLimitRule(2, 5.0)
    auth = {"Authorization": f"Bot {fd.token}"}
    url = f"{fd.api_url}/channels/{scene.channel.id}/messages"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{fd.api_url}/users/@me") as resp:
            assert resp.status == 401 and resp.headers["Content-Type"] == "application/json"
        async with http.get(f"{fd.api_url}/nope", headers=auth) as resp:
            assert resp.status == 404 and (await resp.json())["code"] == 0
        async with http.get(f"{fd.api_url}/gateway/bot", headers=auth) as resp:
            data = await resp.json()
            assert data["url"] == fd.gateway_url and data["shards"] == 1 and "session_start_limit" in data
        seen = []
        for i in range(3):
            async with http.post(url, json={"content": f"hi {i}"}, headers=auth) as resp:
                seen.append((resp.status, dict(resp.headers), await resp.json()))
    (s1, h1, _), (s2, h2, _), (s3, h3, b3) = seen
    assert (s1, s2, s3) == (200, 200, 429)
    assert h1["Content-Type"] == "application/json" and h1["Via"]
    assert h1["X-RateLimit-Limit"] == "2" and h1["X-RateLimit-Remaining"] == "1"
    assert float(h1["X-RateLimit-Reset-After"]) > 4 and float(h1["X-RateLimit-Reset"]) > time.time()
    assert h1["X-RateLimit-Bucket"] == h2["X-RateLimit-Bucket"] and h2["X-RateLimit-Remaining"] == "0"
    assert h3["Via"] and h3["X-RateLimit-Scope"] == "user" and "X-RateLimit-Global" not in h3
    assert int(h3["Retry-After"]) >= 1
    assert b3["message"] == "You are being rate limited." and b3["global"] is False and b3["retry_after"] > 0
    assert fd.rate_limited_count == 1 and fd.invalid_request_count == 2  # the 401 and the 429


# ---------------------------------------------------------------------------- gateway lifecycle


async def test_op7_reconnect_resumes_and_each_message_arrives_once(fd: FakeDiscord, scene: Scene) -> None:
    async with running(fd) as bot:
        await fd.reconnect(wait=False)
        await fd.user_says(scene.channel, scene.alice, "sent while reconnecting")
        await fd.wait_for(lambda: fd.gateway.resume_count == 1, 10)
        await fd.user_says(scene.channel, scene.alice, "sent after resume")
        await bot.wait(
            lambda: "sent after resume" in bot.contents() and "sent while reconnecting" in bot.contents()
        )
        await asyncio.sleep(0.3)
        assert bot.contents().count("sent while reconnecting") == 1
        assert bot.contents().count("sent after resume") == 1
        assert bot.resumed_count == 1 and fd.gateway.identify_count == 1
        assert [w for _, w in fd.gateway.connect_log][-2:] == ["connect /gateway/resume", "resume"]


async def test_op9_invalid_session_reidentifies_against_the_fake(fd: FakeDiscord, scene: Scene) -> None:
    async with running(fd) as bot:
        await fd.invalidate_session()
        await bot.wait(lambda: bot.ready_count == 2, 10)
        # it redialled DEFAULT_GATEWAY (the fake), not resume_gateway_url and not discord.com
        assert [w for _, w in fd.gateway.connect_log][-2:] == ["connect /gateway", "identify"]
        assert fd.gateway.identify_count == 2
        await fd.user_says(scene.channel, scene.alice, "after re-identify")
        await bot.wait(lambda: "after re-identify" in bot.contents())
        await asyncio.sleep(0.2)
        assert bot.contents().count("after re-identify") == 1


async def test_dropped_connection_is_resumed(fd: FakeDiscord, scene: Scene) -> None:
    async with running(fd) as bot:
        await fd.drop_connections(4000)
        assert fd.gateway.resume_count == 1 and fd.gateway.identify_count == 1
        await fd.user_says(scene.channel, scene.alice, "still here")
        await bot.wait(lambda: "still here" in bot.contents())


# ---------------------------------------------------------------------------- background thread


BOT_SCRIPT = """
import asyncio, os, sys
import discord
from tests.fakes.discord_api import configure_discord_py

async def main():
    await configure_discord_py(os.environ["DISCORD_API_URL"], os.environ["DISCORD_TOKEN"])
    intents = discord.Intents.default()
    intents.message_content = True
    client = discord.AutoShardedClient(intents=intents, guild_ready_timeout=0.1)

    @client.event
    async def on_message(message):
        if not message.author.bot:
            await message.channel.send("echo: " + message.content)

    await client.start(os.environ["DISCORD_TOKEN"])

asyncio.run(main())
"""


def test_in_thread_with_a_bot_in_a_subprocess() -> None:
    with FakeDiscord.in_thread(heartbeat_interval_ms=1000) as fake:
        guild = fake.create_guild()
        channel = fake.create_channel(guild, "general")
        alice = fake.create_user("alice")
        request = urllib.request.Request(
            f"{fake.api_url}/gateway/bot", headers={"Authorization": f"Bot {fake.token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert json.load(resp)["url"] == fake.gateway_url
        env = {**os.environ, "DISCORD_API_URL": fake.api_url, "DISCORD_TOKEN": fake.token}
        proc = subprocess.Popen(
            [sys.executable, "-c", BOT_SCRIPT],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            fake.run(fake.wait_for_identify(1, timeout=20))  # READY and GUILD_CREATE are on the socket
            fake.run(fake.user_says(channel, alice, "ping"))
            echo = fake.run(fake.wait_for_message(channel, timeout=10))
            assert echo.content == "echo: ping"
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=10)
        assert b"Traceback" not in err, err.decode(errors="replace")


async def test_builders_are_usable_before_start() -> None:
    fake = FakeDiscord()
    guild = fake.create_guild()
    assert fake.bot.id in guild.members
    with pytest.raises(RuntimeError):
        fake.add_file("a.txt", b"a")
    async with fake:
        att = fake.add_file("a.txt", b"a")
        assert att.url.startswith(fake.http_root)
