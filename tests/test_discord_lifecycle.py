"""Starting, failing to start, reconnecting and stopping the Discord adapter; exactly-once answers."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route

import adapters.discord as discord_adapter
from adapters.discord import doctor
from adapters.discord.files import AttachmentReader
from bot.errors import UserFacingError
from bot.files import DownloadRefused
from bot.settings import load_settings
from tests.discord_harness import discord_bench
from tests.fakes.gateway import Reply

ANSWER = " ".join(f"part{i}" for i in range(60))


def test_no_token_no_adapter(tmp_path: Path) -> None:
    ctx: Any = SimpleNamespace(settings=load_settings({}, cwd=tmp_path))
    assert discord_adapter.create(ctx) is None


async def test_starts_connected_and_stops_cleanly(tmp_path: Path) -> None:
    before = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    async with discord_bench(tmp_path, start=False) as bench:
        await bench.start()
        adapter = bench.adapter
        assert adapter.connected
        assert Route.BASE == bench.fd.api_url
        assert str(DiscordWebSocket.DEFAULT_GATEWAY) == bench.fd.gateway_url  # op 9 stays on the fake
        assert {c["name"] for c in bench.fd.commands.values()} == {"model", "reset", "system", "usage"}
        await bench.stop()
        assert not adapter.connected and adapter.client.is_closed()
        assert (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY) == before
        assert adapter.hub.busy == 0


async def test_a_bad_token_is_one_clear_error(tmp_path: Path) -> None:
    async with discord_bench(tmp_path, start=False, env=None) as bench:
        bench.env["DISCORD_BOT_TOKEN"] = "not-the-token"
        with pytest.raises(UserFacingError, match=r"^DISCORD_BOT_TOKEN: Discord rejected the token"):
            await bench.start()
        assert bench.adapter.client.is_closed()
        await bench.runtime.aclose()


async def test_a_missing_message_content_intent_says_how_to_enable_it(tmp_path: Path) -> None:
    async with discord_bench(tmp_path, start=False, message_content_intent=False) as bench:
        with pytest.raises(UserFacingError, match="enable 'Message Content Intent'"):
            await bench.start()
        assert bench.fd.gateway.identify_count == 0  # told before it even connected
        await bench.runtime.aclose()


async def test_an_unreachable_api_names_the_setting(tmp_path: Path) -> None:
    async with discord_bench(tmp_path, start=False) as bench:
        bench.env["DISCORD_API_URL"] = "http://127.0.0.1:9/api/v10"
        with pytest.raises(UserFacingError, match=r"^DISCORD_API_URL: could not reach Discord"):
            await bench.start()
        await bench.runtime.aclose()


async def test_a_gateway_reconnect_mid_reply_loses_and_repeats_nothing(tmp_path: Path) -> None:
    async with discord_bench(tmp_path, default=Reply.paced(ANSWER, 30)) as bench:
        fd = bench.fd
        question = await bench.mention(bench.channel, bench.alice, "a long answer please")
        thread_id = await bench.thread_opened(question)
        await fd.wait_for_message(thread_id, lambda m: m.content.startswith("part0"))
        await fd.reconnect(wait=False)  # op 7 while the answer streams
        follow_up = await fd.user_says(thread_id, bench.bob, "sent during the reconnect")
        await fd.wait_for(lambda: fd.gateway.resume_count == 1, 10)
        await bench.settle(answered=2, within=20)
        answers = [m.content for m in bench.replies(thread_id)]
        assert answers == [ANSWER, ANSWER]
        assert [r.last_user_text for r in bench.gw.stream_requests] == [
            "a long answer please",
            "[Bob] sent during the reconnect",
        ]
        assert fd.gateway.identify_count == 1 and follow_up.id
        assert bench.adapter.connected and fd.rate_limited_count == 0


async def test_after_an_invalid_session_it_reidentifies_at_the_fake(tmp_path: Path) -> None:
    async with discord_bench(tmp_path) as bench:
        fd = bench.fd
        await fd.invalidate_session(timeout=15)
        assert [w for _, w in fd.gateway.connect_log][-2:] == ["connect /gateway", "identify"]
        await fd.wait_for(lambda: bench.adapter.connected, 10)
        question = await bench.mention(bench.channel, bench.alice, "still there?")
        await bench.settle(answered=1)
        assert [m.content for m in bench.replies(bench.thread_of(question))] == ["You said: still there?"]


async def test_a_message_delivered_twice_is_answered_once(tmp_path: Path) -> None:
    async with discord_bench(tmp_path) as bench:
        question = await bench.mention(bench.channel, bench.alice, "only once")
        await bench.settle(answered=1)
        events = bench.adapter.events
        cached = next(m for m in bench.adapter.client.cached_messages if m.id == question.id)

        await events.process(cached)  # redelivered to this process: dropped on sight
        bench.adapter.hub._recent.clear()  # ...and as a new process would see it after a restart:
        await events.process(cached)  # the thread exists already, and the core refuses the duplicate
        await bench.settle()
        assert len(bench.gw.stream_requests) == 1
        assert [m.content for m in bench.replies(bench.thread_of(question))] == ["You said: only once"]
        assert bench.fd.server_errors == []


async def test_attachments_only_come_from_discords_hosts(tmp_path: Path) -> None:
    reader = AttachmentReader("https://discord.com/api/v10")
    fake: Any = SimpleNamespace(
        id=1, filename="x.pdf", content_type="application/pdf", size=10, url="https://evil.example/x.pdf"
    )
    (attachment,) = reader.attachments([fake])
    with pytest.raises(DownloadRefused):
        await attachment.fetch(1000)
    assert reader.allowed.lists("cdn.discordapp.com") and not reader.allowed.private
    local = AttachmentReader("http://127.0.0.1:5000/api/v10")
    assert local.allowed.lists("127.0.0.1") and "127.0.0.1" in local.allowed.private
    await reader.aclose()


async def test_surface_refusals_are_surface_errors_and_it_deletes(tmp_path: Path) -> None:
    # An edit of a message someone deleted: the renderer gets a refusal it can act on, not a crash.
    from adapters.discord.surface import DiscordRefused, DiscordSurface, make_ref

    async with discord_bench(tmp_path) as bench:
        surface = DiscordSurface(bench.adapter.hub, bench.channel.id)
        ref = await surface.post("hello", live=False)
        await bench.fd.user_deletes(int(ref.split(":")[1]))
        with pytest.raises(DiscordRefused) as caught:
            await surface.edit(make_ref(bench.channel.id, int(ref.split(":")[1])), "again", live=False)
        assert (caught.value.status, caught.value.code) == (404, 10008)  # Unknown Message

        other = await surface.post("replaced", live=False)
        await surface.delete(other)
        assert bench.fd.messages[int(other.split(":")[1])].deleted


async def test_doctor_checks_token_intent_and_gateway(tmp_path: Path) -> None:
    async with discord_bench(tmp_path, start=False) as bench:
        findings = await doctor.check(load_settings(bench.env, cwd=tmp_path))
        assert all(f.ok for f in findings), findings
        assert any(
            f"client_id={bench.fd.application_id}" in f.what and "permissions=309237713920" in f.what
            for f in findings
        )
        bad = await doctor.check(load_settings({**bench.env, "DISCORD_BOT_TOKEN": "nope"}, cwd=tmp_path))
        assert [(f.ok, f.what) for f in bad] == [(False, "discord: DISCORD_BOT_TOKEN was rejected (401)")]
        assert await doctor.check(load_settings({}, cwd=tmp_path)) == []
    async with discord_bench(tmp_path, start=False, message_content_intent=False) as bench:
        findings = await doctor.check(load_settings(bench.env, cwd=tmp_path))
        missing = [f for f in findings if not f.ok]
        assert len(missing) == 1 and "Message Content" in missing[0].what and "Privileged" in missing[0].fix


async def test_shutdown_finishes_replies_in_flight_and_starts_no_new_ones(tmp_path: Path) -> None:
    async with discord_bench(tmp_path, default=Reply.paced(ANSWER, 30), start=False) as bench:
        await bench.start()
        fd = bench.fd
        question = await bench.mention(bench.channel, bench.alice, "long one")
        thread_id = await bench.thread_opened(question)
        await fd.wait_for_message(thread_id, lambda m: m.content.startswith("part0"))
        await bench.adapter.stop_intake()
        late = await bench.mention(bench.channel, bench.bob, "too late")
        await bench.stop()
        assert [m.content for m in bench.replies(thread_id)] == [ANSWER]  # finished, not cut
        assert fd.messages[late.id].thread_id is None and len(bench.gw.stream_requests) == 1
        assert bench.adapter.events.unanswered == 1 and bench.adapter.client.is_closed()
