"""The fake's world: users, guilds, channels, messages, interactions, and the rules Discord applies.

``World`` is synchronous and runs on the fake's event loop. Public builders are wrapped with
:func:`on_loop`, so that a test running the fake in a background thread (``FakeDiscord.in_thread``)
can call them from its own thread safely.
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
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import quote

from .models import (
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    JSON,
    PRIVILEGED_INTENTS,
    AppFlag,
    CallbackRecord,
    CallbackType,
    Channel,
    ChannelType,
    Guild,
    Intent,
    InteractionRecord,
    InteractionType,
    Member,
    MessageFlag,
    MessageType,
    Overwrite,
    Perm,
    RateLimitHit,
    RequestRecord,
    Role,
    SnowflakeFactory,
    StoredAttachment,
    StoredMessage,
    TypingEvent,
    User,
    iso,
)
from .ratelimit import Limits

P = ParamSpec("P")
R = TypeVar("R")
W = TypeVar("W", bound="World")

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

    return wrapper


def _id(obj: int | str | Any) -> int:
    return int(obj) if isinstance(obj, int | str) else int(obj.id)


class World:
    """All the fake's state. ``FakeDiscord`` adds the servers and the async test helpers."""

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

    # ------------------------------------------------------------------ builders

    @on_loop
    def create_user(self, username: str, *, bot: bool = False, global_name: str | None = None) -> User:
        """A user (or another bot with ``bot=True``). Add it to guilds with :meth:`add_member`."""
        user = User(self.ids.next(), username, global_name=global_name or username, bot=bot)
        self.users[user.id] = user
        return user

    @on_loop
    def create_guild(
        self,
        name: str = "Test Guild",
        *,
        owner: User | None = None,
        bot_permissions: int = DEFAULT_BOT_PERMISSIONS,
        everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS,
    ) -> Guild:
        """A guild the bot is in: @everyone, the bot's managed role and the bot as a member."""
        owner = owner or self.create_user(f"{name.lower().replace(' ', '-')}-owner")
        guild = Guild(self.ids.next(), name, owner.id)
        guild.roles[guild.id] = Role(guild.id, guild.id, "@everyone", everyone_permissions)
        bot_role = Role(self.ids.next(), guild.id, self.bot.username, bot_permissions, 1, managed=True)
        bot_role.bot_id = self.bot.id
        guild.roles[bot_role.id] = bot_role
        guild.members[owner.id] = Member(owner, guild.id)
        guild.members[self.bot.id] = Member(self.bot, guild.id, [bot_role.id])
        self.guilds[guild.id] = guild
        self.emit(
            "GUILD_CREATE",
            lambda intents: self.guild_create_payload(guild),
            guild_id=guild.id,
            intent=Intent.GUILDS,
        )
        return guild

    def bot_role(self, guild: Guild | int) -> Role:
        g = self.guilds[_id(guild)]
        return next(r for r in g.roles.values() if r.bot_id == self.bot.id)

    @on_loop
    def create_role(
        self, guild: Guild | int, name: str, permissions: int = 0, *, members: Iterable[User] = ()
    ) -> Role:
        g = self.guilds[_id(guild)]
        role = Role(self.ids.next(), g.id, name, permissions, position=len(g.roles))
        g.roles[role.id] = role
        self.emit(
            "GUILD_ROLE_CREATE",
            {"guild_id": str(g.id), "role": role.payload()},
            guild_id=g.id,
            intent=Intent.GUILDS,
        )
        for user in members:
            self.add_member(g, user, roles=[role])
        return role

    @on_loop
    def add_member(
        self, guild: Guild | int, user: User, *, roles: Iterable[Role | int] = (), nick: str | None = None
    ) -> Member:
        """Add ``user`` to a guild (or add roles to an existing member)."""
        g = self.guilds[_id(guild)]
        role_ids = [_id(r) for r in roles]
        member = g.members.get(user.id)
        if member is not None:
            member.role_ids.extend(r for r in role_ids if r not in member.role_ids)
            return member
        member = g.members[user.id] = Member(user, g.id, role_ids, nick=nick)
        self.emit(
            "GUILD_MEMBER_ADD",
            {**member.payload(), "guild_id": str(g.id)},
            guild_id=g.id,
            intent=Intent.GUILD_MEMBERS,
        )
        return member

    @on_loop
    def create_channel(
        self,
        guild: Guild | int,
        name: str,
        *,
        type: int = ChannelType.GUILD_TEXT,
        parent: Channel | int | None = None,
        topic: str | None = None,
        overwrites: Iterable[Overwrite] = (),
    ) -> Channel:
        """A guild channel (text by default; ``type=4`` for a category)."""
        g = self.guilds[_id(guild)]
        channel = Channel(
            self.ids.next(),
            type,
            name,
            g.id,
            _id(parent) if parent else None,
            position=len(g.channel_ids),
            topic=topic,
            overwrites=list(overwrites),
        )
        self.channels[channel.id] = channel
        g.channel_ids.append(channel.id)
        self.emit("CHANNEL_CREATE", channel.payload(), guild_id=g.id, intent=Intent.GUILDS)
        return channel

    @on_loop
    def create_thread(
        self,
        parent: Channel | int,
        name: str,
        *,
        owner: User | None = None,
        message: StoredMessage | int | None = None,
        type: int = ChannelType.PUBLIC_THREAD,
        auto_archive_duration: int = 1440,
    ) -> Channel:
        """A thread under a text channel, started by ``owner`` (default: the bot; pass a user for theirs).

        From a message, the thread's id is the message's id (as on Discord). Dispatches
        THREAD_CREATE with ``newly_created``.
        """
        parent_ch = self.channels[_id(parent)]
        owner = owner or self.bot
        starter = self.messages[_id(message)] if message is not None else None
        if starter is not None and starter.thread_id is not None:
            raise ApiError(400, 160004, "A thread has already been created for this message")
        thread_id = starter.id if starter is not None else self.ids.next()
        thread = Channel(
            thread_id,
            type,
            name,
            parent_ch.guild_id,
            parent_ch.id,
            owner_id=owner.id,
            auto_archive_duration=auto_archive_duration,
        )
        thread.thread_member_ids.add(owner.id)
        self.channels[thread.id] = thread
        if starter is not None:
            starter.thread_id = thread.id
            starter.flags |= MessageFlag.HAS_THREAD
        self.emit(
            "THREAD_CREATE",
            {**thread.payload(bot_id=self.bot.id), "newly_created": True},
            guild_id=thread.guild_id,
            intent=Intent.GUILDS,
        )
        return thread

    @on_loop
    def create_dm(self, user: User) -> Channel:
        """The DM channel between ``user`` and the bot (created once)."""
        existing = self.dm_by_user.get(user.id)
        if existing is not None:
            return self.channels[existing]
        channel = Channel(self.ids.next(), ChannelType.DM, recipients=[user])
        self.channels[channel.id] = channel
        self.dm_by_user[user.id] = channel.id
        return channel

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

    # ------------------------------------------------------------------ payloads

    def content_visible(self, msg: StoredMessage, intents: int | None) -> bool:
        """Whether the bot may see ``msg``'s content (the MESSAGE_CONTENT rules).

        ``intents=None`` is for REST, where the application's flags decide.
        """
        if msg.guild_id is None or msg.author.id == self.bot.id or self.bot.id in msg.mention_ids:
            return True
        if intents is None:
            return bool(self.app_flags & PRIVILEGED_INTENTS[Intent.MESSAGE_CONTENT])
        return bool(intents & Intent.MESSAGE_CONTENT)

    def message_payload(
        self, msg: StoredMessage, *, gateway: bool = False, intents: int | None = None, nested: bool = False
    ) -> JSON:
        """A message object. Gateway events add ``guild_id`` and ``member`` (and members on mentions)."""
        visible = self.content_visible(msg, intents)
        guild = self.guilds.get(msg.guild_id) if msg.guild_id else None
        mentions: list[JSON] = []
        for uid in msg.mention_ids:
            user = self.users.get(uid)
            if user is None:
                continue
            entry = user.payload()
            if gateway and guild is not None and uid in guild.members:
                entry["member"] = guild.members[uid].payload(with_user=False)
            mentions.append(entry)
        data: JSON = {
            "type": msg.type,
            "content": msg.content if visible else "",
            "mentions": mentions,
            "mention_roles": [str(r) for r in msg.mention_role_ids],
            "attachments": [a.payload() for a in msg.attachments] if visible else [],
            "embeds": msg.embeds if visible else [],
            "timestamp": msg.timestamp,
            "edited_timestamp": msg.edited_timestamp,
            "flags": msg.flags,
            "components": msg.components if visible else [],
            "id": str(msg.id),
            "channel_id": str(msg.channel_id),
            "author": msg.author.payload(),
            "pinned": False,
            "mention_everyone": msg.mention_everyone,
            "tts": False,
        }
        if msg.nonce is not None:
            data["nonce"] = msg.nonce
        if msg.webhook_id is not None:
            data["webhook_id"] = str(msg.webhook_id)
        if msg.application_id is not None:
            data["application_id"] = str(msg.application_id)
        if msg.interaction_metadata is not None:
            data["interaction_metadata"] = msg.interaction_metadata
            if msg.interaction_metadata.get("type") == InteractionType.APPLICATION_COMMAND:
                data["interaction"] = {k: msg.interaction_metadata[k] for k in ("id", "type", "name", "user")}
        if msg.reactions:
            data["reactions"] = [
                {
                    "emoji": {"id": None, "name": emoji},
                    "count": len(users),
                    "me": self.bot.id in users,
                    "count_details": {"burst": 0, "normal": len(users)},
                    "burst_colors": [],
                    "me_burst": False,
                    "burst_me": False,
                    "burst_count": 0,
                }
                for emoji, users in msg.reactions.items()
                if users
            ]
        if msg.thread_id is not None and msg.thread_id in self.channels:
            data["thread"] = self.channels[msg.thread_id].payload(bot_id=self.bot.id)
        if msg.reference is not None:
            data["message_reference"] = msg.reference
            if not nested and msg.type == MessageType.REPLY:
                ref = self.messages.get(int(msg.reference["message_id"]))
                data["referenced_message"] = (
                    None
                    if ref is None or ref.deleted
                    else self.message_payload(ref, gateway=gateway, intents=intents, nested=True)
                )
        if gateway and msg.guild_id is not None:
            data["guild_id"] = str(msg.guild_id)
            member = guild.members.get(msg.author.id) if guild else None
            if member is not None and msg.webhook_id is None:
                data["member"] = member.payload(with_user=False)
        return data

    def guild_create_payload(self, guild: Guild) -> JSON:
        """GUILD_CREATE: like Discord without the presence intent, ``members`` holds only the bot."""
        channels = [self.channels[c] for c in guild.channel_ids]
        threads = [
            c for c in self.channels.values() if c.guild_id == guild.id and c.is_thread and not c.archived
        ]
        general = next((c.id for c in channels if c.type == ChannelType.GUILD_TEXT), None)
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "region": "deprecated",
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "features": [],
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "system_channel_id": str(general) if general else None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "application_id": None,
            "max_members": 25000000,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "nsfw": False,
            "lazy": True,
            "large": len(guild.members) > 250,
            "unavailable": False,
            "member_count": len(guild.members),
            "joined_at": guild.joined_at,
            "roles": [r.payload() for r in guild.roles.values()],
            "emojis": [],
            "stickers": [],
            "channels": [c.payload(include_guild_id=False) for c in channels],
            "threads": [t.payload(bot_id=self.bot.id) for t in threads],
            "members": [guild.members[self.bot.id].payload()],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "embedded_activities": [],
            "activity_instances": [],
            "incidents_data": None,
            "latest_onboarding_question_id": None,
            "home_header": None,
            "hub_type": None,
            "inventory_settings": None,
            "version": int(time.time() * 1000),
        }

    def application_payload(self) -> JSON:
        return {
            "id": str(self.application_id),
            "name": self.bot.username,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "owner": self.app_owner.payload(),
            "team": None,
            "flags": self.app_flags,
            "tags": [],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "approximate_guild_count": len(self.guilds),
            "bot": self.bot.payload(),
            "integration_types_config": {"0": {}},
        }

    # ------------------------------------------------------------------ messages

    def _validate_body(self, body: JSON, *, path: tuple[str | int, ...] = ()) -> None:
        content = body.get("content")
        if content is not None and not isinstance(content, str):
            raise form_error(
                (*path, "content"), "STRING_TYPE_CONVERT", "Could not interpret value as string."
            )
        if content and len(content) > self.limits.content_chars:
            raise form_error(
                (*path, "content"),
                "BASE_TYPE_MAX_LENGTH",
                f"Must be {self.limits.content_chars} or fewer in length.",
            )
        embeds = body.get("embeds") or []
        if len(embeds) > 10:
            raise form_error((*path, "embeds"), "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        total = 0
        for i, embed in enumerate(embeds):
            description = embed.get("description") or ""
            if len(description) > self.limits.embed_description_chars:
                raise form_error(
                    (*path, "embeds", i, "description"),
                    "BASE_TYPE_MAX_LENGTH",
                    f"Must be {self.limits.embed_description_chars} or fewer in length.",
                )
            if len(embed.get("title") or "") > 256:
                raise form_error(
                    (*path, "embeds", i, "title"), "BASE_TYPE_MAX_LENGTH", "Must be 256 or fewer in length."
                )
            total += len(description) + len(embed.get("title") or "")
            total += sum(len(f.get("name", "")) + len(f.get("value", "")) for f in embed.get("fields") or [])
            total += len((embed.get("footer") or {}).get("text", "")) + len(
                (embed.get("author") or {}).get("name", "")
            )
        if total > self.limits.embeds_total_chars:
            raise form_error(
                (*path, "embeds"), "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
            )
        components = body.get("components") or []
        flags = int(body.get("flags") or 0)
        if not flags & MessageFlag.IS_COMPONENTS_V2:
            if len(components) > 5:
                raise form_error(
                    (*path, "components"), "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."
                )
            for r, row in enumerate(components):
                children = row.get("components") or []
                if row.get("type") != 1 or not 1 <= len(children) <= 5:
                    raise form_error(
                        (*path, "components", r),
                        "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                        "An action row must contain between 1 and 5 components",
                    )
                for c, child in enumerate(children):
                    if len(str(child.get("custom_id", ""))) > 100:
                        raise form_error(
                            (*path, "components", r, "components", c, "custom_id"),
                            "BASE_TYPE_MAX_LENGTH",
                            "Must be 100 or fewer in length.",
                        )
                    if len(str(child.get("label", ""))) > 80:
                        raise form_error(
                            (*path, "components", r, "components", c, "label"),
                            "BASE_TYPE_MAX_LENGTH",
                            "Must be 80 or fewer in length.",
                        )

    def _mentions(self, content: str, guild_id: int | None) -> tuple[list[int], list[int], bool]:
        users = [int(u) for u in USER_MENTION.findall(content) if int(u) in self.users]
        roles: list[int] = []
        if guild_id is not None:
            guild = self.guilds[guild_id]
            roles = [int(r) for r in ROLE_MENTION.findall(content) if int(r) in guild.roles]
        return (
            list(dict.fromkeys(users)),
            list(dict.fromkeys(roles)),
            ("@everyone" in content or "@here" in content),
        )

    def _attachments_from(
        self,
        channel_id: int,
        specs: list[JSON],
        files: dict[int, tuple[str, bytes, str | None]],
        keep: Iterable[StoredAttachment] = (),
    ) -> list[StoredAttachment]:
        kept = {a.id: a for a in keep}
        result: list[StoredAttachment] = []
        for i, spec in enumerate(specs):
            spec_id = spec.get("id", i)
            if isinstance(spec_id, str) and spec_id.isdigit() and int(spec_id) in kept:
                result.append(kept[int(spec_id)])
                continue
            index = int(spec_id)
            if index in kept:
                result.append(kept[index])
                continue
            if index not in files:
                raise form_error(("attachments", i), "ATTACHMENT_NOT_FOUND", "Attachment data not found")
            name, data, ctype = files.pop(index)
            att = self.add_file(spec.get("filename") or name, data, ctype, channel_id=channel_id)
            att.description = spec.get("description")
            result.append(att)
        for _index, (name, data, ctype) in sorted(files.items()):
            result.append(self.add_file(name, data, ctype, channel_id=channel_id))
        if sum(len(a.data) for a in result if a.id not in kept) > self.limits.upload_bytes:
            raise ApiError(413, 40005, "Request entity too large")
        return result

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

    def store_message(
        self,
        channel: Channel,
        author: User,
        body: JSON,
        files: dict[int, tuple[str, bytes, str | None]] | None = None,
        *,
        type: int | None = None,
        webhook_id: int | None = None,
        interaction_metadata: JSON | None = None,
        extra_mentions: Iterable[int] = (),
        mention_author: bool = True,
        ready_attachments: Sequence[StoredAttachment] = (),
    ) -> StoredMessage:
        """Validate and store a new message, then dispatch MESSAGE_CREATE (not for ephemeral ones)."""
        self._validate_body(body)
        files = dict(files or {})
        content = body.get("content") or ""
        if not (
            content
            or body.get("embeds")
            or body.get("components")
            or files
            or body.get("sticker_ids")
            or body.get("poll")
            or body.get("attachments")
        ):
            raise ApiError(400, 50006, "Cannot send an empty message")
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce"):
            for existing in self.messages.values():
                if (
                    existing.nonce == str(nonce)
                    and existing.author.id == author.id
                    and existing.channel_id == channel.id
                    and time.monotonic() - existing.created_t < 120
                ):
                    return existing
        reference = body.get("message_reference")
        ref_msg: StoredMessage | None = None
        if reference and reference.get("message_id"):
            ref_msg = self.messages.get(int(reference["message_id"]))
            if ref_msg is None or ref_msg.deleted:
                if reference.get("fail_if_not_exists", True):
                    raise form_error(
                        ("message_reference",), "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                    )
                reference = None
            else:
                reference = {"type": 0, "channel_id": str(ref_msg.channel_id), "message_id": str(ref_msg.id)}
                if ref_msg.guild_id is not None:
                    reference["guild_id"] = str(ref_msg.guild_id)
        else:
            reference = None
        guild_id = channel.guild_id
        user_ids, role_ids, everyone = self._mentions(content, guild_id)
        user_ids.extend(u for u in extra_mentions if u not in user_ids)
        allowed = body.get("allowed_mentions")
        replied_user = mention_author if allowed is None else bool(allowed.get("replied_user", False))
        if ref_msg is not None and replied_user and ref_msg.author.id not in user_ids:
            user_ids.append(ref_msg.author.id)
        msg = StoredMessage(
            id=self.ids.next(),
            channel_id=channel.id,
            guild_id=guild_id,
            author=author,
            content=content,
            type=type if type is not None else (MessageType.REPLY if reference else MessageType.DEFAULT),
            flags=int(body.get("flags") or 0),
            components=list(body.get("components") or []),
            embeds=list(body.get("embeds") or []),
            mention_ids=user_ids,
            mention_role_ids=role_ids,
            mention_everyone=everyone,
            reference=reference,
            allowed_mentions=allowed,
            nonce=str(nonce) if nonce is not None else None,
            webhook_id=webhook_id,
            application_id=self.application_id if webhook_id is not None else None,
            interaction_metadata=interaction_metadata,
        )
        if ready_attachments:
            msg.attachments = list(ready_attachments)
        else:
            msg.attachments = self._attachments_from(channel.id, list(body.get("attachments") or []), files)
        msg.snapshot("create")
        self.messages[msg.id] = msg
        if not msg.ephemeral:
            channel.last_message_id = msg.id
            if channel.is_thread:
                channel.message_count += 1
                channel.total_message_sent += 1
            self._dispatch_message("MESSAGE_CREATE", msg)
        self._notify()
        return msg

    def update_message(
        self, msg: StoredMessage, body: JSON, files: dict[int, tuple[str, bytes, str | None]] | None = None
    ) -> StoredMessage:
        """Apply a PATCH: present keys replace, then record the new state and dispatch MESSAGE_UPDATE."""
        self._validate_body(body)
        content = msg.content
        if "content" in body:
            content = body["content"] or ""
        embeds = list(body["embeds"] or []) if "embeds" in body else msg.embeds
        components = list(body["components"] or []) if "components" in body else msg.components
        files = dict(files or {})
        attachments = msg.attachments
        if "attachments" in body or files:
            specs = list(body.get("attachments") or [])
            if "attachments" not in body:
                specs = [{"id": a.id} for a in msg.attachments]
            attachments = self._attachments_from(msg.channel_id, specs, files, keep=msg.attachments)
        if not (content or embeds or components or attachments):
            raise ApiError(400, 50006, "Cannot send an empty message")
        msg.content = content
        msg.embeds = embeds
        msg.components = components
        msg.attachments = attachments
        if "flags" in body and body["flags"] is not None:
            keep = msg.flags & ~4  # only SUPPRESS_EMBEDS may change
            msg.flags = keep | (int(body["flags"]) & 4)
        if "allowed_mentions" in body:
            msg.allowed_mentions = body["allowed_mentions"]
        msg.mention_ids, msg.mention_role_ids, msg.mention_everyone = self._mentions(content, msg.guild_id)
        msg.edited_timestamp = iso()
        msg.snapshot("edit")
        if not msg.ephemeral:
            self._dispatch_message("MESSAGE_UPDATE", msg)
        self._notify()
        return msg

    def remove_message(self, msg: StoredMessage) -> None:
        msg.deleted = True
        msg.deleted_t = time.monotonic()
        if not msg.ephemeral:
            data: JSON = {"id": str(msg.id), "channel_id": str(msg.channel_id)}
            if msg.guild_id is not None:
                data["guild_id"] = str(msg.guild_id)
            intent = Intent.GUILD_MESSAGES if msg.guild_id else Intent.DIRECT_MESSAGES
            self.emit("MESSAGE_DELETE", data, guild_id=msg.guild_id, intent=intent)
        self._notify()

    def _dispatch_message(self, event: str, msg: StoredMessage) -> None:
        intent = Intent.GUILD_MESSAGES if msg.guild_id is not None else Intent.DIRECT_MESSAGES
        self.emit(
            event,
            lambda intents: self.message_payload(msg, gateway=True, intents=intents),
            guild_id=msg.guild_id,
            intent=intent,
        )

    # ------------------------------------------------------------------ interactions

    def member_payload_with_permissions(self, user: User, channel: Channel) -> JSON:
        guild = self.guilds[channel.guild_id or 0]
        member = guild.members.get(user.id) or self.add_member(guild, user)
        return {**member.payload(), "permissions": str(self.permissions_for(user.id, channel))}

    def start_interaction(
        self, type: int, data: JSON, user: User, channel: Channel, source: StoredMessage | None = None
    ) -> InteractionRecord:
        """Create an interaction and dispatch INTERACTION_CREATE (delivered whatever the intents)."""
        rec = InteractionRecord(
            self.ids.next(),
            f"aW50ZXJhY3Rpb246{secrets.token_urlsafe(48)}",
            type,
            data,
            user,
            channel.id,
            channel.guild_id,
            source_message_id=source.id if source else None,
        )
        payload: JSON = {
            "id": str(rec.id),
            "application_id": str(self.application_id),
            "type": type,
            "data": data,
            "channel_id": str(channel.id),
            "channel": channel.payload(bot_id=self.bot.id),
            "token": rec.token,
            "version": 1,
            "app_permissions": str(self.permissions_for(self.bot.id, channel)),
            "locale": "en-US",
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": self.limits.upload_bytes,
        }
        if channel.guild_id is not None:
            payload.update(
                guild_id=str(channel.guild_id),
                guild={"id": str(channel.guild_id), "locale": "en-US", "features": []},
                guild_locale="en-US",
                member=self.member_payload_with_permissions(user, channel),
                authorizing_integration_owners={"0": str(channel.guild_id)},
                context=0,
            )
        else:
            payload.update(user=user.payload(), authorizing_integration_owners={"0": "0"}, context=1)
        if source is not None:
            payload["message"] = self.message_payload(source)
        rec.payload = payload
        self.interactions[rec.id] = rec
        self._interactions_by_token[rec.token] = rec
        self.emit("INTERACTION_CREATE", payload, guild_id=channel.guild_id, intent=0)
        return rec

    def _interaction_metadata(self, rec: InteractionRecord) -> JSON:
        meta: JSON = {
            "id": str(rec.id),
            "type": rec.type,
            "user": rec.user.payload(),
            "authorizing_integration_owners": rec.payload.get("authorizing_integration_owners", {}),
        }
        if rec.type == InteractionType.APPLICATION_COMMAND:
            meta.update(name=rec.data.get("name", ""), command_type=rec.data.get("type", 1))
        if rec.source_message_id is not None:
            meta["interacted_message_id"] = str(rec.source_message_id)
        return meta

    def interaction_callback(
        self,
        interaction_id: int,
        token: str,
        body: JSON,
        files: dict[int, tuple[str, bytes, str | None]],
        with_response: bool,
    ) -> JSON | None:
        rec = self.interactions.get(interaction_id)
        if rec is None or rec.token != token:
            raise unknown("interaction", 10062)
        if rec.acked:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        if time.monotonic() - rec.created_t > self.limits.interaction_ack_seconds:
            raise unknown("interaction", 10062)
        ctype = int(body.get("type", 0))
        data = body.get("data") or {}
        channel = self.channels[rec.channel_id]
        message: StoredMessage | None = None
        if ctype in (CallbackType.CHANNEL_MESSAGE, CallbackType.DEFERRED_CHANNEL_MESSAGE):
            if ctype == CallbackType.DEFERRED_CHANNEL_MESSAGE:
                data = {
                    "flags": (int(data.get("flags") or 0) & MessageFlag.EPHEMERAL) | MessageFlag.LOADING,
                    "content": "",
                }
            message = self._interaction_message(
                rec, channel, data, files, MessageType.CHAT_INPUT_COMMAND if rec.type == 2 else 0
            )
            rec.original_message_id = message.id
        elif ctype in (CallbackType.DEFERRED_UPDATE_MESSAGE, CallbackType.UPDATE_MESSAGE):
            if rec.source_message_id is None:
                raise form_error(
                    ("type",), "INTERACTION_RESPONSE_TYPE_INVALID", "Invalid interaction response type"
                )
            rec.original_message_id = rec.source_message_id
            if ctype == CallbackType.UPDATE_MESSAGE:
                message = self.update_message(self.messages[rec.source_message_id], data, files)
        elif ctype == CallbackType.AUTOCOMPLETE_RESULT:
            if rec.type != InteractionType.AUTOCOMPLETE:
                raise form_error(
                    ("type",), "INTERACTION_RESPONSE_TYPE_INVALID", "Invalid interaction response type"
                )
        elif ctype not in (CallbackType.PONG, CallbackType.MODAL):
            raise form_error(("type",), "BASE_TYPE_CHOICES", "Value must be one of {1, 4, 5, 6, 7, 8, 9}.")
        rec.responses.append(CallbackRecord(time.monotonic(), "callback", ctype, body))
        self._notify()
        if not with_response:
            return None
        info: JSON = {"id": str(rec.id), "type": rec.type}
        resource: JSON = {"type": ctype}
        if message is not None:
            info.update(
                response_message_id=str(message.id),
                response_message_loading=bool(message.flags & MessageFlag.LOADING),
                response_message_ephemeral=message.ephemeral,
            )
            resource["message"] = self.message_payload(message)
        return {"interaction": info, "resource": resource}

    def _interaction_message(
        self,
        rec: InteractionRecord,
        channel: Channel,
        data: JSON,
        files: dict[int, tuple[str, bytes, str | None]],
        type: int,
    ) -> StoredMessage:
        body = dict(data)
        if body.get("flags") and int(body["flags"]) & MessageFlag.LOADING:
            # a "thinking" placeholder has no content yet; skip the empty-message rule
            msg = StoredMessage(
                self.ids.next(),
                channel.id,
                channel.guild_id,
                self.bot,
                type=type,
                flags=int(body["flags"]),
                webhook_id=self.application_id,
                application_id=self.application_id,
                interaction_metadata=self._interaction_metadata(rec),
            )
            msg.snapshot("create")
            self.messages[msg.id] = msg
            if not msg.ephemeral:
                channel.last_message_id = msg.id
                self._dispatch_message("MESSAGE_CREATE", msg)
            return msg
        return self.store_message(
            channel,
            self.bot,
            body,
            files,
            type=type,
            webhook_id=self.application_id,
            interaction_metadata=self._interaction_metadata(rec),
        )

    def interaction_by_token(self, application_id: int, token: str) -> InteractionRecord:
        rec = self._interactions_by_token.get(token)
        if rec is None or application_id != self.application_id:
            raise unknown("Webhook", 10015)
        if time.monotonic() - rec.created_t > self.limits.interaction_token_seconds:
            raise ApiError(401, 50027, "Invalid Webhook Token")
        return rec

    def webhook_message(self, rec: InteractionRecord, message_ref: str) -> StoredMessage:
        if message_ref == "@original":
            if rec.original_message_id is None:
                raise unknown("Webhook", 10015)
            mid = rec.original_message_id
        else:
            mid = int(message_ref)
            if mid != rec.original_message_id and mid not in rec.followup_message_ids:
                raise unknown("Message", 10008)
        msg = self.messages.get(mid)
        if msg is None or msg.deleted:
            raise unknown("Message", 10008)
        return msg

    def webhook_execute(
        self, rec: InteractionRecord, body: JSON, files: dict[int, tuple[str, bytes, str | None]]
    ) -> StoredMessage:
        """A follow-up. After a "thinking" defer, the first one fills the placeholder (as on Discord)."""
        if not rec.acked:
            raise unknown("Webhook", 10015)
        original = self.messages.get(rec.original_message_id or 0)
        if original is not None and original.flags & MessageFlag.LOADING and not original.deleted:
            msg = self.webhook_edit(rec, original, body, files)
        else:
            channel = self.channels[rec.channel_id]
            msg = self.store_message(
                channel,
                self.bot,
                body,
                files,
                webhook_id=self.application_id,
                interaction_metadata=self._interaction_metadata(rec),
            )
            rec.followup_message_ids.append(msg.id)
        rec.responses.append(CallbackRecord(time.monotonic(), "followup", None, body))
        return msg

    def webhook_edit(
        self,
        rec: InteractionRecord,
        msg: StoredMessage,
        body: JSON,
        files: dict[int, tuple[str, bytes, str | None]],
    ) -> StoredMessage:
        was_loading = bool(msg.flags & MessageFlag.LOADING)
        if was_loading:
            msg.flags &= ~MessageFlag.LOADING
        try:
            self.update_message(msg, body, files)
        except ApiError:
            if was_loading:
                msg.flags |= MessageFlag.LOADING
            raise
        return msg

    # ------------------------------------------------------------------ commands

    def overwrite_commands(self, guild_id: int | None, payload: list[JSON]) -> list[JSON]:
        previous = {
            (c["name"], c.get("type", 1)): c for c in self.commands.values() if c.get("_guild") == guild_id
        }
        for stale in previous.values():
            self.commands.pop(int(stale["id"]))
        result = []
        for spec in payload:
            ctype = spec.get("type", 1)
            old = previous.get((spec["name"], ctype))
            cmd_id = int(old["id"]) if old else self.ids.next()
            cmd: JSON = {
                "id": str(cmd_id),
                "application_id": str(self.application_id),
                "version": str(self.ids.next()),
                "default_member_permissions": spec.get("default_member_permissions"),
                "type": ctype,
                "name": spec["name"],
                "name_localizations": spec.get("name_localizations"),
                "description": spec.get("description", ""),
                "description_localizations": spec.get("description_localizations"),
                "dm_permission": spec.get("dm_permission", True),
                "contexts": spec.get("contexts"),
                "integration_types": spec.get("integration_types", [0]),
                "nsfw": spec.get("nsfw", False),
            }
            if spec.get("options"):
                cmd["options"] = spec["options"]
            if guild_id is not None:
                cmd["guild_id"] = str(guild_id)
            self.commands[cmd_id] = {**cmd, "_guild": guild_id}
            result.append(cmd)
        self._notify()
        return result

    def list_commands(self, guild_id: int | None) -> list[JSON]:
        return [
            {k: v for k, v in c.items() if k != "_guild"}
            for c in self.commands.values()
            if c.get("_guild") == guild_id
        ]

    # ------------------------------------------------------------------ timelines

    def channel_messages(
        self, channel: Channel | int, *, include_deleted: bool = False
    ) -> list[StoredMessage]:
        """Messages of a channel, oldest first (ephemeral ones included, flagged ``ephemeral``)."""
        cid = _id(channel)
        return sorted(
            (m for m in self.messages.values() if m.channel_id == cid and (include_deleted or not m.deleted)),
            key=lambda m: m.id,
        )

    def visible_text(self, channel: Channel | int) -> str:
        """What everybody sees now: the current content of live, non-ephemeral messages, one per line."""
        return "\n".join(m.content for m in self.channel_messages(channel) if not m.ephemeral)

    def bot_messages(self, channel: Channel | int) -> list[StoredMessage]:
        return [m for m in self.channel_messages(channel) if m.author.id == self.bot.id]

    def pinged_user_ids(self, msg: StoredMessage) -> list[int]:
        """Users the message notifies, after ``allowed_mentions`` (what users experience as a ping)."""
        allowed = msg.allowed_mentions
        if allowed is None:
            return list(msg.mention_ids)
        parse = allowed.get("parse") or []
        explicit = {int(u) for u in allowed.get("users") or []}
        ref_author = None
        if msg.reference is not None:
            ref = self.messages.get(int(msg.reference["message_id"]))
            ref_author = ref.author.id if ref else None
        result = []
        for uid in msg.mention_ids:
            if uid == ref_author and allowed.get("replied_user"):
                result.append(uid)
            elif "users" in parse or uid in explicit:
                result.append(uid)
        return result
