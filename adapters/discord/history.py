"""Reading Discord messages back as context for the core: a thread's recent messages, a reply chain.

Bounded: a thread gives at most ``PARLEY_CONTEXT_MESSAGES`` messages (pages of 100, each through
the adapter's throttle), a reply chain at most :data:`REPLY_CHAIN_DEPTH`. Each message keeps its
id as ``platform_id``, so the core stores it once however often it is read. Reading never
raises: a thread or message that cannot be read gives less context, and the question is still
answered.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import discord

from adapters.discord.hub import Hub
from adapters.discord.text import message_text, self_role_id
from bot.types import Author, ContextMessage

log = logging.getLogger("parley.discord")

REPLY_CHAIN_DEPTH = 10
_PAGE = 100
_SPOKEN = frozenset({discord.MessageType.default, discord.MessageType.reply})


def author_of(hub: Hub, user: discord.abc.User) -> Author:
    if user.id == hub.me.id:
        return Author(str(user.id), user.display_name, is_bot=True)
    return Author(str(user.id), user.display_name, is_bot=user.bot)


def to_context(hub: Hub, message: discord.Message) -> ContextMessage | None:
    """A message as context; None for what nobody said (joins, pins, thread notices, empties)."""
    if message.type not in _SPOKEN:
        return None
    own = message.author.id == hub.me.id
    text = message.content if own else message_text(message, hub.me.id, self_role_id(message))
    files = hub.files.attachments(message.attachments)
    if not text.strip() and not files:
        return None
    return ContextMessage(
        author=author_of(hub, message.author),
        text=text,
        from_assistant=own,
        attachments=files,
        platform_id=str(message.id),
    )


async def read_thread(
    hub: Hub, thread: discord.Thread, *, before: discord.Message, include_own: bool
) -> list[ContextMessage]:
    """The thread's newest messages before ``before`` (oldest first), with the message it was
    started from when that lives in the parent channel."""
    limit = hub.settings.parley_context_messages
    if limit <= 0 or not _may_read(thread):
        return []
    newest_first: list[discord.Message] = []
    cursor: discord.abc.Snowflake = before
    try:
        while len(newest_first) < limit:
            want = min(_PAGE, limit - len(newest_first))
            async with hub.throttle.slot():
                page = [m async for m in thread.history(limit=want, before=cursor)]
            newest_first.extend(page)
            if len(page) < want:
                break
            cursor = page[-1]
    except discord.HTTPException as exc:
        log.warning("could not read thread %s: %s", thread.id, exc)
    messages = list(reversed(newest_first))
    if len(messages) < limit and not any(m.id == thread.id for m in messages):
        starter = await _starter(hub, thread)
        if starter is not None:
            messages.insert(0, starter)
    return _contexts(hub, messages, include_own)


async def _starter(hub: Hub, thread: discord.Thread) -> discord.Message | None:
    """The message a thread was opened on: in a text channel it stays in the parent, with the
    thread's id. (A forum post's first message is inside the thread and read with it.)"""
    parent = thread.parent
    if not isinstance(parent, discord.TextChannel) or not _may_read(parent):
        return None
    try:
        async with hub.throttle.slot():
            return await parent.fetch_message(thread.id)
    except discord.HTTPException:
        return None  # the thread was not started from a message, or it was deleted


async def reply_chain(hub: Hub, message: discord.Message, *, include_own: bool) -> list[ContextMessage]:
    """The messages ``message`` replies to, transitively, oldest first (at most REPLY_CHAIN_DEPTH)."""
    chain: list[discord.Message] = []
    current = message
    seen = {message.id}
    while len(chain) < REPLY_CHAIN_DEPTH:
        parent = await _replied_to(hub, current)
        if parent is None or parent.id in seen:
            break
        seen.add(parent.id)
        chain.append(parent)
        current = parent
    return _contexts(hub, reversed(chain), include_own)


async def _replied_to(hub: Hub, message: discord.Message) -> discord.Message | None:
    ref = message.reference
    if ref is None or ref.message_id is None or ref.type is not discord.MessageReferenceType.reply:
        return None
    if isinstance(ref.resolved, discord.Message):
        return ref.resolved
    if isinstance(ref.resolved, discord.DeletedReferencedMessage):
        return None
    cached = ref.cached_message
    if cached is not None:
        return cached
    try:
        async with hub.throttle.slot():
            return await hub.client.get_partial_messageable(ref.channel_id).fetch_message(ref.message_id)
    except discord.HTTPException as exc:
        log.debug("could not fetch replied-to message %s: %s", ref.message_id, exc)
        return None


def _may_read(channel: discord.TextChannel | discord.Thread) -> bool:
    """Whether Parley may read the channel's history: asking without it is a 403, and Discord
    bans bots that collect those."""
    return channel.permissions_for(channel.guild.me).read_message_history


def _contexts(hub: Hub, messages: Iterable[discord.Message], include_own: bool) -> list[ContextMessage]:
    out: list[ContextMessage] = []
    for m in messages:
        if not include_own and m.author.id == hub.me.id:
            continue
        item = to_context(hub, m)
        if item is not None:
            out.append(item)
    return out


def merge(*groups: Iterable[ContextMessage]) -> list[ContextMessage]:
    """Several context reads as one, each message once, in the order Discord ids give (time)."""
    by_id: dict[str, ContextMessage] = {}
    for group in groups:
        for item in group:
            by_id.setdefault(item.platform_id, item)
    return sorted(by_id.values(), key=lambda c: int(c.platform_id or 0))
