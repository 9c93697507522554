"""Discord messages → :class:`~bot.types.IncomingMessage`, and when Parley answers.

- A mention in a server channel opens a public thread on that message, named from the first
  words of the question, and the answer streams there (conversation key: guild, channel, thread).
  Where a thread cannot be opened (no permission, a channel without threads) the answer is
  posted in the channel as a reply to the question, and that question is its own conversation.
- In a thread Parley has answered in, later messages are answered without a mention (unless
  ``PARLEY_REQUIRE_MENTION``). Mentioned in a thread (or forum post) it has not answered in, it
  reads the thread's recent messages first; in reply to a message, that message and the chain
  of replies above it.
- DMs are answered directly; each DM is one ongoing conversation (``/reset`` starts over).
- Its own messages, system messages and other bots (unless in ``PARLEY_ALLOW_BOTS``) are
  ignored; the access policy applies to everything else.

Exactly once: the event id is the message id (snowflakes are unique), which the core claims in
the database, so a gateway RESUME that replays the message cannot answer it twice. A replay in
this process is dropped before any work is done; one after a restart finds the thread already
open on the message and uses it, and the core then refuses the duplicate.
"""

from __future__ import annotations

import logging
import time
from typing import Literal

import discord

from adapters.discord.history import author_of, merge, read_thread, reply_chain
from adapters.discord.hub import Hub
from adapters.discord.surface import DiscordSurface
from adapters.discord.text import message_text, self_role_id, thread_name
from bot.queue import TurnQueue
from bot.types import ContextMessage, ConversationKey, IncomingMessage

log = logging.getLogger("parley.discord")

THREAD_EXISTS = 160004  # "A thread has already been created for this message"
ARCHIVE_MINUTES: Literal[1440] = 1440  # a quiet thread leaves the channel's list after a day
# A bare mention still needs a question for the model.
BARE_WITH_CONTEXT = "Please respond to the message above."
BARE = "Hello!"
_SPOKEN = frozenset({discord.MessageType.default, discord.MessageType.reply})
_NOT_FOLLOWED_TTL = 30.0  # another instance may start answering in a thread meanwhile
_FOLLOW_CACHE = 10_000


