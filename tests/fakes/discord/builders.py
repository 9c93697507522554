"""Builders of the fake's world: users, guilds, roles, members, channels, threads, DMs.

Created after a client connected, they dispatch GUILD_CREATE / CHANNEL_CREATE / GUILD_MEMBER_ADD /
THREAD_CREATE as Discord would.
"""

from __future__ import annotations

from collections.abc import Iterable

from .core import ApiError, _id, on_loop
from .messages import Messages
from .models import (
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    Channel,
    ChannelType,
    Guild,
    Intent,
    Member,
    MessageFlag,
    Overwrite,
    Role,
    User,
)
from .records import (
    StoredMessage,
)


class Builders(Messages):
    """What a test sets up: the users, guilds and channels the bot sees."""

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
