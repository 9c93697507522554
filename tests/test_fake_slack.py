"""The Slack fake driven by the real slack_sdk / slack_bolt: both event modes, limits, streaming, files."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack.clients import bolt_app, serve, socket_handler, web_client
from tests.fakes.slack_api import (
    DEFAULT_CHANNEL,
    DEFAULT_DM,
    DEFAULT_USER,
    OTHER_CHANNEL,
    Budget,
    FakeSlack,
)


@pytest.fixture
async def fs() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(ack_timeout=1.0) as fake:
        yield fake


# ---------------------------------------------------------------------------- Web API basics


async def test_auth_test_scopes_and_token_errors(fs: FakeSlack) -> None:
    client = web_client(fs)
    resp = await client.auth_test()
    assert resp["user_id"] == fs.identity.bot_user_id and resp["bot_id"] == fs.identity.bot_id
    assert resp["team_id"] == fs.identity.team_id and resp["url"].endswith(".slack.com/")
    assert "chat:write" in resp.headers["x-oauth-scopes"].split(",")

    fs.scopes.discard("files:read")
    assert "files:read" not in (await client.auth_test()).headers["x-oauth-scopes"]
    with pytest.raises(SlackApiError) as err:
        await client.files_info(file="F1")
    assert err.value.response["error"] == "missing_scope"
    assert err.value.response["needed"] == "files:read"

    with pytest.raises(SlackApiError) as err:
        await AsyncWebClient(token="xoxb-wrong", base_url=fs.api_url).auth_test()
    assert err.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as err:
        await client.apps_connections_open(app_token=fs.bot_token)
    assert err.value.response["error"] == "not_allowed_token_type"
    url = (await client.apps_connections_open(app_token=fs.app_token))["url"]
    assert url.startswith(f"ws://127.0.0.1:{fs.port}/socket?")


async def test_history_replies_pagination_and_lookups(fs: FakeSlack) -> None:
    client = web_client(fs)
    parent = fs.app_mention("question", channel=DEFAULT_CHANNEL)
    for i in range(5):
        await client.chat_postMessage(channel=DEFAULT_CHANNEL, thread_ts=parent["ts"], text=f"reply {i}")
        fs.reset_rate_limits()
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await client.conversations_replies(
            channel=DEFAULT_CHANNEL, ts=parent["ts"], limit=2, cursor=cursor
        )
        pages += 1
        seen += [m["text"] for m in page["messages"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not page["has_more"]:
            assert cursor == ""
            break
    assert pages == 3 and seen[0] == parent["text"] and seen[1:] == [f"reply {i}" for i in range(5)]
    first = (await client.conversations_replies(channel=DEFAULT_CHANNEL, ts=parent["ts"]))["messages"][0]
    assert first["reply_count"] == 5 and first["thread_ts"] == parent["ts"]

    history = await client.conversations_history(channel=DEFAULT_CHANNEL)
    assert [m["ts"] for m in history["messages"]] == [parent["ts"]]  # replies stay in the thread

    user = (await client.users_info(user=DEFAULT_USER))["user"]
    assert user["profile"]["display_name"] == "Alice" and user["profile"]["real_name"] == "Alice Liddell"
    dm = (await client.conversations_info(channel=DEFAULT_DM))["channel"]
    assert dm["is_im"] is True and dm["user"] == DEFAULT_USER
    with pytest.raises(SlackApiError) as err:
        await client.conversations_info(channel="C0NOPE")
    assert err.value.response["error"] == "channel_not_found"

    await client.reactions_add(channel=DEFAULT_CHANNEL, timestamp=parent["ts"], name="eyes")
    assert fs.message(DEFAULT_CHANNEL, parent["ts"]).reactions == {"eyes": [fs.identity.bot_user_id]}
    await client.assistant_threads_setStatus(
        channel_id=DEFAULT_CHANNEL, thread_ts=parent["ts"], status="is typing…"
    )
    await client.assistant_threads_setStatus(channel_id=DEFAULT_CHANNEL, thread_ts=parent["ts"], status="")
    assert [s.status for s in fs.status_log] == ["is typing…", ""]


async def test_delete_and_timeline(fs: FakeSlack) -> None:
    client = web_client(fs)
    posted = await client.chat_postMessage(channel=DEFAULT_CHANNEL, text="one")
    await client.chat_update(channel=DEFAULT_CHANNEL, ts=posted["ts"], text="two")
    await client.chat_update(channel=DEFAULT_CHANNEL, ts=posted["ts"], markdown_text="**three**")
    await client.chat_delete(channel=DEFAULT_CHANNEL, ts=posted["ts"])
    states = fs.timeline(DEFAULT_CHANNEL, posted["ts"])
    assert [(s.event, s.visible) for s in states] == [
        ("post", "one"),
        ("update", "two"),
        ("update", "**three**"),
        ("delete", ""),
    ]
    assert all(a.t <= b.t for a, b in itertools.pairwise(states))
    with pytest.raises(SlackApiError) as err:
        await client.chat_update(channel=DEFAULT_CHANNEL, ts=posted["ts"], text="four")
    assert err.value.response["error"] == "message_not_found"


# ---------------------------------------------------------------------------- Socket Mode


async def test_socket_mode_mention_reply_and_update(fs: FakeSlack) -> None:
    app = bolt_app(fs)
    seen_headers: list[Any] = []

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], client: AsyncWebClient, request: Any) -> None:
        seen_headers.append(request.headers.get("x-slack-retry-num"))
        posted = await client.chat_postMessage(
            channel=event["channel"], thread_ts=event["ts"], text="thinking…"
        )
        await client.chat_update(channel=event["channel"], ts=posted["ts"], text="the answer")

    handler = await socket_handler(fs, app)
    try:
        event = fs.app_mention("what is 6*7?")
        delivery = await fs.deliver_event(event)
        attempt = await delivery.wait_acked(within=3)
        assert attempt.number == 0 and attempt.ack_payload is None
        replies = await fs.wait_for(
            lambda: [m for m in fs.bot_messages(DEFAULT_CHANNEL) if len(m.history) == 2]
        )
        reply = replies[0]
        assert reply.thread_ts == event["ts"]
        assert [s.visible for s in fs.timeline(DEFAULT_CHANNEL, reply.ts)] == ["thinking…", "the answer"]
        assert [m.ts for m in fs.thread_messages(DEFAULT_CHANNEL, event["ts"])] == [event["ts"], reply.ts]
        # Bolt maps the envelope's retry_attempt (0 on a first delivery) to the HTTP retry header.
        assert seen_headers == [["0"]]
        assert [a.envelope_id for a in fs.acks] == [attempt.envelope_id]
        assert [c.method for c in fs.calls] == [
            "apps.connections.open",
            "auth.test",
            "chat.postMessage",
            "chat.update",
        ]
    finally:
        await handler.close_async()


async def test_socket_mode_unacked_envelope_is_retried(fs: FakeSlack) -> None:
    app = bolt_app(fs)
    runs: list[tuple[str, Any]] = []

    @app.middleware
    async def slow_first_time(body: dict[str, Any], request: Any, next: Any) -> None:
        if request.headers.get("x-slack-retry-num") == ["0"]:
            await asyncio.sleep(1.3)  # longer than the 1 s ack timeout: Slack redelivers
        await next()

    @app.event("app_mention")
    async def on_mention(body: dict[str, Any], request: Any) -> None:
        runs.append((body["event_id"], request.headers.get("x-slack-retry-num")))

    handler = await socket_handler(fs, app)
    try:
        delivery = await fs.deliver_event(fs.app_mention("hi"))
        await delivery.wait_done(within=5)
        assert delivery.acked and [a.number for a in delivery.attempts] == [0, 1]
        assert delivery.attempts[0].error == "timeout" and delivery.acked_attempt is delivery.attempts[1]
        assert delivery.attempts[0].envelope_id != delivery.attempts[1].envelope_id
        # Both copies reach the listener (the late original too): the app must dedupe on event_id.
        await fs.wait_for(lambda: len(runs) == 2)
        assert {r[0] for r in runs} == {delivery.event_id}
        assert sorted(r[1][0] for r in runs) == ["0", "1"]
    finally:
        await handler.close_async()


async def test_socket_mode_gives_up_after_three_retries(fs: FakeSlack) -> None:
    # A raw websocket client that never acks.
    url = (await web_client(fs).apps_connections_open(app_token=fs.app_token))["url"]
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        hello = json.loads((await ws.receive()).data)
        assert hello["type"] == "hello" and hello["connection_info"]["app_id"] == fs.identity.app_id
        delivery = await fs.deliver_event(fs.app_mention("anyone?"), ack_timeout=0.2)
        envelopes = [json.loads((await ws.receive(timeout=2)).data) for _ in range(4)]
        await delivery.wait_done(within=3)
    assert [e["retry_attempt"] for e in envelopes] == [0, 1, 2, 3]
    assert [e["retry_reason"] for e in envelopes] == ["", "timeout", "timeout", "timeout"]
    assert {e["payload"]["event_id"] for e in envelopes} == {delivery.event_id}
    assert envelopes[0]["type"] == "events_api" and envelopes[0]["accepts_response_payload"] is False
    assert delivery.gave_up and not delivery.acked


async def test_socket_mode_reconnects_after_disconnect_and_drop(fs: FakeSlack) -> None:
    app = bolt_app(fs)
    got: list[str] = []

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any]) -> None:
        got.append(event["text"])

    handler = await socket_handler(fs, app, ping_interval=0.3)
    try:
        await fs.send_disconnect()  # {"type": "disconnect"}: the client opens a new connection
        await fs.wait_for_connect_count(2)
        await (await fs.deliver_event(fs.app_mention("after refresh"))).wait_acked(within=3)
        await fs.drop_sockets()  # close frame from the server
        await fs.wait_for_connect_count(3)
        await (await fs.deliver_event(fs.app_mention("after close"))).wait_acked(within=3)
        await fs.drop_sockets(abrupt=True)  # TCP cut, no close frame
        await fs.wait_for_connect_count(4, within=8)
        await (await fs.deliver_event(fs.app_mention("after cut"))).wait_acked(within=5)
        await fs.wait_for(lambda: len(got) == 3)
        assert len(fs.calls_for("apps.connections.open")) == 4  # a fresh URL for every connection
    finally:
        await handler.close_async()


async def test_socket_mode_slash_command_button_and_shortcut(fs: FakeSlack) -> None:
    app = bolt_app(fs)

    @app.command("/ask")
    async def ask(ack: Any, command: dict[str, Any]) -> None:
        await ack(f"got: {command['text']}")

    @app.action("approve")
    async def approve(ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()
        await respond(f"approved {body['actions'][0]['value']}")

    @app.shortcut("summarize")
    async def summarize(ack: Any, shortcut: dict[str, Any]) -> None:
        await ack()

    handler = await socket_handler(fs, app)
    try:
        cmd = await fs.slash_command("/ask", "why?")
        acked = await cmd.wait_acked(within=3)
        assert acked.ack_payload == {"text": "got: why?"}

        posted = await web_client(fs).chat_postMessage(channel=DEFAULT_CHANNEL, text="approve?")
        click = await fs.click_button("approve", value="42", message_ts=posted["ts"])
        await click.wait_acked(within=3)
        assert click.payload["message"]["ts"] == posted["ts"]
        await fs.wait_for(lambda: fs.responses)
        assert fs.responses[0].payload["text"] == "approved 42"

        short = await fs.message_shortcut("summarize", message_ts=posted["ts"])
        await short.wait_acked(within=3)
    finally:
        await handler.close_async()


# ---------------------------------------------------------------------------- HTTP mode


@pytest.fixture
async def http_app(fs: FakeSlack) -> AsyncIterator[tuple[AsyncApp, list[dict[str, Any]]]]:
    app = bolt_app(fs)
    got: list[dict[str, Any]] = []

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: Any) -> None:
        got.append(event)
        await say(text="hi!", thread_ts=event["ts"])

    @app.command("/ask")
    async def ask(ack: Any, command: dict[str, Any]) -> None:
        await ack(f"http got: {command['text']}")

    @app.action("approve")
    async def approve(ack: Any) -> None:
        await ack()

    runner, base = await serve(app.web_app())
    fs.events_url = f"{base}/slack/events"
    try:
        yield app, got
    finally:
        await runner.cleanup()


async def test_http_mode_signed_event_runs_listener(
    fs: FakeSlack, http_app: tuple[AsyncApp, list[dict[str, Any]]]
) -> None:
    _, got = http_app
    event = fs.app_mention("over http")
    delivery = await fs.deliver_event(event, mode="http")
    attempt = await delivery.wait_acked(within=3)
    assert attempt.status == 200 and attempt.number == 0
    await fs.wait_for(lambda: fs.bot_messages(DEFAULT_CHANNEL, thread_ts=event["ts"]))
    assert got[0]["ts"] == event["ts"]

    cmd = await fs.slash_command("/ask", "x", mode="http")
    assert (await cmd.wait_acked(within=3)).response_body == "http got: x"
    click = await fs.click_button("approve", mode="http")
    assert (await click.wait_acked(within=3)).status == 200


async def test_http_mode_rejects_bad_stale_and_unsigned(
    fs: FakeSlack, http_app: tuple[AsyncApp, list[dict[str, Any]]]
) -> None:
    _, got = http_app
    payload = fs.event_callback(fs.app_mention("forged"))
    assert (await fs.post_http(payload, signature="bad"))[0] == 401
    assert (await fs.post_http(payload, timestamp=str(int(time.time()) - 600)))[0] == 401
    assert (await fs.post_http(payload, signature="none"))[0] == 401
    await asyncio.sleep(0.2)
    assert got == []
    assert (await fs.post_http(payload))[0] == 200
    await fs.wait_for(lambda: got)


async def test_http_mode_retries_with_headers(fs: FakeSlack) -> None:
    seen: list[tuple[str | None, str | None]] = []

    async def slow_then_ok(request: web.Request) -> web.Response:
        seen.append((request.headers.get("X-Slack-Retry-Num"), request.headers.get("X-Slack-Retry-Reason")))
        if len(seen) == 1:
            await asyncio.sleep(0.5)  # longer than ack_timeout
        if len(seen) == 2:
            return web.Response(status=500)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/slack/events", slow_then_ok)
    runner, base = await serve(app)
    try:
        delivery = await fs.deliver_event(
            fs.app_mention("retry me"), mode="http", url=f"{base}/slack/events", ack_timeout=0.3
        )
        await delivery.wait_done(within=5)
    finally:
        await runner.cleanup()
    assert seen == [(None, None), ("1", "http_timeout"), ("2", "http_error")]
    assert [a.error for a in delivery.attempts] == ["http_timeout", "http_error", None]
    assert delivery.acked and delivery.attempts[-1].status == 200


# ---------------------------------------------------------------------------- limits


async def test_message_size_limits(fs: FakeSlack) -> None:
    client = web_client(fs)
    posted = await client.chat_postMessage(channel=DEFAULT_CHANNEL, text="x" * 4000)
    for call, error in [
        (client.chat_update(channel=DEFAULT_CHANNEL, ts=posted["ts"], text="x" * 4001), "msg_too_long"),
        (client.chat_postMessage(channel=DEFAULT_CHANNEL, text="x" * 4001), "msg_too_long"),
        (client.chat_postMessage(channel=OTHER_CHANNEL, markdown_text="x" * 12001), "markdown_text_too_long"),
        (
            client.chat_update(channel=DEFAULT_CHANNEL, ts=posted["ts"], markdown_text="*", text="t"),
            "markdown_text_conflict",
        ),
        (
            client.chat_update(
                channel=DEFAULT_CHANNEL,
                ts=posted["ts"],
                text="fallback",
                blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}],
            ),
            "invalid_blocks",
        ),
        (client.chat_postMessage(channel="C0MISSING", text="x"), "channel_not_found"),
    ]:
        with pytest.raises(SlackApiError) as err:
            await call
        assert err.value.response["error"] == error
        assert err.value.response.status_code == 200
    ok = await client.chat_postMessage(channel=OTHER_CHANNEL, markdown_text="**b**" + "x" * 11995)
    assert fs.visible_text(OTHER_CHANNEL, ok["ts"]).startswith("**b**")


async def test_rate_limits_429_retry_after_and_counts(fs: FakeSlack) -> None:
    fs.limits.budgets["chat.update"] = Budget(3, 1.0)
    fs.limits.budgets["chat.postMessage"] = Budget(2, 1.0)
    client = web_client(fs)
    posted = await client.chat_postMessage(channel=DEFAULT_CHANNEL, text="0")
    for i in range(3):
        await client.chat_update(channel=DEFAULT_CHANNEL, ts=posted["ts"], text=str(i))
    with pytest.raises(SlackApiError) as err:
        await client.chat_update(channel=DEFAULT_CHANNEL, ts=posted["ts"], text="too fast")
    resp = err.value.response
    assert resp.status_code == 429 and resp["error"] == "ratelimited" and resp.headers["Retry-After"] == "1"
    assert fs.visible_text(DEFAULT_CHANNEL, posted["ts"]) == "2"

    # chat.postMessage: per channel. One left in #general, none after that; #random has its own.
    await client.chat_postMessage(channel=DEFAULT_CHANNEL, text="1")
    with pytest.raises(SlackApiError):
        await client.chat_postMessage(channel=DEFAULT_CHANNEL, text="2")
    await client.chat_postMessage(channel=OTHER_CHANNEL, text="elsewhere")
    assert fs.rate_limited_count == {"chat.update": 1, "chat.postMessage": 1}
    assert fs.rate_limited_count.total() == 2

    # With slack_sdk's retry handler the call sleeps Retry-After and then succeeds.
    patient = web_client(fs, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)])
    started = time.monotonic()
    await patient.chat_update(channel=DEFAULT_CHANNEL, ts=posted["ts"], text="eventually")
    assert time.monotonic() - started >= 0.5
    assert fs.visible_text(DEFAULT_CHANNEL, posted["ts"]) == "eventually"


# ---------------------------------------------------------------------------- native streaming


async def test_chat_stream_grows_and_stops(fs: FakeSlack) -> None:
    client = web_client(fs)
    parent = fs.dm_message("tell me a story")
    stream = await client.chat_stream(channel=DEFAULT_DM, thread_ts=parent["ts"], buffer_size=10)
    for word in ["Once ", "upon ", "a ", "time, ", "there ", "was ", "a ", "fake."]:
        await stream.append(markdown_text=word)
    assert stream.ts is not None
    await stream.stop(blocks=[{"type": "context", "elements": [{"type": "mrkdwn", "text": "by parley"}]}])

    # buffer_size=10: slack_sdk flushes once the buffer holds 10+ characters; stop() flushes the rest.
    states = fs.timeline(DEFAULT_DM, stream.ts)
    assert [s.event for s in states] == ["start_stream", "append_stream", "append_stream", "stop_stream"]
    assert [s.streaming for s in states] == ["streaming", "streaming", "streaming", "stopped"]
    assert [s.markdown_text for s in states] == [
        "Once upon ",
        "Once upon a time, there ",
        "Once upon a time, there was a fake.",
        "Once upon a time, there was a fake.",
    ]
    assert fs.visible_text(DEFAULT_DM, stream.ts) == "Once upon a time, there was a fake.\nby parley"
    # slack_sdk 3.47 sends text as chunks, not markdown_text:
    start = fs.calls_for("chat.startStream")[0].params
    assert (
        start["chunks"] == [{"type": "markdown_text", "text": "Once upon "}] and "markdown_text" not in start
    )
    assert fs.message(DEFAULT_DM, stream.ts).thread_ts == parent["ts"]

    with pytest.raises(SlackApiError) as err:
        await client.chat_appendStream(channel=DEFAULT_DM, ts=stream.ts, markdown_text="more")
    assert err.value.response["error"] == "message_not_in_streaming_state"


async def test_streaming_errors(fs: FakeSlack) -> None:
    client = web_client(fs)
    parent = fs.app_mention("stream here")

    async def start(channel: str = DEFAULT_CHANNEL, **kw: Any) -> str:
        resp = await client.chat_startStream(channel=channel, thread_ts=parent["ts"], markdown_text="a", **kw)
        return str(resp["ts"])

    async def error_of(coro: Any) -> str:
        with pytest.raises(SlackApiError) as err:
            await coro
        return str(err.value.response["error"])

    assert await error_of(start()) == "missing_recipient_team_id"
    recipient = {"recipient_team_id": fs.identity.team_id, "recipient_user_id": DEFAULT_USER}
    ts = await start(**recipient)
    assert (
        await error_of(client.chat_update(channel=DEFAULT_CHANNEL, ts=ts, text="x"))
        == "streaming_state_conflict"
    )

    fs.streaming.expiry_seconds = 0.2
    await asyncio.sleep(0.25)
    assert await error_of(client.chat_appendStream(channel=DEFAULT_CHANNEL, ts=ts, markdown_text="b")) == (
        "message_not_in_streaming_state"
    )
    assert fs.timeline(DEFAULT_CHANNEL, ts)[-1].streaming == "expired"
    await client.chat_update(channel=DEFAULT_CHANNEL, ts=ts, markdown_text="fallback")  # allowed once expired
    fs.streaming.expiry_seconds = 300

    ts2 = await start(**recipient)
    fs.user_stops_stream(DEFAULT_CHANNEL, ts2)
    assert await error_of(client.chat_appendStream(channel=DEFAULT_CHANNEL, ts=ts2, markdown_text="b")) == (
        "stopped_by_user"
    )

    fs.streaming.dm_only = True
    assert await error_of(start(**recipient)) == "channel_type_not_supported"
    dm_parent = fs.dm_message("hi")
    await client.chat_startStream(channel=DEFAULT_DM, thread_ts=dm_parent["ts"], markdown_text="ok in a DM")

    fs.streaming.refuse = "not_allowed_token_type"
    assert await error_of(client.chat_startStream(channel=DEFAULT_DM, thread_ts=dm_parent["ts"])) == (
        "not_allowed_token_type"
    )


async def test_stream_tiers_are_rate_limited(fs: FakeSlack) -> None:
    fs.limits.budgets["chat.appendStream"] = Budget(2, 5.0)
    client = web_client(fs)
    parent = fs.dm_message("go")
    ts = (await client.chat_startStream(channel=DEFAULT_DM, thread_ts=parent["ts"], markdown_text="a"))["ts"]
    await client.chat_appendStream(channel=DEFAULT_DM, ts=ts, markdown_text="b")
    await client.chat_appendStream(channel=DEFAULT_DM, ts=ts, markdown_text="c")
    with pytest.raises(SlackApiError) as err:
        await client.chat_appendStream(channel=DEFAULT_DM, ts=ts, markdown_text="d")
    assert err.value.response.status_code == 429 and int(err.value.response.headers["Retry-After"]) >= 4
    assert fs.rate_limited_count["chat.appendStream"] == 1
    assert fs.visible_text(DEFAULT_DM, str(ts)) == "abc"


# ---------------------------------------------------------------------------- files


async def test_url_private_requires_bot_token(fs: FakeSlack) -> None:
    pdf = b"%PDF-1.4 fake"
    f = fs.add_file(pdf, "report.pdf")
    info = (await web_client(fs).files_info(file=f["id"]))["file"]
    assert info["url_private"].startswith(f"http://127.0.0.1:{fs.port}/files-pri/") and info["size"] == len(
        pdf
    )
    event = fs.app_mention("read this", files=[f])
    assert event["files"][0]["url_private_download"] == f["url_private_download"]

    async with aiohttp.ClientSession() as session:
        async with session.get(f["url_private"], headers={"Authorization": f"Bearer {fs.bot_token}"}) as r:
            assert r.status == 200 and await r.read() == pdf and r.content_type == "application/pdf"
        async with session.get(f["url_private_download"]) as r:  # no token: sign-in page, like Slack
            assert r.status == 200 and r.content_type == "text/html" and len(r.history) == 1
        async with session.get(
            f["url_private"], headers={"Authorization": "Bearer xoxb-wrong"}, allow_redirects=False
        ) as r:
            assert r.status == 302
    assert [d.authorized for d in fs.file_downloads] == [True, False, False]


# ---------------------------------------------------------------------------- payload builders, thread mode


async def test_event_builders_and_bolt_self_filter(fs: FakeSlack) -> None:
    dm = fs.dm_message("in a DM")
    assert dm["type"] == "message" and dm["channel_type"] == "im" and dm["user"] == DEFAULT_USER
    reply = fs.channel_message("in thread", thread_ts=dm["ts"], channel=DEFAULT_DM)
    assert reply["thread_ts"] == dm["ts"]
    other = fs.bot_message("from another app")
    assert other["bot_id"] != fs.identity.bot_id and "user" not in other
    changed = fs.edit_user_message(DEFAULT_DM, dm["ts"], "edited")
    assert changed["subtype"] == "message_changed" and changed["message"]["text"] == "edited"
    assert changed["previous_message"]["text"] == "in a DM"
    deleted = fs.delete_user_message(DEFAULT_DM, dm["ts"])
    assert deleted["subtype"] == "message_deleted" and deleted["deleted_ts"] == dm["ts"]
    mention = fs.app_mention("hey")
    assert mention["text"].startswith(f"<@{fs.identity.bot_user_id}>")
    assert mention["blocks"][0]["elements"][0]["elements"][0] == {
        "type": "user",
        "user_id": fs.identity.bot_user_id,
    }

    app = bolt_app(fs)
    got: list[str] = []

    @app.event("message")
    async def on_message(event: dict[str, Any]) -> None:
        got.append(event.get("text", ""))

    handler = await socket_handler(fs, app)
    try:
        own = await fs.deliver_event(fs.bot_message("my own echo", own=True))
        other_d = await fs.deliver_event(fs.bot_message("someone else"))
        await own.wait_acked(within=3)
        await other_d.wait_acked(within=3)
        await fs.wait_for(lambda: got)
        await asyncio.sleep(0.1)
        assert got == ["someone else"]  # Bolt drops the bot's own messages (auth.test user_id/bot_id)
    finally:
        await handler.close_async()


async def test_echo_of_bot_posts_is_dropped_by_bolt(fs: FakeSlack) -> None:
    fs.echo_bot_messages = "socket"
    app = bolt_app(fs)
    got: list[dict[str, Any]] = []

    @app.event("message")
    async def on_message(event: dict[str, Any]) -> None:
        got.append(event)

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: Any) -> None:
        await say(text="reply", thread_ts=event["ts"])

    handler = await socket_handler(fs, app)
    try:
        parent = fs.app_mention("hi")
        reply_event = fs.channel_message("thread reply", thread_ts=parent["ts"], user="U0USER0002")
        assert reply_event["parent_user_id"] == DEFAULT_USER
        await fs.deliver_event(parent)
        echoes = await fs.wait_for(
            lambda: [d for d in fs.deliveries if d.payload["event"]["type"] == "message"]
        )
        await echoes[0].wait_acked(within=3)
        echo = echoes[0].payload["event"]
        assert echo["user"] == fs.identity.bot_user_id and echo["bot_id"] == fs.identity.bot_id
        assert echo["thread_ts"] == parent["ts"]
        await asyncio.sleep(0.1)
        assert got == []
    finally:
        await handler.close_async()


def test_in_thread_mode_with_sync_client() -> None:
    with FakeSlack.in_thread(connect_wait=0.1) as fs:
        client = WebClient(token=fs.bot_token, base_url=fs.api_url)
        assert client.auth_test()["user_id"] == fs.identity.bot_user_id
        ts = client.chat_postMessage(channel=DEFAULT_CHANNEL, text="from another thread")["ts"]
        assert fs.visible_text(DEFAULT_CHANNEL, ts) == "from another thread"
        delivery = fs.run(fs.deliver_event(fs.app_mention("nobody listens"), ack_timeout=0.1, max_retries=0))
        fs.run(delivery.wait_done(within=6))
        assert delivery.gave_up and delivery.attempts[0].error == "no_connection"
