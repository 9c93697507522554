"""The Slack fake's agent surface, feedback buttons and modals, driven by the real slack_sdk / Bolt."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError

from tests.fakes.slack import DEFAULT_CHANNEL, DEFAULT_DM, DEFAULT_USER, OTHER_USER, FakeSlack
from tests.fakes.slack.clients import bolt_app, serve, socket_mode, web_client

PROMPTS = [
    {"title": "Summarise", "message": "Summarise this channel"},
    {"title": "Draft", "message": "Draft"},
]


@pytest.fixture
async def fs() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(ack_timeout=1.0) as fake:
        yield fake


async def error_of(call: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as err:
        await call
    data: dict[str, Any] = err.value.response.data
    return data


FEEDBACK: dict[str, Any] = {
    "type": "context_actions",
    "block_id": "fb",
    "elements": [
        {
            "type": "feedback_buttons",
            "action_id": "parley_feedback",
            "positive_button": {"text": {"type": "plain_text", "text": "👍"}, "value": "up"},
            "negative_button": {"text": {"type": "plain_text", "text": "👎"}, "value": "down"},
        }
    ],
}


# ---------------------------------------------------------------------------- agent methods


async def test_suggested_prompts_are_shown_once_set_without_a_thread(fs: FakeSlack) -> None:
    client = web_client(fs)
    await client.assistant_threads_setSuggestedPrompts(channel_id=DEFAULT_DM, prompts=PROMPTS, title="Try")
    shown = fs.suggested_prompts[DEFAULT_DM]
    assert shown.title == "Try" and shown.prompts == (
        ("Summarise", "Summarise this channel"),
        ("Draft", "Draft"),
    )

    # An agent_view app that passes thread_ts: ok, yet nothing changes (Slack's "silently fail").
    root = fs.dm_message("first question")
    await client.assistant_threads_setSuggestedPrompts(
        channel_id=DEFAULT_DM, thread_ts=root["ts"], prompts=[{"title": "x", "message": "y"}]
    )
    assert fs.prompt_calls[-1].applied is False and fs.suggested_prompts[DEFAULT_DM] is shown

    too_many = [{"title": f"t{i}", "message": f"m{i}"} for i in range(5)]
    body = await error_of(
        client.assistant_threads_setSuggestedPrompts(channel_id=DEFAULT_DM, prompts=too_many)
    )
    assert body["error"] == "invalid_arguments" and "/prompts" in body["response_metadata"]["messages"][0]
    body = await error_of(client.api_call("assistant.threads.setSuggestedPrompts", json={"prompts": PROMPTS}))
    assert body["error"] == "invalid_arguments"
    assert body["response_metadata"]["messages"] == ["[ERROR] missing required field: channel_id"]

    fs.agent.view = None
    body = await error_of(
        client.assistant_threads_setSuggestedPrompts(channel_id=DEFAULT_DM, prompts=PROMPTS)
    )
    assert body["error"] == "not_agent_app"


async def test_title_and_status_with_their_scopes(fs: FakeSlack) -> None:
    client = web_client(fs)
    root = fs.dm_message("how do I rotate keys?")
    await client.assistant_threads_setTitle(
        channel_id=DEFAULT_DM, thread_ts=root["ts"], title="Rotating keys"
    )
    assert fs.thread_titles[(DEFAULT_DM, root["ts"])] == "Rotating keys"
    body = await error_of(
        client.assistant_threads_setTitle(channel_id=DEFAULT_DM, thread_ts="1.2", title="x")
    )
    assert body["error"] == "invalid_thread_ts"

    fs.scopes.discard("assistant:write")
    body = await error_of(
        client.assistant_threads_setTitle(channel_id=DEFAULT_DM, thread_ts=root["ts"], title="t")
    )
    assert (body["error"], body["needed"]) == ("missing_scope", "assistant:write")
    # setStatus takes chat:write (Slack's 2026-03 change), or assistant:write for now.
    await client.assistant_threads_setStatus(
        channel_id=DEFAULT_DM, thread_ts=root["ts"], status="is thinking…"
    )
    fs.scopes.discard("chat:write")
    body = await error_of(
        client.assistant_threads_setStatus(channel_id=DEFAULT_DM, thread_ts=root["ts"], status="")
    )
    assert (body["error"], body["needed"]) == ("missing_scope", "chat:write")
    fs.scopes.add("assistant:write")
    await client.assistant_threads_setStatus(channel_id=DEFAULT_DM, thread_ts=root["ts"], status="")


async def test_status_shows_until_cleared_replied_to_or_timed_out(fs: FakeSlack) -> None:
    client = web_client(fs)
    root = fs.dm_message("question")
    loading = ["Reading…", "Thinking…"]
    await client.assistant_threads_setStatus(
        channel_id=DEFAULT_DM, thread_ts=root["ts"], status="is thinking…", loading_messages=loading
    )
    now = fs.thread_status(DEFAULT_DM, root["ts"])
    assert now is not None and now.status == "is thinking…" and now.loading_messages == tuple(loading)
    assert fs.status_log[-1].loading_messages == loading

    await client.chat_postMessage(channel=DEFAULT_DM, thread_ts=root["ts"], text="answer")
    assert fs.thread_status(DEFAULT_DM, root["ts"]) is None
    assert [c.cause for c in fs.status_changes] == ["set", "reply"]

    await client.assistant_threads_setStatus(channel_id=DEFAULT_DM, thread_ts=root["ts"], status="again")
    await client.assistant_threads_setStatus(channel_id=DEFAULT_DM, thread_ts=root["ts"], status="")
    assert fs.thread_status(DEFAULT_DM, root["ts"]) is None and fs.status_changes[-1].cause == "clear"

    fs.agent.status_timeout = 0.05
    fs.reset_rate_limits()
    await client.assistant_threads_setStatus(channel_id=DEFAULT_DM, thread_ts=root["ts"], status="slow")
    await asyncio.sleep(0.1)
    assert fs.thread_status(DEFAULT_DM, root["ts"]) is None and fs.status_changes[-1].cause == "timeout"

    eleven = [f"m{i}" for i in range(11)]
    body = await error_of(
        client.assistant_threads_setStatus(
            channel_id=DEFAULT_DM, thread_ts=root["ts"], status="x", loading_messages=eleven
        )
    )
    assert body["error"] == "invalid_arguments"


async def test_status_budget_is_per_thread_and_answers_429(fs: FakeSlack) -> None:
    client = web_client(fs)
    one, two = fs.dm_message("one"), fs.dm_message("two")
    for _ in range(3):
        await client.assistant_threads_setStatus(channel_id=DEFAULT_DM, thread_ts=one["ts"], status="…")
    with pytest.raises(SlackApiError) as err:
        await client.assistant_threads_setStatus(channel_id=DEFAULT_DM, thread_ts=one["ts"], status="…")
    assert err.value.response.status_code == 429 and int(err.value.response.headers["Retry-After"]) >= 1
    await client.assistant_threads_setStatus(channel_id=DEFAULT_DM, thread_ts=two["ts"], status="…")
    assert fs.rate_limited_count["assistant.threads.setStatus"] == 1


# ---------------------------------------------------------------------------- events


async def test_messages_tab_events_reach_bolt_listeners(fs: FakeSlack) -> None:
    app = bolt_app(fs)
    got: list[dict[str, Any]] = []

    @app.event("app_home_opened")
    async def opened(event: dict[str, Any], client: Any) -> None:
        got.append(event)
        await client.assistant_threads_setSuggestedPrompts(channel_id=event["channel"], prompts=PROMPTS)

    @app.event("app_context_changed")
    async def context(event: dict[str, Any]) -> None:
        got.append(event)

    @app.event("message")
    async def message(event: dict[str, Any]) -> None:
        got.append(event)

    async with socket_mode(fs, app):
        await fs.deliver_event(fs.open_app_home(user=OTHER_USER, tab="messages", viewing=DEFAULT_CHANNEL))
        await fs.wait_for(lambda: fs.suggested_prompts)
        dm = fs.dm_with(OTHER_USER).id
        assert list(fs.suggested_prompts) == [dm]
        assert got[0]["tab"] == "messages" and got[0]["channel"] == dm and got[0]["user"] == OTHER_USER
        assert got[0]["context"]["entities"][0] == {
            "type": "slack#/types/channel_id",
            "value": DEFAULT_CHANNEL,
            "team_id": fs.identity.team_id,
        }
        await fs.deliver_event(fs.context_changed(user=OTHER_USER, viewing="C0RANDOM01"))
        await fs.deliver_event(fs.context_changed(user=OTHER_USER))
        await fs.deliver_event(fs.dm_message("hi from the Messages tab", channel=dm))
        await fs.wait_for(lambda: len(got) == 4)
        assert got[1]["context"]["entities"][0]["value"] == "C0RANDOM01" and got[2]["context"] == {}
        assert (got[3]["channel_type"], got[3]["user"], got[3].get("thread_ts")) == ("im", OTHER_USER, None)
        home = fs.open_app_home(tab="home")
        assert home["tab"] == "home" and "context" not in home


# ---------------------------------------------------------------------------- feedback and modals


async def test_feedback_click_reaches_bolt_and_a_modal_can_ask_why(fs: FakeSlack) -> None:
    app = bolt_app(fs)
    votes: list[tuple[str, str, str]] = []

    @app.action("parley_feedback")
    async def feedback(ack: Any, body: dict[str, Any], action: dict[str, Any], client: Any) -> None:
        await ack()
        votes.append((body["user"]["id"], action["value"], body["message"]["ts"]))
        if action["value"] == "down":
            await client.views_open(
                trigger_id=body["trigger_id"],
                view={
                    "type": "modal",
                    "callback_id": "why",
                    "title": {"type": "plain_text", "text": "What was wrong?"},
                    "submit": {"type": "plain_text", "text": "Send"},
                    "blocks": [
                        {
                            "type": "input",
                            "label": {"type": "plain_text", "text": "Tell us"},
                            "element": {"type": "plain_text_input", "action_id": "reason"},
                        }
                    ],
                },
            )

    reasons: list[str] = []

    @app.view("why")
    async def why(ack: Any, view: dict[str, Any]) -> None:
        (block,) = view["state"]["values"].values()
        reasons.append(block["reason"]["value"])
        await ack()

    client = web_client(fs)
    posted = await client.chat_postMessage(
        channel=DEFAULT_CHANNEL,
        text="an answer",
        blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": "an answer"}},
            FEEDBACK,
        ],
    )
    async with socket_mode(fs, app):
        up = await fs.click_feedback(posted["ts"], "positive")
        await up.wait_acked()
        action = up.payload["actions"][0]
        assert action == {
            "type": "feedback_buttons",
            "action_id": "parley_feedback",
            "block_id": "fb",
            "value": "up",
            "text": {"type": "plain_text", "text": "👍"},
            "action_ts": action["action_ts"],
        }
        assert up.payload["container"] == {
            "type": "message",
            "message_ts": posted["ts"],
            "channel_id": DEFAULT_CHANNEL,
            "is_ephemeral": False,
        }
        down = await fs.click_feedback(posted["ts"], "negative", user=OTHER_USER)
        await down.wait_acked()
        await fs.wait_for(lambda: fs.views)
        assert votes == [(DEFAULT_USER, "up", posted["ts"]), (OTHER_USER, "down", posted["ts"])]
        (opened,) = fs.opened_views("why")
        assert opened.user == OTHER_USER and opened.state == "open"
        submitted = await fs.submit_view(opened.id, {"reason": "it was out of date"})
        await submitted.wait_acked()
        await fs.wait_for(lambda: opened.state == "submitted")
        assert reasons == ["it was out of date"]


async def test_trigger_rules_and_block_checks(fs: FakeSlack) -> None:
    client = web_client(fs)
    view = {"type": "modal", "title": {"type": "plain_text", "text": "t"}, "blocks": []}
    body = await error_of(client.views_open(trigger_id="1.2.abc", view=view))
    assert body["error"] == "invalid_trigger_id"
    trigger = fs.issue_trigger(DEFAULT_USER)
    await client.views_open(trigger_id=trigger, view=view)
    assert (await error_of(client.views_open(trigger_id=trigger, view=view)))[
        "error"
    ] == "exchanged_trigger_id"
    stale = fs.issue_trigger(DEFAULT_USER)
    fs.triggers[stale] = (fs.now() - 4, DEFAULT_USER)
    assert (await error_of(client.views_open(trigger_id=stale, view=view)))["error"] == "expired_trigger_id"

    bad = dict(FEEDBACK, elements=[dict(FEEDBACK["elements"][0], negative_button={"value": "down"})])
    body = await error_of(client.chat_postMessage(channel=DEFAULT_CHANNEL, text="x", blocks=[bad]))
    assert body["error"] == "invalid_blocks"
    assert any(
        "/blocks/0/elements/0/negative_button/text" in m for m in body["response_metadata"]["messages"]
    )
    with pytest.raises(ValueError):
        await fs.click_feedback(
            (await client.chat_postMessage(channel=DEFAULT_CHANNEL, text="plain"))["ts"], "positive"
        )


async def test_button_click_over_signed_http_carries_the_stored_button(fs: FakeSlack) -> None:
    app = bolt_app(fs)
    clicked: list[dict[str, Any]] = []

    @app.action("stop")
    async def stop(ack: Any, action: dict[str, Any]) -> None:
        clicked.append(action)
        await ack()

    runner, base = await serve(app.web_app())
    fs.events_url = f"{base}/slack/events"
    try:
        posted = await web_client(fs).chat_postMessage(
            channel=DEFAULT_CHANNEL,
            text="streaming…",
            blocks=[
                {
                    "type": "actions",
                    "block_id": "controls",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": "stop",
                            "value": "reply-7",
                            "style": "danger",
                            "text": {"type": "plain_text", "text": "Stop"},
                        }
                    ],
                }
            ],
        )
        click = await fs.click_button("stop", message_ts=posted["ts"], mode="http", strict=True)
        await click.wait_acked()
        assert click.attempts[0].status == 200 and click.attempts[0].url == fs.events_url
        assert (clicked[0]["block_id"], clicked[0]["value"], clicked[0]["text"]["text"]) == (
            "controls",
            "reply-7",
            "Stop",
        )
        with pytest.raises(ValueError):
            await fs.click_button("nope", message_ts=posted["ts"], strict=True)
    finally:
        await runner.cleanup()
