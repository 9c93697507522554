"""The :class:`FakeSlack` server: Web API, Socket Mode, HTTP event delivery, files, timelines."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Self, TypeVar

import aiohttp
from aiohttp import web

from ..loopback import LoopbackServer
from . import events as ev
from .config import DEFAULT_SCOPES, ApiFault, Limiter, MessageLimits, RateLimits, StreamingConfig
from .delivery import Ack, Delivery, Kind, Mode, SocketHub, encode_http_body, now_timestamp, run_http
from .events import Identity
from .model import Channel, ChannelKind, FakeFile, Message, MessageState, User
from .web_api import ApiCall, StatusCall, WebApi

T = TypeVar("T")

DEFAULT_USER = "U0USER0001"  #: alice
OTHER_USER = "U0USER0002"  #: bob
DEFAULT_CHANNEL = "C0GENERAL1"  #: #general, public
OTHER_CHANNEL = "C0RANDOM01"  #: #random, public
PRIVATE_CHANNEL = "G0PRIVATE1"  #: #secret, private
DEFAULT_DM = "D0DMALICE1"  #: the bot's DM with alice
OTHER_BOT_ID = "B0OTHER001"


@dataclass(frozen=True)
class FileDownload:
    t: float
    path: str
    authorized: bool
    status: int


@dataclass(frozen=True)
class ResponseUrlPost:
    """A POST to a ``response_url`` (what Bolt's ``respond()`` sends)."""

    t: float
    response_url: str
    payload: dict[str, Any]


class FakeSlack(LoopbackServer):
    """A loopback Slack. See the package docstring for usage."""

    thread_name = "fake-slack"

    def __init__(
        self,
        *,
        identity: Identity | None = None,
        bot_token: str = "xoxb-fake-0001-bot-token",
        app_token: str = "xapp-1-A0APP00001-fake-app-token",
        signing_secret: str = "fake-signing-secret",
        scopes: set[str] | frozenset[str] = DEFAULT_SCOPES,
        ack_timeout: float = 3.0,
        max_retries: int = 3,
        http_retry_delays: tuple[float, ...] = (0.0, 0.0, 0.0),
        connect_wait: float = 5.0,
        events_url: str | None = None,
    ) -> None:
        self.identity = identity or Identity()
        self.bot_token = bot_token
        self.app_token = app_token
        self.signing_secret = signing_secret
        self.scopes: set[str] = set(scopes)
        #: When set, every bot-token call answers this error (``token_revoked``, ``account_inactive``…).
        self.auth_error: str | None = None
        self.ack_timeout = ack_timeout
        self.max_retries = max_retries
        self.http_retry_delays = http_retry_delays
        #: How long a Socket Mode delivery waits for a connected client before the attempt fails.
        self.connect_wait = connect_wait
        #: Default target of HTTP-mode deliveries (the app's ``/slack/events``).
        self.events_url = events_url
        #: ``"redirect"``: unauthorised url_private downloads get 302 to an HTML sign-in page (what
        #: an HTTP client following redirects sees as 200 text/html); ``"forbidden"``: plain 403.
        self.file_auth_failure = "redirect"
        #: When set to "socket" or "http", the bot's own chat.postMessage / chat.update are echoed
        #: back to the app as ``message`` / ``message_changed`` events, as Slack does for apps
        #: subscribed to message.channels / message.im (Bolt drops them by default).
        self.echo_bot_messages: Mode | None = None

        #: Scripted Web API failures, checked before anything else (see :meth:`fail`).
        self.faults: list[ApiFault] = []
        #: file id -> Location: a download of that file is answered with a 302 there (SSRF tests).
        self.file_redirects: dict[str, str] = {}
        self.limits = RateLimits()
        self.limiter = Limiter()
        self.message_limits = MessageLimits()
        self.streaming = StreamingConfig()

        self.calls: list[ApiCall] = []
        self.rate_limited_count: Counter[str] = Counter()
        self.status_log: list[StatusCall] = []
        self.deliveries: list[Delivery] = []
        self.responses: list[ResponseUrlPost] = []
        self.file_downloads: list[FileDownload] = []

        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.files: dict[str, FakeFile] = {}
        self.messages: dict[tuple[str, str], Message] = {}
        self._last_us = 0
        self._file_seq = 0
        self._response_seq = 0

        self.add_user(
            self.identity.bot_user_id, self.identity.bot_name, is_bot=True, bot_id=self.identity.bot_id
        )
        self.add_user(DEFAULT_USER, "alice", real_name="Alice Liddell", display_name="Alice")
        self.add_user(OTHER_USER, "bob", real_name="Bob Builder", display_name="")
        self.add_channel(DEFAULT_CHANNEL, "general")
        self.add_channel(OTHER_CHANNEL, "random")
        self.add_channel(PRIVATE_CHANNEL, "secret", kind="private")
        self.add_channel(DEFAULT_DM, kind="im", user=DEFAULT_USER)

        self.port = 0
        self.http: aiohttp.ClientSession
        self.hub = SocketHub(self)
        self.web_api = WebApi(self)
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self.web_api.handle)
        app.router.add_get("/socket", self.hub.handle)
        app.router.add_get("/files-pri/{path:.+}", self._download)
        app.router.add_get("/signin", self._signin)
        app.router.add_post("/response-url/{rid}", self._response_url_endpoint)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.http = aiohttp.ClientSession()
        self._loop = asyncio.get_running_loop()
        return self

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.hub.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if hasattr(self, "http"):
            await self.http.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run one of the fake's coroutines on its loop from another thread (``in_thread`` mode)."""
        if self._loop is None:
            raise RuntimeError("fake not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # ------------------------------------------------------------------ addresses

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """Web API root, ending in "/": ``AsyncWebClient(base_url=fs.api_url)`` / ``SLACK_API_URL``."""
        return f"{self.base_url}/api/"

    def issue_socket_url(self) -> str:
        return self.hub.issue_url()

    # ------------------------------------------------------------------ clock and ids

    @staticmethod
    def now() -> float:
        """The fake's clock: ``time.monotonic()``; timeline and ack times use it."""
        return time.monotonic()

    def new_ts(self) -> str:
        us = max(int(time.time() * 1_000_000), self._last_us + 1)
        self._last_us = us
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    # ------------------------------------------------------------------ workspace setup

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        real_name: str = "",
        display_name: str = "",
        is_bot: bool = False,
        bot_id: str | None = None,
    ) -> User:
        user = User(user_id, name, real_name, display_name, is_bot, bot_id)
        self.users[user_id] = user
        return user

    def add_channel(
        self, channel_id: str, name: str = "", *, kind: ChannelKind | None = None, user: str | None = None
    ) -> Channel:
        """Add a conversation; the kind defaults from the id prefix (C public, G private, D im)."""
        if kind is None:
            kind = {"G": "private", "D": "im"}.get(channel_id[:1], "public")  # type: ignore[assignment]
        assert kind is not None
        channel = Channel(channel_id, name or channel_id.lower(), kind, user)
        self.channels[channel_id] = channel
        return channel

    def add_file(
        self,
        content: bytes,
        name: str = "document.pdf",
        *,
        mimetype: str = "application/pdf",
        filetype: str | None = None,
        user: str = DEFAULT_USER,
        title: str = "",
    ) -> dict[str, Any]:
        """Register a file; returns its API object (use it in ``files=[...]`` of events)."""
        self._file_seq += 1
        fid = f"F0FILE{self._file_seq:04d}"
        base = f"{self.base_url}/files-pri/{self.identity.team_id}-{fid}"
        f = FakeFile(
            id=fid,
            name=name,
            mimetype=mimetype,
            filetype=filetype or (name.rsplit(".", 1)[-1].lower() if "." in name else "binary"),
            content=content,
            user=user,
            url_private=f"{base}/{name}",
            url_private_download=f"{base}/download/{name}",
            title=title,
        )
        self.files[fid] = f
        return f.to_api(self.identity.team_id)

    def fail(
        self,
        method: str,
        *,
        status: int = 500,
        error: str = "internal_error",
        times: int | None = 1,
        match: Callable[[dict[str, Any]], bool] | None = None,
        retry_after: int | None = None,
    ) -> ApiFault:
        """Make the next ``times`` calls of ``method`` (matching ``match``) fail; returns the fault."""
        fault = ApiFault(method, status, error, times, match, retry_after)
        self.faults.append(fault)
        return fault

    def reset_rate_limits(self) -> None:
        self.limiter.reset()

    # ------------------------------------------------------------------ messages

    def store_message(
        self,
        channel: str,
        *,
        user: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        markdown_text: str | None = None,
        thread_ts: str | None = None,
        bot: bool = False,
        bot_id: str | None = None,
        files: list[dict[str, Any]] | None = None,
        event: str | None = "post",
    ) -> Message:
        ts = self.new_ts()
        msg = Message(
            channel=channel,
            ts=ts,
            user=user,
            text=text,
            blocks=blocks,
            markdown_text=markdown_text,
            thread_ts=thread_ts,
            bot_id=bot_id or (self.identity.bot_id if bot else None),
            app_id=self.identity.app_id if bot else None,
            files=list(files or []),
        )
        self.messages[(channel, ts)] = msg
        if event:
            msg.snapshot(event, self.now())
        return msg

    def message(self, channel: str, ts: str) -> Message:
        return self.messages[(channel, ts)]

    def channel_messages(self, channel: str) -> list[Message]:
        return sorted((m for (c, _), m in self.messages.items() if c == channel), key=lambda m: float(m.ts))

    def thread_messages(self, channel: str, thread_ts: str) -> list[Message]:
        """Parent and replies of a thread, oldest first (deleted ones included, flagged ``deleted``)."""
        return [m for m in self.channel_messages(channel) if m.ts == thread_ts or m.thread_ts == thread_ts]

    def replies_of(self, parent: Message) -> list[Message]:
        return [m for m in self.thread_messages(parent.channel, parent.ts) if m.is_reply and not m.deleted]

    def bot_messages(self, channel: str | None = None, thread_ts: str | None = None) -> list[Message]:
        """Messages the bot posted (or streamed), oldest first."""
        out = [
            m
            for m in self.messages.values()
            if m.user == self.identity.bot_user_id
            and (channel is None or m.channel == channel)
            and (thread_ts is None or m.thread_ts == thread_ts)
        ]
        return sorted(out, key=lambda m: float(m.ts))

    def timeline(self, channel: str, ts: str) -> list[MessageState]:
        """Every state of a message, from creation through updates/appends/stop/delete."""
        msg = self.messages[(channel, ts)]
        self.expire_if_due(msg)
        return list(msg.history)

    def visible_text(self, channel: str, ts: str) -> str:
        """What a user reads now for that message."""
        msg = self.messages[(channel, ts)]
        self.expire_if_due(msg)
        return msg.visible_text()

    def expire_if_due(self, msg: Message) -> None:
        if msg.streaming == "streaming" and msg.stream_started_at is not None:
            end = msg.stream_started_at + self.streaming.expiry_seconds
            if self.now() >= end:
                msg.streaming = "expired"
                msg.snapshot("expire", end)

    def expire_stream(self, channel: str, ts: str) -> None:
        """End a stream now as if its lifetime ran out."""
        msg = self.messages[(channel, ts)]
        if msg.streaming == "streaming":
            msg.streaming = "expired"
            msg.snapshot("expire", self.now())

    def user_stops_stream(self, channel: str, ts: str) -> None:
        """The user presses stop on a streaming reply; further appends answer ``stopped_by_user``."""
        msg = self.messages[(channel, ts)]
        if msg.streaming == "streaming":
            msg.streaming = "stopped_by_user"
            msg.snapshot("user_stop", self.now())

    # ------------------------------------------------------------------ things users do (stored + event)

    def _user_post(
        self,
        kind: str,
        channel: str,
        user: str,
        text: str,
        thread_ts: str | None,
        files: list[dict[str, Any]] | None,
    ) -> dict[str, Any]:
        ch = self.channels[channel]
        msg = self.store_message(
            channel, user=user, text=text, thread_ts=thread_ts, files=files, event="user_post"
        )
        msg.blocks = ev.rich_text_blocks(text)
        parent = self.messages.get((channel, thread_ts)) if thread_ts else None
        return ev.user_message_event(
            self.identity,
            kind=kind,
            channel=channel,
            channel_type=ch.channel_type,
            user=user,
            text=text,
            ts=msg.ts,
            thread_ts=thread_ts,
            files=files,
            parent_user_id=parent.user if parent else None,
        )

    def app_mention(
        self,
        text: str = "hello",
        *,
        channel: str = DEFAULT_CHANNEL,
        user: str = DEFAULT_USER,
        thread_ts: str | None = None,
        files: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A user mentions the bot: stores the message, returns the ``app_mention`` event.

        ``<@BOT>`` is prefixed to ``text`` unless the text already mentions the bot.
        """
        mention = f"<@{self.identity.bot_user_id}>"
        if mention not in text:
            text = f"{mention} {text}"
        return self._user_post("app_mention", channel, user, text, thread_ts, files)

    def dm_message(
        self,
        text: str = "hello",
        *,
        channel: str = DEFAULT_DM,
        user: str | None = None,
        thread_ts: str | None = None,
        files: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A user writes in their DM with the bot: ``message`` event, ``channel_type: im``."""
        return self._user_post(
            "message", channel, user or self.channels[channel].user or DEFAULT_USER, text, thread_ts, files
        )

    def channel_message(
        self,
        text: str = "hello",
        *,
        channel: str = DEFAULT_CHANNEL,
        user: str = DEFAULT_USER,
        thread_ts: str | None = None,
        files: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A plain ``message`` event in a channel (or a thread reply with ``thread_ts``)."""
        return self._user_post("message", channel, user, text, thread_ts, files)

    def bot_message(
        self,
        text: str = "beep",
        *,
        channel: str = DEFAULT_CHANNEL,
        own: bool = False,
        bot_id: str = OTHER_BOT_ID,
        thread_ts: str | None = None,
        legacy_subtype: bool = False,
    ) -> dict[str, Any]:
        """A message from a bot: another app (default) or, with ``own=True``, this app's bot user
        (the echo Slack sends of the bot's own posts; Bolt drops it by default)."""
        ch = self.channels[channel]
        user = self.identity.bot_user_id if own else None
        bid = self.identity.bot_id if own else bot_id
        msg = self.store_message(
            channel, user=user or bid, text=text, thread_ts=thread_ts, bot_id=bid, event="user_post"
        )
        return ev.bot_message_event(
            channel=channel,
            channel_type=ch.channel_type,
            bot_id=bid,
            text=text,
            ts=msg.ts,
            user=user,
            app_id=self.identity.app_id if own else "A0OTHERAPP",
            thread_ts=thread_ts,
            legacy_subtype=legacy_subtype,
        )

    def edit_user_message(self, channel: str, ts: str, new_text: str) -> dict[str, Any]:
        """A user edits a message: updates the store, returns the ``message_changed`` event."""
        msg = self.messages[(channel, ts)]
        previous = msg.to_api(self.identity.team_id)
        msg.text, msg.blocks, msg.edited_ts = new_text, ev.rich_text_blocks(new_text), self.new_ts()
        msg.snapshot("user_edit", self.now())
        return ev.message_changed_event(
            channel=channel,
            channel_type=self.channels[channel].channel_type,
            message=msg.to_api(self.identity.team_id),
            previous_message=previous,
            event_ts=self.new_ts(),
        )

    def delete_user_message(self, channel: str, ts: str) -> dict[str, Any]:
        """A user deletes a message: returns the ``message_deleted`` event."""
        msg = self.messages[(channel, ts)]
        previous = msg.to_api(self.identity.team_id)
        msg.deleted = True
        msg.snapshot("delete", self.now())
        return ev.message_deleted_event(
            channel=channel,
            channel_type=self.channels[channel].channel_type,
            deleted_ts=ts,
            previous_message=previous,
            event_ts=self.new_ts(),
        )

    async def echo(self, msg: Message, previous: dict[str, Any] | None = None) -> None:
        """Deliver the event Slack would send for the bot's own post or edit (see echo_bot_messages)."""
        if self.echo_bot_messages is None:
            return
        channel_type = self.channels[msg.channel].channel_type
        if previous is None:
            event = ev.bot_message_event(
                channel=msg.channel,
                channel_type=channel_type,
                bot_id=self.identity.bot_id,
                text=msg.markdown_text if msg.markdown_text is not None else msg.text,
                ts=msg.ts,
                user=self.identity.bot_user_id,
                app_id=self.identity.app_id,
                thread_ts=msg.thread_ts,
            )
        else:
            event = ev.message_changed_event(
                channel=msg.channel,
                channel_type=channel_type,
                message=msg.to_api(self.identity.team_id),
                previous_message=previous,
                event_ts=self.new_ts(),
            )
        await self.deliver_event(event, mode=self.echo_bot_messages)

    def event_callback(self, event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
        """Wrap an inner event as Slack's ``event_callback`` payload."""
        return ev.event_callback(self.identity, event, event_id=event_id)

    # ------------------------------------------------------------------ delivery

    async def deliver(
        self,
        kind: Kind,
        payload: dict[str, Any],
        *,
        mode: Mode = "socket",
        url: str | None = None,
        ack_timeout: float | None = None,
        max_retries: int | None = None,
    ) -> Delivery:
        """Send any payload; returns at once with a :class:`Delivery` that fills in as it goes."""
        delivery = Delivery(
            kind=kind,
            mode=mode,
            payload=payload,
            ack_timeout=self.ack_timeout if ack_timeout is None else ack_timeout,
            max_retries=self.max_retries if max_retries is None else max_retries,
        )
        self.deliveries.append(delivery)
        if mode == "socket":
            job: Awaitable[None] = self.hub.run(delivery, self.connect_wait)
        else:
            target = url or self.events_url
            if not target:
                raise ValueError("HTTP delivery needs url= or fs.events_url")
            job = run_http(self, delivery, target, self.http_retry_delays)
        task = asyncio.ensure_future(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await asyncio.sleep(0)  # let the first attempt start
        return delivery

    async def deliver_event(
        self,
        event: dict[str, Any],
        *,
        mode: Mode = "socket",
        url: str | None = None,
        ack_timeout: float | None = None,
        max_retries: int | None = None,
        event_id: str | None = None,
    ) -> Delivery:
        """Deliver an inner event (wrapped in ``event_callback``) or a full callback payload."""
        payload = (
            event if event.get("type") == "event_callback" else self.event_callback(event, event_id=event_id)
        )
        return await self.deliver(
            "events_api", payload, mode=mode, url=url, ack_timeout=ack_timeout, max_retries=max_retries
        )

    def _new_response_url(self) -> str:
        self._response_seq += 1
        return f"{self.base_url}/response-url/R{self._response_seq:05d}"

    def _names(self, channel: str, user: str) -> tuple[str, str]:
        ch = self.channels[channel]
        u = self.users.get(user)
        return ("directmessage" if ch.is_dm else ch.name), (u.name if u else user)

    async def slash_command(
        self,
        command: str,
        text: str = "",
        *,
        channel: str = DEFAULT_CHANNEL,
        user: str = DEFAULT_USER,
        mode: Mode = "socket",
        url: str | None = None,
    ) -> Delivery:
        """A user runs a slash command. HTTP: form-encoded fields; Socket Mode: ``slash_commands``."""
        channel_name, user_name = self._names(channel, user)
        payload = ev.slash_command_payload(
            self.identity,
            command=command,
            text=text,
            channel=channel,
            channel_name=channel_name,
            user=user,
            user_name=user_name,
            response_url=self._new_response_url(),
        )
        return await self.deliver("slash_commands", payload, mode=mode, url=url)

    async def click_button(
        self,
        action_id: str,
        *,
        value: str = "",
        block_id: str = "actions",
        text: str = "Button",
        channel: str = DEFAULT_CHANNEL,
        message_ts: str | None = None,
        user: str = DEFAULT_USER,
        mode: Mode = "socket",
        url: str | None = None,
    ) -> Delivery:
        """A user clicks a button (``block_actions``) on the stored message ``message_ts``."""
        channel_name, user_name = self._names(channel, user)
        message = self.messages[(channel, message_ts)].to_api(self.identity.team_id) if message_ts else None
        action = {
            "type": "button",
            "action_id": action_id,
            "block_id": block_id,
            "text": {"type": "plain_text", "text": text, "emoji": True},
            "value": value,
            "action_ts": f"{time.time():.6f}",
        }
        payload = ev.block_actions_payload(
            self.identity,
            action=action,
            channel=channel,
            channel_name=channel_name,
            user=user,
            user_name=user_name,
            message=message,
            response_url=self._new_response_url(),
        )
        return await self.deliver("interactive", payload, mode=mode, url=url)

    async def message_shortcut(
        self,
        callback_id: str,
        *,
        channel: str = DEFAULT_CHANNEL,
        message_ts: str,
        user: str = DEFAULT_USER,
        mode: Mode = "socket",
        url: str | None = None,
    ) -> Delivery:
        """A user runs a message shortcut on a stored message."""
        channel_name, user_name = self._names(channel, user)
        payload = ev.message_shortcut_payload(
            self.identity,
            callback_id=callback_id,
            channel=channel,
            channel_name=channel_name,
            user=user,
            user_name=user_name,
            message=self.messages[(channel, message_ts)].to_api(self.identity.team_id),
            response_url=self._new_response_url(),
        )
        return await self.deliver("interactive", payload, mode=mode, url=url)

    def signed_headers(self, body: bytes, content_type: str, timestamp: str | None = None) -> dict[str, str]:
        ts = timestamp or now_timestamp()
        return {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": ev.sign(self.signing_secret, ts, body),
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }

    async def post_http(
        self,
        payload: dict[str, Any] | bytes,
        *,
        kind: Kind = "events_api",
        url: str | None = None,
        signature: str = "valid",
        timestamp: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        """One raw HTTP request to the app, for testing request verification.

        ``signature``: ``"valid"``, ``"bad"`` (wrong secret), ``"none"`` (no signature headers).
        ``timestamp``: e.g. ``str(int(time.time()) - 600)`` for a stale request (still signed).
        Returns (status, body).
        """
        if isinstance(payload, bytes):
            body, ctype = payload, "application/json"
        else:
            body, ctype = encode_http_body(kind, payload)
        target = url or self.events_url
        if not target:
            raise ValueError("post_http needs url= or fs.events_url")
        headers = self.signed_headers(body, ctype, timestamp)
        if signature == "bad":
            headers["X-Slack-Signature"] = ev.sign(
                "not-the-secret", headers["X-Slack-Request-Timestamp"], body
            )
        elif signature == "none":
            del headers["X-Slack-Signature"], headers["X-Slack-Request-Timestamp"]
        headers.update(extra_headers or {})
        async with self.http.post(target, data=body, headers=headers) as resp:
            return resp.status, await resp.text()

    # ------------------------------------------------------------------ Socket Mode control

    @property
    def socket_connections(self) -> int:
        """Websockets open now."""
        return len([ws for ws in self.hub.connections if not ws.closed])

    @property
    def socket_connect_count(self) -> int:
        """Websocket connections accepted so far (reconnects count)."""
        return self.hub.connect_count

    @property
    def acks(self) -> list[Ack]:
        return self.hub.acks

    async def wait_for_socket(self, count: int = 1, within: float = 5.0) -> None:
        await self.hub.wait_connections(count, within)

    async def wait_for_connect_count(self, count: int, within: float = 5.0) -> None:
        """Wait until ``count`` connections were accepted in total and one is open (reconnects)."""
        await self.hub.wait_connect_count(count, within)

    async def send_disconnect(self, reason: str = "refresh_requested") -> None:
        await self.hub.send_disconnect(reason)

    async def drop_sockets(self, abrupt: bool = False) -> None:
        await self.hub.drop(abrupt)

    # ------------------------------------------------------------------ helpers

    async def wait_for(self, predicate: Callable[[], T], within: float = 5.0, interval: float = 0.01) -> T:
        """Poll until ``predicate()`` is truthy; return its value or raise TimeoutError."""
        deadline = time.monotonic() + within
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError("condition not met in time")
            await asyncio.sleep(interval)

    def calls_for(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    # ------------------------------------------------------------------ HTTP endpoints

    async def _download(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        head = path.split("/", 1)[0]
        fid = head.split("-", 1)[1] if "-" in head else ""
        f = self.files.get(fid)
        auth = request.headers.get("Authorization", "")
        authorized = (
            auth == f"Bearer {self.bot_token}" and "files:read" in self.scopes and not self.auth_error
        )
        status = (
            404 if f is None else 200 if authorized else 302 if self.file_auth_failure == "redirect" else 403
        )
        self.file_downloads.append(FileDownload(self.now(), path, authorized, status))
        if f is None:
            return web.Response(status=404, text="Not Found")
        if fid in self.file_redirects:
            raise web.HTTPFound(self.file_redirects[fid])
        if not authorized:
            if status == 302:
                raise web.HTTPFound(f"/signin?redir=%2Ffiles-pri%2F{path}")
            return web.Response(status=403, text="Forbidden")
        filename = path.rsplit("/", 1)[-1]
        return web.Response(
            body=f.content,
            content_type=f.mimetype,
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    async def _signin(self, request: web.Request) -> web.Response:
        html = (
            "<!DOCTYPE html><html><head><title>Sign in | Slack</title></head>"
            "<body>Sign in to Slack</body></html>"
        )
        return web.Response(text=html, content_type="text/html")

    async def _response_url_endpoint(self, request: web.Request) -> web.Response:
        try:
            payload = await request.json()
        except (ValueError, json.JSONDecodeError):
            payload = {"raw": await request.text()}
        self.responses.append(ResponseUrlPost(self.now(), str(request.url), payload))
        return web.json_response({"ok": True})
