"""The Discord fake's files, voice messages, buttons across a restart and shared global budget,
driven by the real discord.py 2.7 (and raw HTTP where discord.py has no API for it)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest

from tests.fakes.discord.clients import pointed, running
from tests.fakes.discord_api import Channel, FakeDiscord, Limits, MessageFlag, User

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(40_000)


@pytest.fixture
async def fd() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(heartbeat_interval_ms=1000) as fake, pointed(fake):
        yield fake
        assert not fake.server_errors


@pytest.fixture
def place(fd: FakeDiscord) -> tuple[Channel, User]:
    guild = fd.create_guild("Media")
    channel = fd.create_channel(guild, "general")
    alice = fd.create_user("alice")
    fd.add_member(guild, alice)
    return channel, alice


def text_channel(client: discord.Client, channel: Channel) -> discord.TextChannel:
    found = client.get_channel(channel.id)
    assert isinstance(found, discord.TextChannel)
    return found


async def raw(fd: FakeDiscord, method: str, path: str, payload: dict[str, Any], files: dict[str, Any]) -> Any:
    form = aiohttp.FormData()
    form.add_field("payload_json", json.dumps(payload), content_type="application/json")
    for name, (filename, data, ctype) in files.items():
        form.add_field(name, data, filename=filename, content_type=ctype)
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, f"{fd.api_url}{path}", data=form, headers={"Authorization": f"Bot {fd.token}"}
        ) as r,
    ):
        return r.status, await r.json()


# ---------------------------------------------------------------------------- files


async def test_send_and_edit_files_as_discord_py_does(fd: FakeDiscord, place: tuple[Channel, User]) -> None:
    channel, _ = place
    async with running(fd) as bot:
        sent = await text_channel(bot.client, channel).send(
            "a chart", file=discord.File(io.BytesIO(PNG), "chart.png")
        )
        stored = fd.messages[sent.id]
        (chart,) = stored.attachments
        assert chart.data == PNG and chart.content_type == "image/png"
        assert await sent.attachments[0].read() == PNG and sent.attachments[0].content_type == "image/png"

        edited = await sent.edit(
            content="a chart and notes",
            attachments=[sent.attachments[0], discord.File(io.BytesIO(b"notes"), "notes.txt")],
        )
        assert [a.filename for a in edited.attachments] == ["chart.png", "notes.txt"]
        assert stored.attachments[0] is chart and stored.attachments[1].data == b"notes"
        assert stored.attachments[1].content_type == "text/plain; charset=utf-8"
        assert await edited.attachments[1].read() == b"notes"

        kept = await edited.edit(attachments=[edited.attachments[1]])
        assert [a.filename for a in kept.attachments] == ["notes.txt"]
        await kept.edit(attachments=[])
        assert stored.attachments == [] and stored.content == "a chart and notes"
        assert stored.edit_count == 3

    # API v10: on an edit that sends the attachments array, an upload it does not list is dropped.
    path = f"/channels/{channel.id}/messages/{sent.id}"
    status, body = await raw(fd, "PATCH", path, {"attachments": []}, {"files[0]": ("x.bin", b"x", None)})
    assert status == 200 and body["attachments"] == []
    status, body = await raw(fd, "PATCH", path, {}, {"files[0]": ("y.txt", b"y", "text/plain")})
    assert status == 200 and [a["filename"] for a in body["attachments"]] == ["y.txt"]  # no array: appended


# ---------------------------------------------------------------------------- voice messages


async def test_voice_message_reaches_discord_py_with_duration_and_waveform(
    fd: FakeDiscord, place: tuple[Channel, User]
) -> None:
    channel, alice = place
    ogg = b"OggS" + os.urandom(6000)
    async with running(fd) as bot:
        stored = await fd.user_sends_voice(channel, alice, ogg, duration_secs=4.5)
        await bot.wait(lambda: bot.messages)
        (message,) = bot.messages
        assert message.content == "" and message.flags.voice
        (att,) = message.attachments
        assert att.is_voice_message() and att.duration == 4.5 and att.content_type == "audio/ogg"
        assert att.waveform is not None and len(att.waveform) == 45
        assert att.filename == "voice-message.ogg" and await att.read() == ogg
        assert stored.flags == MessageFlag.IS_VOICE_MESSAGE


async def test_voice_message_rules_on_create_and_edit(fd: FakeDiscord, place: tuple[Channel, User]) -> None:
    channel, _ = place
    path = f"/channels/{channel.id}/messages"
    voice = {"flags": MessageFlag.IS_VOICE_MESSAGE}
    meta = {
        "id": 0,
        "filename": "v.ogg",
        "duration_secs": 1.5,
        "waveform": base64.b64encode(b"\x10" * 15).decode(),
    }
    ogg = {"files[0]": ("v.ogg", b"OggS...", "audio/ogg")}
    status, body = await raw(fd, "POST", path, {**voice, "content": "hi", "attachments": [meta]}, ogg)
    assert (status, body["code"]) == (400, 50159)
    status, body = await raw(fd, "POST", path, {**voice, "attachments": [{"id": 0}]}, ogg)
    assert (status, body["code"]) == (400, 50161)
    png = {"files[0]": ("v.png", PNG, "image/png")}
    status, body = await raw(fd, "POST", path, {**voice, "attachments": [meta]}, png)
    assert (status, body["code"]) == (400, 50160)
    status, body = await raw(fd, "POST", path, {**voice, "attachments": [meta]}, ogg)
    assert status == 200 and body["attachments"][0]["duration_secs"] == 1.5 and body["flags"] == 8192
    status, body = await raw(fd, "PATCH", f"{path}/{body['id']}", {"content": "edited"}, {})
    assert (status, body["code"]) == (400, 50162)


# ---------------------------------------------------------------------------- buttons across a restart


class Feedback(discord.ui.View):
    """Persistent buttons (no timeout, fixed custom ids), as a bot registers them at every start."""

    def __init__(self, log: list[tuple[str, int, str]]) -> None:
        super().__init__(timeout=None)
        self.log = log

    @discord.ui.button(label="👍", custom_id="feedback:up")
    async def up(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        self.log.append(
            ("up", interaction.user.id, str(interaction.message.id if interaction.message else 0))
        )
        await interaction.response.send_message("Thanks!", ephemeral=True)
        await interaction.followup.send("Noted.", ephemeral=True)

    @discord.ui.button(label="👎", custom_id="feedback:down")
    async def down(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        self.log.append(
            ("down", interaction.user.id, str(interaction.message.id if interaction.message else 0))
        )
        await interaction.response.defer()


async def test_buttons_keep_working_after_the_bot_restarts(
    fd: FakeDiscord, place: tuple[Channel, User]
) -> None:
    channel, alice = place
    log: list[tuple[str, int, str]] = []
    async with running(fd) as first:
        sent = await text_channel(first.client, channel).send("an answer", view=Feedback(log))
    assert fd.messages[sent.id].custom_ids == ["feedback:up", "feedback:down"]

    async with running(fd, setup=lambda client: client.add_view(Feedback(log))):  # a new process
        up = await fd.click_button(sent.id, "feedback:up", alice)
        await fd.wait_for(lambda: [r.route for r in up.responses] == ["callback", "followup"])
        assert up.callback is not None and up.callback.type == 4
        assert up.payload["type"] == 3 and up.payload["data"]["custom_id"] == "feedback:up"
        assert up.payload["message"]["id"] == str(sent.id) and up.payload["member"]["user"]["id"] == str(
            alice.id
        )
        down = await fd.click_button(sent.id, "feedback:down", alice)
        await fd.wait_for_response(down)
        assert down.callback is not None and down.callback.type == 6
    assert log == [("up", alice.id, str(sent.id)), ("down", alice.id, str(sent.id))]
    assert fd.messages[sent.id].content == "an answer"  # a deferred update changes nothing


# ---------------------------------------------------------------------------- shards and the global budget


async def test_two_shards_of_one_bot_share_the_global_budget() -> None:
    async with FakeDiscord(limits=Limits(global_per_second=10)) as fake, pointed(fake):
        guild = fake.create_guild()
        channels = [fake.create_channel(guild, f"c{i}") for i in range(12)]

        async def fetch(bot: Any, chosen: list[Channel]) -> None:
            await asyncio.gather(*(bot.client.fetch_channel(c.id) for c in chosen))

        async with running(fake, shard_ids=[0], shard_count=2) as alone:
            await asyncio.sleep(1.1)  # the start-up requests' second is over
            await fetch(alone, channels[:6])
        assert fake.rate_limited_count == 0  # six requests a second: within the bot's budget
        async with (
            running(fake, shard_ids=[0], shard_count=2) as zero,
            running(fake, shard_ids=[1], shard_count=2) as one,
        ):
            assert {s.shard for s in fake.gateway.live_sessions()} >= {(0, 2), (1, 2)}
            await asyncio.sleep(1.1)
            await asyncio.gather(fetch(zero, channels[:6]), fetch(one, channels[6:]))
        assert fake.rate_limited["global"] >= 1  # twelve a second from one token: over it
        assert fake.rate_limited_count == fake.rate_limited["global"]
