"""The fake workspace's state and its plain bookkeeping: users, channels, files, messages, timelines.

:class:`Workspace` is the bottom layer of :class:`~tests.fakes.slack.server.FakeSlack`: no sockets,
no HTTP, only what Slack knows and the knobs a test turns. The layers above it deliver events
(``sending``), play the users (``acting``) and their clicks (``interacting``).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .agent_api import PromptsCall, StatusCall, StatusChange, TitleCall
from .config import (
    DEFAULT_SCOPES,
    AgentConfig,
    ApiFault,
    Limiter,
    MessageLimits,
    RateLimits,
    StreamingConfig,
)
from .delivery import Delivery, Mode
from .events import Identity
from .files_api import Upload
from .model import Channel, ChannelKind, FakeFile, Message, MessageState, User

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


class Workspace:
    """Users, channels, files and messages, and the settings a test may change at any time."""

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
        events_url: str | list[str] | None = None,
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
        #: Where HTTP-mode deliveries go (each app instance's ``/slack/events``): one URL, or a list
        #: of them, used in turn (round-robin) unless a delivery names its ``url=``.
        self.events_urls: list[str] = (
            [] if events_url is None else [events_url] if isinstance(events_url, str) else list(events_url)
        )
        self._next_url = 0
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
        self.agent = AgentConfig()

        self.calls: list[Any] = []  # ApiCall, see web_api
        self.rate_limited_count: Counter[str] = Counter()
        self.deliveries: list[Delivery] = []
        self.responses: list[ResponseUrlPost] = []
        self.file_downloads: list[FileDownload] = []
        # The agent surface (see agent_api): calls, and what each thread shows now.
        self.status_log: list[StatusCall] = []
        self.status_changes: list[StatusChange] = []
        self._statuses: dict[tuple[str, str], StatusChange] = {}
        self.title_calls: list[TitleCall] = []
        self.thread_titles: dict[tuple[str, str], str] = {}
        self.prompt_calls: list[PromptsCall] = []
        #: DM channel -> the prompts shown at the top of that user's Messages tab.
        self.suggested_prompts: dict[str, PromptsCall] = {}
        #: file id -> an external upload (files.getUploadURLExternal …), see files_api.
        self.uploads: dict[str, Upload] = {}

        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.files: dict[str, FakeFile] = {}
        self.messages: dict[tuple[str, str], Message] = {}
        self._last_us = 0
        self._file_seq = 0
        self.port = 0

        self.add_user(
            self.identity.bot_user_id, self.identity.bot_name, is_bot=True, bot_id=self.identity.bot_id
        )
        self.add_user(DEFAULT_USER, "alice", real_name="Alice Liddell", display_name="Alice")
        self.add_user(OTHER_USER, "bob", real_name="Bob Builder", display_name="")
        self.add_channel(DEFAULT_CHANNEL, "general")
        self.add_channel(OTHER_CHANNEL, "random")
        self.add_channel(PRIVATE_CHANNEL, "secret", kind="private")
        self.add_channel(DEFAULT_DM, kind="im", user=DEFAULT_USER)

    # ------------------------------------------------------------------ addresses

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """Web API root, ending in "/": ``AsyncWebClient(base_url=fs.api_url)`` / ``SLACK_API_URL``."""
        return f"{self.base_url}/api/"

    @property
    def events_url(self) -> str | None:
        """The first HTTP-mode target (kept for tests written when there was only one)."""
        return self.events_urls[0] if self.events_urls else None

    @events_url.setter
    def events_url(self, url: str | None) -> None:
        self.events_urls = [] if url is None else [url]

    def next_events_url(self) -> str:
        """The next instance's URL, round-robin over :attr:`events_urls`."""
        if not self.events_urls:
            raise ValueError("HTTP delivery needs url= or fs.events_url / fs.events_urls")
        url = self.events_urls[self._next_url % len(self.events_urls)]
        self._next_url += 1
        return url

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

    def dm_with(self, user: str) -> Channel:
        """The bot's DM with ``user`` (its Messages tab), created on first use."""
        for channel in self.channels.values():
            if channel.is_dm and channel.user == user:
                return channel
        return self.add_channel(f"D0{user[-8:]}", kind="im", user=user)

    def new_file_id(self) -> str:
        self._file_seq += 1
        return f"F0FILE{self._file_seq:04d}"

    def store_file(self, f: FakeFile) -> dict[str, Any]:
        self.files[f.id] = f
        return f.to_api(self.identity.team_id)

    def file_urls(self, fid: str, name: str) -> tuple[str, str]:
        """``url_private`` and ``url_private_download`` of a file, served by the fake."""
        base = f"{self.base_url}/files-pri/{self.identity.team_id}-{fid}"
        return f"{base}/{name}", f"{base}/download/{name}"

    def add_file(
        self,
        content: bytes,
        name: str = "document.pdf",
        *,
        mimetype: str = "application/pdf",
        filetype: str | None = None,
        user: str = DEFAULT_USER,
        title: str = "",
        **extra: Any,
    ) -> dict[str, Any]:
        """Register a file; returns its API object (use it in ``files=[...]`` of events).

        ``extra`` adds fields to the file object as Slack would send them (``subtype``,
        ``duration_ms``, ``transcription``…; see :meth:`~tests.fakes.slack.acting.Acting.audio_clip`).
        """
        fid = self.new_file_id()
        url, download = self.file_urls(fid, name)
        f = FakeFile(
            id=fid,
            name=name,
            mimetype=mimetype,
            filetype=filetype or (name.rsplit(".", 1)[-1].lower() if "." in name else "binary"),
            content=content,
            user=user,
            url_private=url,
            url_private_download=download,
            title=title,
            extra=dict(extra),
        )
        return self.store_file(f)

    def file_bytes(self, file_id: str) -> bytes:
        """The stored bytes of a file (an upload, or one a user shared), byte-exact."""
        return self.files[file_id].content

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
            for m in list(self.messages.values())
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

    # ------------------------------------------------------------------ thread status

    def change_status(self, change: StatusChange) -> None:
        key = (change.channel, change.thread_ts)
        self._expire_status(key)
        self.status_changes.append(change)
        if change.status:
            self._statuses[key] = change
        else:
            self._statuses.pop(key, None)

    def _expire_status(self, key: tuple[str, str]) -> None:
        current = self._statuses.get(key)
        if current is None:
            return
        end = current.t + self.agent.status_timeout
        if self.now() >= end:
            del self._statuses[key]
            self.status_changes.append(StatusChange(end, *key, "", (), "timeout"))

    def bot_replied(self, channel: str, thread_ts: str | None) -> None:
        """The app posted in a thread: Slack takes the thread's status away."""
        key = (channel, thread_ts or "")
        self._expire_status(key)
        if key in self._statuses:
            self.change_status(StatusChange(self.now(), channel, key[1], "", (), "reply"))

    def thread_status(self, channel: str, thread_ts: str) -> StatusChange | None:
        """The status line a thread shows now (None: none)."""
        key = (channel, thread_ts)
        self._expire_status(key)
        return self._statuses.get(key)

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

    def calls_for(self, method: str) -> list[Any]:
        return [c for c in self.calls if c.method == method]
