"""The bottom of the fake's world: its state, errors shaped like Discord's, permissions, lookups.

Everything here is synchronous and runs on the fake's event loop; public builders are wrapped with
:func:`on_loop`, so that a test running the fake in a background thread
(``FakeDiscord.in_thread``) can call them from its own thread safely. The layers above add
payloads (:mod:`.payloads`), messages (:mod:`.messages`), builders (:mod:`.builders`) and
interactions (:mod:`.interactions`); :class:`~tests.fakes.discord.state.World` is the whole.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import quote

from .models import (
    JSON,
    AppFlag,
    Channel,
    Guild,
    Perm,
    SnowflakeFactory,
    User,
)
from .ratelimit import Limits
from .records import (
    InteractionRecord,
    RateLimitHit,
    RequestRecord,
    StoredAttachment,
    StoredMessage,
    TypingEvent,
)

P = ParamSpec("P")
R = TypeVar("R")
W = TypeVar("W", bound="WorldBase")

USER_MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")

# event -> data, or a function of the receiving session's intents returning data
EventData = JSON | Callable[[int], JSON]
Dispatcher = Callable[[str, EventData, "int | None", int], None]


class ApiError(Exception):
    """An error response, shaped like Discord's: ``{"message", "code"[, "errors"]}``."""

    def __init__(self, status: int, code: int, message: str, errors: JSON | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> JSON:
        data: JSON = {"message": self.message, "code": self.code}
        if self.errors is not None:
            data["errors"] = self.errors
        return data


def form_error(path: Sequence[str | int], code: str, message: str) -> ApiError:
    """50035 Invalid Form Body with Discord's nested ``errors`` tree."""
    tree: JSON = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(path):
        tree = {str(part): tree}
    return ApiError(400, 50035, "Invalid Form Body", tree)


def unknown(what: str, code: int) -> ApiError:
    return ApiError(404, code, f"Unknown {what}")


def on_loop(fn: Callable[Concatenate[W, P], R]) -> Callable[Concatenate[W, P], R]:
    """Run a World method on the fake's loop thread when called from another thread."""

    @functools.wraps(fn)
    def wrapper(self: W, *args: P.args, **kwargs: P.kwargs) -> R:
        loop = self._loop
        if loop is None or self._loop_thread == threading.get_ident() or not loop.is_running():
            return fn(self, *args, **kwargs)
        future: concurrent.futures.Future[R] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn(self, *args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result(timeout=30)

    return wrapper  # type: ignore[return-value]  # functools.wraps hides the ParamSpec from mypy


def _id(obj: int | str | Any) -> int:
    return int(obj) if isinstance(obj, int | str) else int(obj.id)


class WorldBase:
    """All the fake's state, and the rules every layer needs."""

    def __init__(
        self,
        *,
        token: str,
        bot_name: str,
        limits: Limits | None,
        message_content_intent: bool,
        members_intent: bool,
        presence_intent: bool,
        shards: int,
    ) -> None:
        self.token = token
        self.limits = limits or Limits()
        self.shards = shards
        self.ids = SnowflakeFactory()
        self.application_id = self.ids.next()
        self.bot = User(self.application_id, bot_name, bot=True, discriminator="0001")
        self.app_flags = AppFlag.APPLICATION_COMMAND_BADGE
        if message_content_intent:
            self.app_flags |= AppFlag.GATEWAY_MESSAGE_CONTENT
        if members_intent:
            self.app_flags |= AppFlag.GATEWAY_GUILD_MEMBERS
        if presence_intent:
            self.app_flags |= AppFlag.GATEWAY_PRESENCE
        self.app_owner = User(self.ids.next(), "app-owner")

        self.users: dict[int, User] = {self.bot.id: self.bot, self.app_owner.id: self.app_owner}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.messages: dict[int, StoredMessage] = {}
        self.attachments: dict[int, StoredAttachment] = {}
        self.commands: dict[int, JSON] = {}
        self.interactions: dict[int, InteractionRecord] = {}
        self._interactions_by_token: dict[str, InteractionRecord] = {}
        self.dm_by_user: dict[int, int] = {}

        self.typing_log: list[TypingEvent] = []
        self.requests: list[RequestRecord] = []
        self.rate_limit_log: list[RateLimitHit] = []
        self.rate_limited: Counter[str] = Counter()
        self.invalid_request_count = 0
        self.attachment_downloads: Counter[int] = Counter()
        self.presence: JSON | None = None
        self.server_errors: list[str] = []  # tracebacks of bugs in the fake itself (should stay empty)

        self.http_root = ""  # set when the server starts: http://127.0.0.1:PORT
        self.api_url = ""  # http://127.0.0.1:PORT/api/v10
        self.gateway_url = ""  # ws://127.0.0.1:PORT/gateway (from /gateway/bot; set as DEFAULT_GATEWAY)
        self.resume_gateway_url = ""  # ws://127.0.0.1:PORT/gateway/resume (READY's resume_gateway_url)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._changed: asyncio.Event | None = None
        self._dispatcher: Dispatcher | None = None

    # ------------------------------------------------------------------ plumbing

    @property
    def rate_limited_count(self) -> int:
        """Every 429 the fake has sent (per-route and global)."""
        return sum(self.rate_limited.values())

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    def emit(self, event: str, data: EventData, *, guild_id: int | None, intent: int) -> None:
        """Dispatch a gateway event to every live session allowed to see it."""
        if self._dispatcher is not None:
            self._dispatcher(event, data, guild_id, intent)
        self._notify()

    def _require_root(self) -> str:
        if not self.http_root:
            raise RuntimeError("start the fake first (async with FakeDiscord() / FakeDiscord.in_thread())")
        return self.http_root

    @on_loop
    def add_file(
        self, filename: str, data: bytes, content_type: str | None = None, *, channel_id: int = 0
    ) -> StoredAttachment:
        """Register bytes served at an ``http://127.0.0.1:PORT/attachments/...`` URL."""
        root = self._require_root()
        att_id = self.ids.next()
        now = int(time.time())
        url = (
            f"{root}/attachments/{channel_id}/{att_id}/{quote(filename)}"
            f"?ex={now + 86400:x}&is={now:x}&hm={secrets.token_hex(32)}&"
        )
        att = StoredAttachment(att_id, filename, data, url, content_type)
        self.attachments[att_id] = att
        return att

    # ------------------------------------------------------------------ permissions

    def permissions_for(self, user_id: int, channel: Channel) -> int:
        """Discord's permission computation (base roles, then @everyone/role/member overwrites)."""
        if channel.is_dm or channel.guild_id is None:
            return Perm.ALL & ~Perm.ADMINISTRATOR
        guild = self.guilds[channel.guild_id]
        if guild.owner_id == user_id:
            return Perm.ALL
        member = guild.members.get(user_id)
        role_ids = member.role_ids if member else []
        perms = guild.everyone.permissions
        for rid in role_ids:
            role = guild.roles.get(rid)
            if role is not None:
                perms |= role.permissions
        if perms & Perm.ADMINISTRATOR:
            return Perm.ALL
        target = self.channels[channel.parent_id] if channel.is_thread and channel.parent_id else channel
        overwrites = {(o.type, o.id): o for o in target.overwrites}
        everyone = overwrites.get((0, guild.id))
        if everyone is not None:
            perms = (perms & ~everyone.deny) | everyone.allow
        allow = deny = 0
        for rid in role_ids:
            o = overwrites.get((0, rid))
            if o is not None:
                allow |= o.allow
                deny |= o.deny
        perms = (perms & ~deny) | allow
        own = overwrites.get((1, user_id))
        if own is not None:
            perms = (perms & ~own.deny) | own.allow
        if not perms & Perm.VIEW_CHANNEL:
            return 0
        return perms

    def require(self, channel: Channel, needed: int) -> None:
        perms = self.permissions_for(self.bot.id, channel)
        if not perms & Perm.VIEW_CHANNEL:
            raise ApiError(403, 50001, "Missing Access")
        if perms & needed != needed:
            raise ApiError(403, 50013, "Missing Permissions")

    # ------------------------------------------------------------------ lookups

    def channel(self, channel_id: int) -> Channel:
        channel = self.channels.get(channel_id)
        if channel is None:
            raise unknown("Channel", 10003)
        return channel

    def message(self, channel_id: int, message_id: int) -> StoredMessage:
        msg = self.messages.get(message_id)
        if msg is None or msg.deleted or msg.channel_id != channel_id or msg.ephemeral:
            raise unknown("Message", 10008)
        return msg
