"""Slack message events → :class:`~bot.types.IncomingMessage`.

Whether Parley answers is :mod:`bot.routing`'s decision; this module says what each event is in
its terms (a :class:`~bot.routing.Seen`) and prepares the message when the answer is yes:

- ``app_mention`` in a channel (public, private, group DM) is a mention, answered in the
  message's thread.
- ``message`` in a thread is a possible follow-up: answered in a thread Parley has answered in,
  unless ``PARLEY_REQUIRE_MENTION`` is set.
- ``message.im`` is a DM. With Slack's Agent messaging experience (``PARLEY_SLACK_AGENT``, the
  default) the DM is Parley's Messages tab: a top-level message starts a thread of its own (key
  thread = its ts), answered in that thread and titled after it; messages in the thread continue
  it. Without it, a top-level DM belongs to one conversation per DM (key thread ``""``) and is
  answered at the top level; a DM written in a thread is its own conversation, answered there.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp

from adapters.slack.agent import Agent
from adapters.slack.text import mentioned_users, mentions, strip_mention, to_plain
from adapters.slack.thread import SPOKEN_SUBTYPES, read_thread
from adapters.slack.workspace import Identity, Workspace, is_dm_channel
from bot.routing import Reason, Route, Seen
from bot.types import Author, ContextMessage, ConversationKey, IncomingMessage

log = logging.getLogger("parley.slack")

# The message events Parley subscribes to (the manifest lists them): follow-ups in threads, DMs.
MESSAGE_EVENTS = ("message.channels", "message.groups", "message.im", "message.mpim")


def dedupe_key(channel: str, ts: str) -> str:
    """The event id for the core: one per user message, whichever event type delivered it."""
    return f"{channel}:{ts}"


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """A message event, parsed: who said what where, and where an answer to it goes."""

    key: ConversationKey
    channel: str
    ts: str
    thread_ts: str | None
    reply_thread: str | None  # the thread an answer is posted in (None: a DM's top level)
    author_id: str  # a bot is known by its bot user id or bot id, as PARLEY_ALLOW_BOTS lists it
    is_bot: bool
    is_dm: bool
    mentioned: bool
    text: str
    bot_name: str = ""
    files: Sequence[Mapping[str, Any]] = ()

    @property
    def event_id(self) -> str:
        return dedupe_key(self.channel, self.ts)

    @property
    def in_thread(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def origin(self) -> dict[str, Any]:
        """What another instance needs to rebuild this message (see ``MessageEvents.rebuild``):
        the event as :func:`sane_event` keeps it, in plain JSON."""
        event: dict[str, Any] = {
            "channel": self.channel,
            "ts": self.ts,
            "text": self.text,
            "channel_type": "im" if self.is_dm else "channel",
        }
        if self.thread_ts is not None:
            event["thread_ts"] = self.thread_ts
        if self.is_bot:
            event["bot_id"] = self.author_id
            event["bot_profile"] = {"name": self.bot_name}
        else:
            event["user"] = self.author_id
        if self.files:
            event["files"] = [dict(f) for f in self.files]
        return {"team_id": self.key.workspace, "event": event, "mentioned": self.mentioned}

    def seen(self, *, admitted: bool) -> Seen:
        return Seen(
            self.key,
            self.author_id,
            is_dm=self.is_dm,
            mentioned=self.mentioned,
            in_thread=self.in_thread,
            is_bot=self.is_bot,
            admitted=admitted,
        )


def parse(
    team_id: str,
    event: Mapping[str, Any],
    identity: Identity,
    *,
    mentioned: bool,
    allow_bots: frozenset[str],
    dm_threads: bool = False,
) -> SlackMessage | None:
    """``event`` (already :func:`sane_event`) as a :class:`SlackMessage`; None when it is not a
    message someone wrote to consider: no channel or ts, or Parley's own post. ``dm_threads``:
    a top-level DM starts a thread (the Agent messaging experience)."""
    channel, ts = str(event.get("channel", "")), str(event.get("ts", ""))
    author = _author(event, identity, allow_bots)
    if not channel or not ts or author is None:
        return None
    author_id, is_bot = author
    is_dm = is_dm_channel(channel) or event.get("channel_type") == "im"
    thread_ts = str(event.get("thread_ts") or "") or None
    team = team_id or str(event.get("team") or identity.team_id)
    key, reply_thread = _place(team, channel, ts, thread_ts, is_dm=is_dm and not dm_threads)
    profile = event.get("bot_profile") or {}
    return SlackMessage(
        key=key,
        channel=channel,
        ts=ts,
        thread_ts=thread_ts,
        reply_thread=reply_thread,
        author_id=author_id,
        is_bot=is_bot,
        is_dm=is_dm,
        mentioned=mentioned,
        text=str(event.get("text") or ""),
        bot_name=str(profile.get("name") or event.get("username") or ""),
        files=tuple(event.get("files") or ()),
    )


def _place(
    team: str, channel: str, ts: str, thread_ts: str | None, *, is_dm: bool
) -> tuple[ConversationKey, str | None]:
    """The conversation a message belongs to, and the thread an answer goes in (``is_dm``: a DM
    answered at its top level; Messages-tab DMs are placed like channel messages)."""
    if is_dm:
        # A top-level DM belongs to the DM's one conversation; a DM thread is a conversation of its own.
        return ConversationKey("slack", team, channel, thread_ts or ""), thread_ts
    return ConversationKey("slack", team, channel, thread_ts or ts), thread_ts or ts


def _author(
    event: Mapping[str, Any], identity: Identity, allow_bots: frozenset[str]
) -> tuple[str, bool] | None:
    """(author id, is a bot) of a message; None for Parley's own (Bolt drops most of them already)."""
    user, bot_id = str(event.get("user") or ""), str(event.get("bot_id") or "")
    if user == identity.user_id or (bot_id and bot_id == identity.bot_id):
        return None
    if bot_id or event.get("subtype") == "bot_message":
        return _bot_ident(user, bot_id, allow_bots), True
    return user, False


