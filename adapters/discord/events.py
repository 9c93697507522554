"""Discord messages → :class:`~bot.types.IncomingMessage`.

Whether Parley answers is :mod:`bot.routing`'s decision (a :class:`~bot.routing.Seen` for each
message); this module says where a message was written and where its answer goes:

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

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import discord

from adapters.discord.files import topic
from adapters.discord.history import author_of, merge, read_thread, reply_chain
from adapters.discord.hub import Hub
from adapters.discord.surface import DiscordSurface
from adapters.discord.text import message_text, self_role_id, thread_name
from bot.queue import TurnQueue
from bot.routing import Reason, Route, Seen
from bot.types import ContextMessage, ConversationKey, IncomingMessage

log = logging.getLogger("parley.discord")

T = TypeVar("T")
InLine = Callable[[], None]

THREAD_EXISTS = 160004  # "A thread has already been created for this message"
ARCHIVE_MINUTES: Literal[1440] = 1440  # a quiet thread leaves the channel's list after a day
# A bare mention still needs a question for the model.
BARE_WITH_CONTEXT = "Please respond to the message above."
BARE = "Hello!"
_SPOKEN = frozenset({discord.MessageType.default, discord.MessageType.reply})


@dataclass(frozen=True, slots=True)
class Spot:
    """Where a message was written, in the core's terms."""

    key: ConversationKey  # in a server channel, thread "" until an answer opens a thread
    thread: discord.Thread | None = None  # written inside this thread
    is_dm: bool = False


@dataclass(slots=True)
class Answer:
    """Where an answer goes and what it reads first."""

    key: ConversationKey
    target: int  # the channel, thread or DM the reply is written in
    context: list[ContextMessage] = field(default_factory=list)
    reference: discord.MessageReference | None = None  # answered in the channel, as a reply
    opened: discord.Thread | None = None  # the thread opened for this answer


def _origin(message: discord.Message, where: Answer, text: str) -> dict[str, Any]:
    """What another instance needs to answer ``message`` as this one would (see ``rebuild``)."""
    key = where.key
    return {
        "key": [key.workspace, key.channel, key.thread],
        "target": where.target,
        "source": message.channel.id,
        "message": message.id,
        "text": text,
        "reply": where.reference is not None,
    }


def spot_of(message: discord.Message) -> Spot | None:
    """Where ``message`` was written; None where Parley does not answer (group DMs)."""
    guild, channel = message.guild, message.channel
    if guild is None:
        if not isinstance(channel, discord.DMChannel):
            return None
        return Spot(ConversationKey("discord", "", str(channel.id), ""), is_dm=True)
    if isinstance(channel, discord.Thread):
        return Spot(
            ConversationKey("discord", str(guild.id), str(channel.parent_id), str(channel.id)), channel
        )
    return Spot(ConversationKey("discord", str(guild.id), str(channel.id), ""))


