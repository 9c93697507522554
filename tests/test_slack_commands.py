"""The Stop button, ``/parley`` and the message shortcuts, through the real slack-bolt in both modes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.slack.commands import SUMMARIZE_PROMPT
from adapters.slack.surface import STOP_ACTION
from bot.types import ConversationKey, Outcome
from tests.fakes.gateway import Reply
from tests.fakes.slack_api import DEFAULT_CHANNEL, DEFAULT_DM, DEFAULT_USER, OTHER_CHANNEL, OTHER_USER
from tests.slack_harness import MODES, SlackBench, is_live, slack_bench

TEAM = "T0FAKE0001"


@pytest.fixture(params=MODES)
async def bench(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SlackBench]:
    async with slack_bench(tmp_path, request.param) as b:
        yield b


async def run_command(
    bench: SlackBench, text: str, *, user: str = DEFAULT_USER, channel: str = DEFAULT_CHANNEL
) -> str:
    """Runs ``/parley text`` and returns Parley's ephemeral answer."""
    fs = bench.fs
    seen = len(fs.responses)
    delivery = await fs.slash_command("/parley", text, user=user, channel=channel, mode=bench.mode)
    await delivery.wait_acked(within=3)
    await fs.wait_for(lambda: len(fs.responses) > seen)
    payload: dict[str, Any] = fs.responses[-1].payload
    assert payload["response_type"] == "ephemeral"
    return str(payload["text"])


async def ask(bench: SlackBench, text: str, channel: str = DEFAULT_CHANNEL) -> str:
    event = bench.fs.app_mention(text, channel=channel)
    await bench.deliver(event)
    (reply,) = await bench.reply_in(channel, event["ts"])
    return bench.fs.visible_text(channel, reply.ts)


async def test_stop_button_stops_the_answer_and_keeps_what_was_written(bench: SlackBench) -> None:
    fs, gw = bench.fs, bench.gw
    answer = " ".join(f"slow{i}" for i in range(200))
    gw.script(Reply.paced(answer, tokens_per_s=40))
    event = fs.app_mention("take your time")
    await bench.deliver(event)
    live = await fs.wait_for(
        lambda: [
            m
            for m in bench.bot_messages(DEFAULT_CHANNEL, event["ts"])
            if is_live(m) and fs.visible_text(DEFAULT_CHANNEL, m.ts).startswith("slow0")
        ]
    )
    ts = live[0].ts

    # Only the person who asked may stop it.
    click = await fs.click_button(
        STOP_ACTION, block_id=STOP_ACTION, message_ts=ts, user=OTHER_USER, mode=bench.mode
    )
    await click.wait_acked(within=3)
    await fs.wait_for(lambda: fs.responses)
    assert fs.responses[-1].payload["text"] == (
        f"Only <@{DEFAULT_USER}>, who asked, or a workspace admin can stop this reply."
    )
    assert is_live(fs.message(DEFAULT_CHANNEL, ts))

    click = await fs.click_button(STOP_ACTION, block_id=STOP_ACTION, message_ts=ts, mode=bench.mode)
    attempt = await click.wait_acked(within=3)
    assert attempt.acked_at is not None and attempt.acked_at - attempt.sent_at < 1.0
    await bench.settle(1, within=10)
    (reply,) = await bench.reply_in(DEFAULT_CHANNEL, event["ts"])
    shown = fs.visible_text(DEFAULT_CHANNEL, reply.ts)
    written = shown.removesuffix("\n\n_(Stopped.)_")
    assert written != shown and answer.startswith(written) and len(written) < len(answer)
    assert not is_live(reply)
    stored = await bench.stored(ConversationKey("slack", TEAM, DEFAULT_CHANNEL, event["ts"]))
    assert (stored[-1].status, stored[-1].text.rstrip()) == (Outcome.STOPPED, written)
    assert await gw.wait_for_disconnects(1)  # the generation itself was cancelled