class MessageEvents:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        # thread id → (answered there?, valid until): spares a database query for every message
        # in every thread of a busy server.
        self._followed: dict[int, tuple[bool, float]] = {}
        self._lanes = TurnQueue()
        self.answered = 0
        self.ignored = 0
        self.unanswered = 0  # arrived after shutdown began

    async def on_message(self, message: discord.Message) -> None:
        hub = self.hub
        if message.author.id == hub.me.id or message.type not in _SPOKEN:
            return
        if not hub.accepting:
            self.unanswered += 1
            return
        hub.spawn(self.process(message), f"discord message {message.id}")

    # -- deciding ---------------------------------------------------------------------------------

    def _mentions_me(self, message: discord.Message) -> bool:
        me = self.hub.me
        if any(u.id == me.id for u in message.mentions):
            return True  # includes a reply to Parley's message with the ping left on
        guild = message.guild
        role = guild.self_role if guild is not None else None
        return role is not None and role in message.role_mentions

    def _admits(self, message: discord.Message) -> bool:
        author = message.author
        return self.hub.admits_author(
            author,
            message.channel,
            message.channel.id,
            guild_id=message.guild.id if message.guild is not None else None,
            is_bot=author.bot or message.webhook_id is not None,
        )

    async def _is_followed(self, key: ConversationKey, thread_id: int) -> bool:
        now = time.monotonic()
        cached = self._followed.get(thread_id)
        if cached is not None and (cached[0] or cached[1] > now):
            return cached[0]
        followed = await self.hub.store.conversations.has_reply(key)
        self._remember(thread_id, followed, now)
        return followed

    def _remember(self, thread_id: int, followed: bool, now: float) -> None:
        if len(self._followed) >= _FOLLOW_CACHE:
            self._followed.pop(next(iter(self._followed)))
        self._followed[thread_id] = (followed, now + _NOT_FOLLOWED_TTL)

    # -- answering --------------------------------------------------------------------------------

    async def process(self, message: discord.Message) -> None:
        channel = message.channel
        if isinstance(channel, discord.Thread | discord.DMChannel):
            # One conversation per thread or DM: take its messages in arrival order. The core
            # queues turns in the order they reach it, and the preparation before that (reading
            # context) takes longer for some messages than for others.
            async with self._lanes.turn(channel.id):
                await self._process(message)
        else:
            await self._process(message)  # each mention in a channel starts its own conversation

    async def _process(self, message: discord.Message) -> None:
        hub = self.hub
        settings = hub.settings
        author = message.author
        is_bot = author.bot or message.webhook_id is not None
        if is_bot and str(author.id) not in settings.parley_allow_bots:
            return
        guild = message.guild
        channel = message.channel
        mentioned = guild is None or self._mentions_me(message)

        followed: bool | None = None
        thread: discord.Thread | None = None
        if guild is None:
            if not isinstance(channel, discord.DMChannel):
                return
            key = ConversationKey("discord", "", str(channel.id), "")
        elif isinstance(channel, discord.Thread):
            thread = channel
            key = ConversationKey("discord", str(guild.id), str(channel.parent_id), str(channel.id))
            if not mentioned:
                if settings.parley_require_mention:
                    return
                followed = await self._is_followed(key, channel.id)
                if not followed:
                    return
        elif not mentioned:
            return
        else:
            key = ConversationKey("discord", str(guild.id), str(channel.id), "")  # completed below

        if not self._admits(message):
            self.ignored += 1
            log.info("message %s in %s not admitted by the access policy", message.id, channel.id)
            return
        if not hub.first_sight(message.id):
            return  # a replayed event: the first delivery answers it
        if thread is not None and not self._can_send(message):
            log.warning("cannot answer in thread %s: Parley may not send messages there", thread.id)
            return

        text = message_text(message, hub.me.id, self_role_id(message))
        reference: discord.MessageReference | None = None
        context: list[ContextMessage] = []
        opened: discord.Thread | None = None
        if guild is None:
            target = channel.id
        elif thread is not None:
            if followed is None:
                followed = await self._is_followed(key, thread.id)
            # A thread Parley has not answered in is read whole; in one it follows, the store has
            # every turn unless mentions are required (then the messages between are read, not
            # Parley's own, which are stored).
            earlier: list[ContextMessage] = []
            if not followed or settings.parley_require_mention:
                earlier = await read_thread(hub, thread, before=message, include_own=not followed)
            chain = await reply_chain(hub, message, include_own=not followed)
            context = merge(earlier, chain)
            target = thread.id
        else:
            context = await reply_chain(hub, message, include_own=True)
            opened = await self._open_thread(message, text)
            if opened is not None:
                thread = opened
                key = ConversationKey("discord", key.workspace, key.channel, str(opened.id))
                target = opened.id
                # Parley follows the threads it opens from the start: a quick follow-up must
                # not be taken for chatter in someone else's thread.
                self._remember(opened.id, True, time.monotonic())
            elif self._can_send(message):
                # No thread here: answer in the channel, the question being its own conversation.
                key = ConversationKey("discord", key.workspace, key.channel, str(message.id))
                reference = message.to_reference(fail_if_not_exists=False)
                target = channel.id
            else:
                log.warning("cannot answer in %s: Parley may not send messages there", channel.id)
                return

        attachments = hub.files.attachments(message.attachments)
        if not text and not attachments:
            text = BARE_WITH_CONTEXT if context else BARE
        incoming = IncomingMessage(
            key=key,
            event_id=str(message.id),
            author=author_of(hub, author),
            text=text,
            surface=DiscordSurface(hub, target, reference=reference),
            attachments=attachments,
            context=context,
            platform_message_id=str(message.id),
        )
        if opened is not None:
            # Follow-ups in the new thread queue behind this first question (see process()): its
            # lane is taken before this task yields again after opening the thread.
            async with self._lanes.turn(opened.id):
                result = await hub.service.handle(incoming)
        else:
            result = await hub.service.handle(incoming)
        if result is None:
            return
        self.answered += 1
        if thread is not None:
            self._remember(thread.id, True, time.monotonic())

    async def _open_thread(self, message: discord.Message, question: str) -> discord.Thread | None:
        """A public thread on ``message``; None where Parley cannot open one."""
        channel = message.channel
        guild = message.guild
        if not isinstance(channel, discord.TextChannel) or guild is None:
            return None  # voice/stage text chats have no threads
        if not channel.permissions_for(guild.me).create_public_threads:
            return None  # asking anyway would be a 403, and Discord bans bots that collect those
        try:
            async with self.hub.throttle.slot():
                return await message.create_thread(
                    name=thread_name(question), auto_archive_duration=ARCHIVE_MINUTES
                )
        except discord.HTTPException as exc:
            if exc.code != THREAD_EXISTS:
                log.warning("could not open a thread on %s: %s", message.id, exc)
                return None
        # Someone (or an earlier delivery of this event) opened it already: its id is the message's.
        existing = guild.get_thread(message.id)
        if existing is not None:
            return existing
        try:
            async with self.hub.throttle.slot():
                fetched = await self.hub.client.fetch_channel(message.id)
        except discord.HTTPException:
            return None
        return fetched if isinstance(fetched, discord.Thread) else None

    def _can_send(self, message: discord.Message) -> bool:
        """Whether Parley may post where ``message`` is (asking anyway would collect a 403)."""
        guild = message.guild
        channel = message.channel
        if guild is None:
            return True
        if isinstance(channel, discord.Thread):
            return channel.permissions_for(guild.me).send_messages_in_threads
        if isinstance(channel, discord.abc.GuildChannel):
            return channel.permissions_for(guild.me).send_messages
        return True