class MessageEvents:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._lanes = TurnQueue()
        self.answered = 0
        self.ignored = 0  # not for Parley (see bot.routing.Reason), or denied
        self.unanswered = 0  # arrived after shutdown began

    async def on_message(self, message: discord.Message) -> None:
        hub = self.hub
        if message.author.id == hub.me.id or message.type not in _SPOKEN:
            return
        if not hub.accepting:
            self.unanswered += 1
            hub.ctx.ignored("discord", "shutting_down")
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

    def _seen(self, message: discord.Message, spot: Spot) -> Seen:
        author = message.author
        is_bot = author.bot or message.webhook_id is not None
        admitted = self.hub.admits_author(
            author,
            message.channel,
            message.channel.id,
            guild_id=message.guild.id if message.guild is not None else None,
            is_bot=is_bot,
        )
        return Seen(
            spot.key,
            str(author.id),
            is_dm=spot.is_dm,
            mentioned=not spot.is_dm and self._mentions_me(message),
            in_thread=spot.thread is not None,
            is_bot=is_bot,
            admitted=admitted,
        )

    # -- answering --------------------------------------------------------------------------------

    async def process(self, message: discord.Message) -> None:
        channel = message.channel
        if isinstance(channel, discord.Thread | discord.DMChannel):
            # One conversation per thread or DM: take its messages in arrival order. The core
            # queues turns in the order they reach it, and the preparation before that (reading
            # context) takes longer for some messages than for others. The next message goes
            # once this one has its place in line, not after its answer: so a burst can be
            # merged, and "stop" can stop the answer it interrupts.
            await self._in_lane(channel.id, lambda in_line: self._process(message, in_line))
        else:
            await self._process(message, _nothing)  # each mention in a channel starts its own conversation

    async def _in_lane(self, lane: int, work: Callable[[InLine], Awaitable[T]]) -> T:
        """Run ``work(in_line)``, holding ``lane`` until it calls ``in_line`` or ends."""
        lined_up = asyncio.Event()
        async with self._lanes.turn(lane):
            task = asyncio.ensure_future(work(lined_up.set))
            waiting = asyncio.ensure_future(lined_up.wait())
            try:
                await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:
                task.cancel()
                raise
            finally:
                waiting.cancel()
        return await task

    async def _process(self, message: discord.Message, in_line: InLine) -> None:
        hub = self.hub
        spot = spot_of(message)
        if spot is None:
            hub.ctx.ignored("discord", "unsupported_channel")
            return
        route = await hub.ctx.routing.route(self._seen(message, spot))
        if not route.answer:
            self.ignored += 1
            hub.ctx.ignored("discord", route.reason)
            if route.reason is Reason.DENIED:
                log.info("message %s in %s not admitted by the access policy", message.id, message.channel.id)
            return
        if not hub.first_sight(message.id):
            hub.ctx.ignored("discord", "duplicate")
            return  # a replayed event: the first delivery answers it
        if spot.thread is not None and not self._can_send(message):
            log.warning("cannot answer in thread %s: Parley may not send messages there", spot.thread.id)
            hub.ctx.ignored("discord", "no_permission")
            return
        text = message_text(message, hub.me.id, self_role_id(message))
        where = await self._answer_where(message, spot, route, text)
        if where is None:
            hub.ctx.ignored("discord", "no_permission")
        elif await self._hand_over(message, where, text, in_line):
            self.answered += 1

    async def _hand_over(self, message: discord.Message, where: Answer, text: str, in_line: InLine) -> bool:
        """The message to the core, to be answered ``where``; False if it was not (a duplicate)."""
        hub = self.hub
        attachments = hub.files.attachments(message.attachments)
        if not text and not attachments:
            text = BARE_WITH_CONTEXT if where.context else BARE
        incoming = IncomingMessage(
            key=where.key,
            event_id=str(message.id),
            author=author_of(hub, message.author),
            text=text,
            surface=DiscordSurface(hub, where.target, reference=where.reference),
            attachments=attachments,
            context=where.context,
            platform_message_id=str(message.id),
            origin=_origin(message, where, text),
        )
        if where.opened is None:
            return await hub.ctx.handle(incoming, in_line=in_line)
        # Follow-ups in the new thread queue behind this first question (see process()): its lane
        # is taken before this task yields again after opening the thread.
        return await self._in_lane(
            where.opened.id, lambda lined_up: hub.ctx.handle(incoming, in_line=lined_up)
        )

    async def rebuild(self, origin: Mapping[str, Any]) -> IncomingMessage | None:
        """The message of a turn another instance took and left waiting when it stopped (it may
        run other shards: the message is read back over REST, and answered where the first
        instance had decided, with the text it had read); None when it is gone."""
        try:
            key = ConversationKey("discord", *(str(part) for part in origin["key"]))
            target, source, message_id = (int(origin[name]) for name in ("target", "source", "message"))
            text = str(origin["text"])
        except (KeyError, TypeError, ValueError):
            return None
        hub = self.hub
        try:
            async with hub.throttle.slot():
                message = await hub.client.get_partial_messageable(source).fetch_message(message_id)
        except discord.NotFound:
            return None  # deleted meanwhile: nothing to answer
        reference = None
        if origin.get("reply"):
            reference = discord.MessageReference(
                message_id=message_id, channel_id=source, fail_if_not_exists=False
            )
        return IncomingMessage(
            key=key,
            event_id=str(message_id),
            author=author_of(hub, message.author),
            text=text,
            surface=DiscordSurface(hub, target, reference=reference),
            attachments=hub.files.attachments(message.attachments),
            platform_message_id=str(message_id),
            origin=dict(origin),
        )

    async def _answer_where(
        self, message: discord.Message, spot: Spot, route: Route, text: str
    ) -> Answer | None:
        if spot.is_dm:
            return Answer(spot.key, message.channel.id)
        if spot.thread is not None:
            earlier: list[ContextMessage] = []
            if route.read_back:
                earlier = await read_thread(
                    self.hub, spot.thread, before=message, include_own=route.include_own
                )
            chain = await reply_chain(self.hub, message, include_own=route.include_own)
            return Answer(spot.key, spot.thread.id, merge(earlier, chain))
        return await self._in_channel(message, spot.key, text)

    async def _in_channel(self, message: discord.Message, key: ConversationKey, text: str) -> Answer | None:
        """A mention in a server channel: a thread opened on it, or a reply in the channel."""
        context = await reply_chain(self.hub, message, include_own=True)
        opened = await self._open_thread(message, text)
        if opened is not None:
            thread_key = ConversationKey("discord", key.workspace, key.channel, str(opened.id))
            # Parley follows the threads it opens from the start: a quick follow-up must not be
            # taken for chatter in someone else's thread.
            self.hub.ctx.routing.follow(thread_key)
            return Answer(thread_key, opened.id, context, opened=opened)
        if self._can_send(message):
            # No thread here: answer in the channel, the question being its own conversation.
            own = ConversationKey("discord", key.workspace, key.channel, str(message.id))
            return Answer(own, message.channel.id, context, message.to_reference(fail_if_not_exists=False))
        log.warning("cannot answer in %s: Parley may not send messages there", message.channel.id)
        return None

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
                    name=thread_name(question or topic(message)), auto_archive_duration=ARCHIVE_MINUTES
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


def _nothing() -> None:
    """No lane to hand on (a channel message is a conversation of its own)."""