async def test_parley_model_sets_the_channel_model(bench: SlackBench) -> None:
    reply = await run_command(bench, "model gemini-2.5-pro")
    assert reply == "Parley now answers with *gemini-2.5-pro* in this channel."
    await ask(bench, "which model?")
    assert bench.gw.stream_requests[-1].model == "gemini-2.5-pro"
    await ask(bench, "elsewhere?", channel=OTHER_CHANNEL)
    assert bench.gw.stream_requests[-1].model == "gemini-2.5-flash"  # per channel

    refused = await run_command(bench, "model no-such-model")
    assert refused.startswith("The gateway has no model `no-such-model`.") and "`gemini-2.5-pro`" in refused
    assert await run_command(bench, "model") == "Parley answers with *gemini-2.5-pro* in this channel."
    await run_command(bench, "model default")
    await ask(bench, "and now?")
    assert bench.gw.stream_requests[-1].model == "gemini-2.5-flash"


async def test_settings_are_for_admins_when_configured(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "socket", env={"PARLEY_ADMIN_ONLY_SETTINGS": "true"}) as bench:
        assert (
            await run_command(bench, "model gemini-2.5-pro")
            == "Only workspace admins can change Parley's model."
        )
        assert await run_command(bench, "system be brief") == (
            "Only workspace admins can change Parley's system prompt."
        )
        info = bench.fs.web_api.handlers["users.info"]

        async def bob_is_admin(params: dict[str, Any]) -> dict[str, Any]:
            answer = await info(params)
            answer["user"]["is_admin"] = answer["user"]["id"] == OTHER_USER
            return answer

        bench.fs.web_api.handlers["users.info"] = bob_is_admin
        assert "gemini-2.5-pro" in await run_command(bench, "model gemini-2.5-pro", user=OTHER_USER)
        assert await run_command(bench, "usage") == (
            "*You:* 0 replies, 0 input and 0 output tokens\n"
            "*This workspace:* 0 replies, 0 input and 0 output tokens"
        )


async def test_system_prompt_usage_and_reset(tmp_path: Path) -> None:
    # A DM as one conversation (without the agent experience, whose threads reset one by one).
    async with slack_bench(tmp_path, "http", env={"PARLEY_SLACK_AGENT": "false"}) as bench:
        assert await run_command(bench, "system Always answer like a pirate.") == (
            "Parley will follow this system prompt in this channel."
        )
        await ask(bench, "hello")
        assert "Always answer like a pirate." in bench.gateway_text()
        usage = await run_command(bench, "usage")
        assert usage.startswith("*You:* 1 reply, ")

        fs = bench.fs
        await bench.deliver(fs.dm_message("remember the word pineapple"))
        await bench.reply_in(DEFAULT_DM, None)
        assert (
            await run_command(bench, "reset", channel=DEFAULT_DM)
            == "Done: Parley starts this conversation afresh."
        )
        await bench.deliver(fs.dm_message("what was the word?"))
        await bench.reply_in(DEFAULT_DM, None, count=2)
        assert "pineapple" not in bench.gateway_text()
        assert "Reset Parley's memory" in await run_command(bench, "reset")  # channels: the shortcut
        assert (await run_command(bench, "help")).startswith("*/parley*")


async def test_summarize_shortcut_answers_in_the_thread(bench: SlackBench) -> None:
    fs = bench.fs
    parent = fs.channel_message("Release plan: ship on Friday.")
    fs.channel_message("QA needs Thursday for the upgrade tests.", thread_ts=parent["ts"], user=OTHER_USER)
    shortcut = await fs.message_shortcut("summarize_thread", message_ts=parent["ts"], mode=bench.mode)
    await shortcut.wait_acked(within=3)
    (reply,) = await bench.reply_in(DEFAULT_CHANNEL, parent["ts"])
    assert reply.thread_ts == parent["ts"]
    body = bench.gateway_text()
    for said in (
        SUMMARIZE_PROMPT,
        "Release plan: ship on Friday.",
        "QA needs Thursday for the upgrade tests.",
    ):
        assert said in body