class MessageEvents:
    def __init__(self, ws: Workspace, agent: Agent) -> None:
        self.ws = ws
        self.agent = agent
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
        team = body.get("team_id")
        found = await self._decide(team if isinstance(team, str) else "", sane_event(event), mentioned)
        if found is None:
            return
        identity, msg, route = found
        ws = self.ws
        if msg.event_id in self._preparing:
            ws.stats.duplicates += 1
            ws.ctx.ignored("slack", "duplicate")
            return
        # Parley follows the conversation from now on: a follow-up typed while this message is
        # prepared is part of it, not chatter in someone else's thread.
        ws.ctx.routing.follow(msg.key)
        self._preparing.add(msg.event_id)
        try:
            incoming = await self._incoming(identity, msg, route)
        finally:
            self._preparing.discard(msg.event_id)
        if msg.is_dm and not msg.in_thread and self.agent.enabled:
            self.agent.name_thread(msg.channel, msg.ts, incoming.text)  # a new Messages-tab thread
        await answer(ws, incoming)

    async def rebuild(self, origin: Mapping[str, Any]) -> IncomingMessage | None:
        """The message of a turn another instance took and left waiting when it stopped, from the
        ``origin`` it was given; None when Parley would no longer answer it."""
        event = origin.get("event")
        if not isinstance(event, Mapping):
            return None
        team = origin.get("team_id")
        found = await self._decide(
            team if isinstance(team, str) else "", sane_event(event), origin.get("mentioned") is True
        )
        if found is None:
            return None
        return await self._incoming(*found)

    async def _decide(
        self, team: str, event: dict[str, Any], mentioned: bool
    ) -> tuple[Identity, SlackMessage, Route] | None:
        """The parsed message and the decision to answer it; None when Parley does not."""
        ws = self.ws
        identity = await ws.identity()
        msg = parse(
            team,
            event,
            identity,
            mentioned=mentioned,
            allow_bots=ws.settings.parley_allow_bots,
            dm_threads=self.agent.enabled,
        )
        if msg is None:
            return None
        ws.stats.events += 1
        if not mentioned and not msg.is_dm and mentions(msg.text, identity.user_id):
            ws.stats.ignored += 1
            ws.ctx.ignored("slack", "duplicate")  # the app_mention delivery of this message answers it
            return None
        admitted = ws.admits(user_id=msg.author_id, channel=msg.channel, is_bot=msg.is_bot)
        route = await ws.ctx.routing.route(msg.seen(admitted=admitted))
        if not route.answer:
            ws.stats.ignored += 1
            ws.ctx.ignored("slack", route.reason)
            if route.reason is Reason.DENIED:
                log.info("message %s in %s not admitted by the access policy", msg.ts, msg.channel)
            return None
        return identity, msg, route

    async def _incoming(self, identity: Identity, msg: SlackMessage, route: Route) -> IncomingMessage:
        ws = self.ws
        context: list[ContextMessage] = []
        if route.read_back and msg.thread_ts is not None:
            context = await read_thread(
                ws, identity, msg.channel, msg.thread_ts, before_ts=msg.ts, include_own=route.include_own
            )
        raw = strip_mention(msg.text, identity.user_id)
        names = await ws.directory.names(u for u in mentioned_users(raw) if u != identity.user_id)
        if msg.is_bot:
            author = Author(msg.author_id, msg.bot_name or msg.author_id, True)
        else:
            author = Author(msg.author_id, (await ws.directory.user(msg.author_id)).name)
        if msg.is_dm and not msg.is_bot:
            looked_at = await self.agent.channel_context(identity, msg.key.workspace, msg.author_id, raw)
            if looked_at is not None:
                context.append(looked_at)  # "this channel": the one the person is looking at
        # Files earlier in the thread travel on the context messages; the file pipeline reads both.
        return IncomingMessage(
            key=msg.key,
            event_id=msg.event_id,
            author=author,
            text=to_plain(raw, names),
            surface=ws.surface(
                team_id=msg.key.workspace,
                channel=msg.channel,
                thread_ts=msg.reply_thread,
                user_id=msg.author_id,
            ),
            attachments=ws.files.attachments(msg.files),
            context=context,
            platform_message_id=msg.ts,
            origin=msg.origin(),
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


async def answer(ws: Workspace, msg: IncomingMessage, *, merge: bool = True) -> None:
    """Hand ``msg`` to the core (``merge``: it may join the author's burst of messages)."""
    if await ws.ctx.handle(msg, merge=merge):
        ws.stats.answered += 1
    else:
        ws.stats.duplicates += 1


def _bot_ident(user: str, bot_id: str, allowed: frozenset[str]) -> str:
    """The id the access policy knows a bot by: its bot user id, or its bot id (legacy messages)."""
    if bot_id in allowed and user not in allowed:
        return bot_id
    return user or bot_id
