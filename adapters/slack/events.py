"""Slack message events → :class:`~bot.types.IncomingMessage`, and when Parley answers.

When it answers:

- ``app_mention`` in a channel (public, private, group DM): answered in the message's thread.
- ``message`` in a thread where Parley has answered before: answered without a mention, unless
  ``PARLEY_REQUIRE_MENTION`` is set.
- ``message.im``: every DM is answered. A top-level DM belongs to one conversation per DM
  (key thread ``""``) and is answered at the top level; a DM written in a thread is its own
  conversation, answered in that thread.

Exactly once: a channel mention arrives twice when both ``app_mention`` and ``message.channels``
are subscribed (two event ids), and Slack redelivers an event it thinks was not acknowledged
(same event id). The event id handed to the core is therefore ``"{channel}:{ts}"``, the same
for every delivery of one user message, and the core claims it in the database; besides, the
``message`` listener leaves messages that mention Parley to ``app_mention``. A retried delivery
is not dropped on sight: if the first was never processed, the claim is free and the retry
answers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp

from adapters.slack.text import mentioned_users, mentions, strip_mention, to_plain
from adapters.slack.thread import SPOKEN_SUBTYPES, read_thread
from adapters.slack.workspace import Identity, Workspace, is_dm_channel
from bot.types import Author, ContextMessage, ConversationKey, IncomingMessage

log = logging.getLogger("parley.slack")

# The message events Parley subscribes to (the manifest lists them): follow-ups in threads, DMs.
MESSAGE_EVENTS = ("message.channels", "message.groups", "message.im", "message.mpim")


def dedupe_key(channel: str, ts: str) -> str:
    """The event id for the core: one per user message, whichever event type delivered it."""
    return f"{channel}:{ts}"


class MessageEvents:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        # Deliveries being prepared here (thread read, names) but not yet claimed by the core: a
        # retry arriving meanwhile is the same message, and the first delivery will answer it.
        self._preparing: set[str] = set()

    def register(self, app: AsyncApp) -> None:
        app.event("app_mention")(self._on_mention)
        app.event("message")(self._on_message)

    # Bolt acknowledges events before calling these; they only schedule the work.

    async def _on_mention(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        if is_dm_channel(str(event.get("channel", ""))):
            return  # DMs are answered from message.im
        self.ws.spawn(self.process(body, event, mentioned=True), "slack mention")

    async def _on_message(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        subtype = event.get("subtype")
        if not (subtype is None or isinstance(subtype, str)) or subtype not in SPOKEN_SUBTYPES:
            return
        if event.get("hidden"):
            return
        self.ws.spawn(self.process(body, event, mentioned=False), "slack message")

    async def process(self, body: Mapping[str, Any], event: Mapping[str, Any], *, mentioned: bool) -> None:
        ws = self.ws
        event = sane_event(event)
        body = {"team_id": body.get("team_id")} if isinstance(body.get("team_id"), str) else {}
        identity = await ws.identity()
        channel = str(event.get("channel", ""))
        ts = str(event.get("ts", ""))
        user = str(event.get("user") or "")
        bot_id = str(event.get("bot_id") or "")
        if not channel or not ts:
            return
        if user == identity.user_id or (bot_id and bot_id == identity.bot_id):
            return  # our own posts (Bolt drops most of them already)
        ws.stats.events += 1
        is_dm = is_dm_channel(channel) or event.get("channel_type") == "im"
        text = str(event.get("text") or "")
        if not mentioned and not is_dm and mentions(text, identity.user_id):
            ws.stats.ignored += 1
            return  # the app_mention delivery of this message answers it
        is_bot = bool(bot_id) or event.get("subtype") == "bot_message"
        author_id = _bot_ident(user, bot_id, ws.settings.parley_allow_bots) if is_bot else user
        if not ws.admits(user_id=author_id, channel=channel, is_bot=is_bot):
            ws.stats.ignored += 1
            log.info("message %s in %s not admitted by the access policy", ts, channel)
            return

        thread_ts = str(event.get("thread_ts") or "") or None
        in_thread = thread_ts is not None and thread_ts != ts
        team = str(body.get("team_id") or event.get("team") or identity.team_id)
        if is_dm:
            key = ConversationKey("slack", team, channel, thread_ts or "")
            reply_thread = thread_ts
        else:
            key = ConversationKey("slack", team, channel, thread_ts or ts)
            reply_thread = thread_ts or ts

        followed: bool | None = None
        if not mentioned and not is_dm:
            # A plain channel message: only a follow-up in a thread Parley has answered in.
            if not in_thread or ws.settings.parley_require_mention:
                ws.stats.ignored += 1
                return
            followed = ws.service.answering(key) or await ws.store.conversations.has_reply(key)
            if not followed:
                ws.stats.ignored += 1
                return

        event_id = dedupe_key(channel, ts)
        if event_id in self._preparing:
            ws.stats.duplicates += 1
            return
        self._preparing.add(event_id)
        try:
            context: list[ContextMessage] = []
            if in_thread and thread_ts is not None:
                if followed is None:
                    followed = ws.service.answering(key) or await ws.store.conversations.has_reply(key)
                # An unseen thread is read whole. In a followed thread the store has the turns
                # Parley took part in, but not the messages it was not asked about when mentions
                # are required; Parley's own messages are stored already either way.
                if not followed or ws.settings.parley_require_mention:
                    context = await read_thread(
                        ws, identity, channel, thread_ts, before_ts=ts, include_own=not followed
                    )
            msg = await self._message(
                identity,
                event,
                key=key,
                event_id=event_id,
                author_id=author_id,
                is_bot=is_bot,
                reply_thread=reply_thread,
                context=context,
            )
        finally:
            self._preparing.discard(event_id)
        await answer(ws, msg)

    async def _message(
        self,
        identity: Identity,
        event: Mapping[str, Any],
        *,
        key: ConversationKey,
        event_id: str,
        author_id: str,
        is_bot: bool,
        reply_thread: str | None,
        context: list[ContextMessage],
    ) -> IncomingMessage:
        ws = self.ws
        raw = strip_mention(str(event.get("text") or ""), identity.user_id)
        names = await ws.directory.names(u for u in mentioned_users(raw) if u != identity.user_id)
        if is_bot:
            profile = event.get("bot_profile") or {}
            author = Author(author_id, str(profile.get("name") or event.get("username") or author_id), True)
        else:
            author = Author(author_id, (await ws.directory.user(author_id)).name)
        # Files earlier in the thread travel on the context messages; the file pipeline reads both.
        return IncomingMessage(
            key=key,
            event_id=event_id,
            author=author,
            text=to_plain(raw, names),
            surface=ws.surface(
                team_id=key.workspace, channel=key.channel, thread_ts=reply_thread, user_id=author_id
            ),
            attachments=ws.files.attachments(event.get("files") or []),
            context=context,
            platform_message_id=str(event.get("ts") or ""),
        )


# The event fields Parley reads, all strings in what Slack sends.
_STRING_FIELDS = (
    "channel",
    "channel_type",
    "ts",
    "thread_ts",
    "user",
    "bot_id",
    "subtype",
    "text",
    "team",
    "username",
)


def sane_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event with every field Parley reads in the type Slack documents, others left out.

    Slack is trusted to send well-formed events, but a malformed one must cost at most itself:
    a number where an id belongs, a list where a file belongs, is dropped here rather than
    breaking the turn somewhere deeper.
    """
    out: dict[str, Any] = {name: event[name] for name in _STRING_FIELDS if isinstance(event.get(name), str)}
    files = event.get("files")
    if isinstance(files, list):
        out["files"] = [f for f in files if isinstance(f, Mapping)]
    profile = event.get("bot_profile")
    if isinstance(profile, Mapping):
        out["bot_profile"] = {k: v for k, v in profile.items() if k == "name" and isinstance(v, str)}
    out["hidden"] = event.get("hidden") is True
    return out


async def answer(ws: Workspace, msg: IncomingMessage) -> None:
    result = await ws.service.handle(msg)
    if result is None:
        ws.stats.duplicates += 1
    else:
        ws.stats.answered += 1


def _bot_ident(user: str, bot_id: str, allowed: frozenset[str]) -> str:
    """The id the access policy knows a bot by: its bot user id, or its bot id (legacy messages)."""
    if bot_id in allowed and user not in allowed:
        return bot_id
    return user or bot_id