async def test_reset_shortcut_forgets_a_thread(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "socket") as bench:
        fs = bench.fs
        first = fs.app_mention("the secret is mango")
        await bench.deliver(first)
        (reply,) = await bench.reply_in(DEFAULT_CHANNEL, first["ts"])
        shortcut = await fs.message_shortcut("reset_thread", message_ts=reply.ts)
        await shortcut.wait_acked(within=3)
        await fs.wait_for(lambda: fs.responses)
        assert fs.responses[-1].payload["text"] == "Done: Parley starts this conversation afresh."
        await bench.deliver(fs.channel_message("what is the secret?", thread_ts=first["ts"]))
        await bench.reply_in(DEFAULT_CHANNEL, first["ts"], count=2)
        assert "mango" not in bench.gateway_text()


async def test_access_policy_applies_to_commands_buttons_and_shortcuts(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "socket", env={"PARLEY_DENY_USERS": OTHER_USER}) as bench:
        fs, gw = bench.fs, bench.gw
        refusal = "Sorry, Parley isn't available to you here."
        assert await run_command(bench, "model gemini-2.5-pro", user=OTHER_USER) == refusal
        gw.script(Reply.paced(" ".join(f"w{i}" for i in range(100)), tokens_per_s=40))
        event = fs.app_mention("long one")
        await bench.deliver(event)
        live = await fs.wait_for(
            lambda: [m for m in bench.bot_messages(DEFAULT_CHANNEL, event["ts"]) if is_live(m)]
        )
        click = await fs.click_button(
            STOP_ACTION, block_id=STOP_ACTION, message_ts=live[0].ts, user=OTHER_USER
        )
        await click.wait_acked(within=3)
        await fs.wait_for(lambda: len(fs.responses) == 2)
        assert fs.responses[-1].payload["text"] == refusal
        shortcut = await fs.message_shortcut("summarize_thread", message_ts=event["ts"], user=OTHER_USER)
        await shortcut.wait_acked(within=3)
        await fs.wait_for(lambda: len(fs.responses) == 3)
        assert fs.responses[-1].payload["text"] == refusal
        await bench.settle(1, within=10)
        (reply,) = await bench.reply_in(DEFAULT_CHANNEL, event["ts"])
        assert not fs.visible_text(DEFAULT_CHANNEL, reply.ts).endswith("_(Stopped.)_")
        assert len(gw.stream_requests) == 1


async def test_commands_at_once_ask_the_gateway_for_its_models_once(tmp_path: Path) -> None:
    # Decided once in bot.controls for both platforms (Slack's copy used to have no lock).
    async with slack_bench(tmp_path, "socket") as bench:
        fs = bench.fs
        names = ["gemini-2.5-pro", "gemini-2.5-prox", "gpt-9", "claude-sonnet-4-5"]
        deliveries = await asyncio.gather(
            *(fs.slash_command("/parley", f"model {n}", mode=bench.mode) for n in names)
        )
        for delivery in deliveries:
            await delivery.wait_acked(within=3)
        await fs.wait_for(lambda: len(fs.responses) == len(names))
        answers = sorted(str(r.payload["text"]) for r in fs.responses)
        assert [a.startswith("Parley now answers with") for a in answers].count(True) == 2
        assert [a.startswith("The gateway has no model") for a in answers].count(True) == 2
        assert sum(r.path == "/v1/models" for r in bench.gw.requests) == 1


async def test_in_a_dm_anyone_may_change_their_own_settings(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "socket", env={"PARLEY_ADMIN_ONLY_SETTINGS": "true"}) as bench:
        assert await run_command(bench, "model gemini-2.5-pro", channel=DEFAULT_DM) == (
            "Parley now answers with *gemini-2.5-pro* in this DM."
        )
        question = bench.fs.dm_message("which model?")
        await bench.deliver(question)
        await bench.reply_in(DEFAULT_DM, question["ts"])  # its Messages-tab thread follows the DM's setting
        assert bench.gw.stream_requests[-1].model == "gemini-2.5-pro"
