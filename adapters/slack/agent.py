"""Slack's Agent messaging experience: the Messages tab, thread titles and "this channel".

With ``PARLEY_SLACK_AGENT`` (the default; the manifest declares ``agent_view``):

- Opening Parley's Messages tab (``app_home_opened``, tab ``messages``) sets the suggested prompts
  of ``[slack.agent]`` (``assistant.threads.setSuggestedPrompts``, without ``thread_ts`` as agent
  apps must), once per person and day, whichever instance sees the event: the first to claim
  ``prompts:{team}:{user}:{date}`` in the store does it.
- Each question typed in the Messages tab starts a thread of its own (``events.py`` keys it so);
  its first question names it (``assistant.threads.setTitle``).
- Slack says which channel a person is looking at (``app_context_changed``, and the context of
  ``app_home_opened``). When they ask about "this channel" in the Messages tab, that channel's
  recent messages go to the model as context, but only where both may read it: Parley is a
  member (``conversations.info``), so is the person (``conversations.members``), and the access
  policy admits the channel. What a person looks at is kept in this process for
  :data:`VIEWING_TTL`; an instance that did not see the event offers no channel, never a wrong one.

Everything here is best effort: a refusal is logged and the answer goes on without it.
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp

from adapters.slack.text import message_markdown, strip_mention, to_plain
from adapters.slack.workspace import Identity, Workspace, is_dm_channel
from bot.types import Author, ContextMessage

log = logging.getLogger("parley.slack")

VIEWING_TTL = 3600.0  # seconds a "looking at #channel" is trusted
VIEWING_MAX = 10_000  # people remembered, least recently seen dropped first
MEMBER_PAGES = 10  # conversations.members pages of 200 read, at most, to find a person
CHANNEL_MESSAGES = 30  # recent messages of a channel offered as context, at most
TITLE_CHARS = 60
# "summarise this channel", "what's happening in the current channel?"
_THIS_CHANNEL = re.compile(r"\b(?:this|current)\s+channel\b", re.IGNORECASE)
_CHANNEL_ENTITY = "slack#/types/channel_id"
_MESSAGE_ENTITY = "slack#/types/message_context"


def asks_about_this_channel(text: str) -> bool:
    return _THIS_CHANNEL.search(text) is not None


def title_of(question: str) -> str:
    """A thread title from its first question: the first line, at most :data:`TITLE_CHARS`,
    cut at a word."""
    line = " ".join(next((ln for ln in question.splitlines() if ln.strip()), "").split())
    if len(line) <= TITLE_CHARS:
        return line
    cut = line[: TITLE_CHARS - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > TITLE_CHARS // 2 else cut).rstrip(" ,;:.-") + "…"


def viewed_channel(event: Mapping[str, Any]) -> str | None:
    """The channel an event's ``context.entities`` says the person is looking at (the most
    relevant first), or None."""
    context = event.get("context")
    entities = context.get("entities") if isinstance(context, Mapping) else None
    for entity in entities if isinstance(entities, list) else []:
        if not isinstance(entity, Mapping):
            continue
        value = entity.get("value")
        if entity.get("type") == _CHANNEL_ENTITY and isinstance(value, str):
            return value
        if entity.get("type") == _MESSAGE_ENTITY and isinstance(value, Mapping):
            channel = value.get("channel_id")
            if isinstance(channel, str):
                return channel
    return None


class Agent:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.enabled = ws.settings.parley_slack_agent
        self.options = ws.settings.parley_slack.agent
        # (team, user) -> (channel, when seen): what each person was last looking at.
        self._viewing: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()

    def register(self, app: AsyncApp) -> None:
        app.event("app_home_opened")(self._on_home_opened)
        app.event("app_context_changed")(self._on_context_changed)

    # -- events (Bolt acknowledges them before these run) ------------------------------------------

    async def _on_home_opened(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        team, user = _team(body), _string(event, "user")
        if not self.enabled or not user:
            return
        self.saw(team, user, viewed_channel(event))
        channel = _string(event, "channel")
        if event.get("tab") == "messages" and channel and self.ws.admits(user_id=user, channel=channel):
            self.ws.spawn(self.offer_prompts(team, user, channel), "slack suggested prompts")

    async def _on_context_changed(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        team, user = _team(body), _string(event, "user")
        if self.enabled and user:
            self.saw(team, user, viewed_channel(event))

    # -- the Messages tab -------------------------------------------------------------------------

    async def offer_prompts(self, team: str, user: str, dm: str) -> None:
        """The suggested prompts, once per person and day (UTC) across restarts and instances."""
        ws = self.ws
        name = f"prompts:{team or '-'}:{user}:{datetime.now(UTC).date().isoformat()}"
        if not await ws.ctx.first_time("slack", name):
            return
        prompts = [{"title": p.title, "message": p.message} for p in self.options.prompts]
        try:
            await ws.client.assistant_threads_setSuggestedPrompts(
                channel_id=dm, title=self.options.prompts_title, prompts=prompts
            )
        except Exception as exc:
            log.info("could not set the suggested prompts for %s: %s", user, _error(exc))
            await ws.ctx.forget("slack", name)  # the next open tries again

    def name_thread(self, channel: str, thread_ts: str, question: str) -> None:
        """A new Messages-tab thread takes its title from its first question (in the background)."""
        title = title_of(question)
        if self.enabled and title:
            self.ws.spawn(self._set_title(channel, thread_ts, title), "slack thread title")

    async def _set_title(self, channel: str, thread_ts: str, title: str) -> None:
        try:
            await self.ws.client.assistant_threads_setTitle(
                channel_id=channel, thread_ts=thread_ts, title=title
            )
        except Exception as exc:
            log.info("could not title thread %s: %s", thread_ts, _error(exc))

    # -- "this channel" ---------------------------------------------------------------------------

    def saw(self, team: str, user: str, channel: str | None) -> None:
        """``user`` is looking at ``channel`` now (None: at nothing Parley may read)."""
        key = (team, user)
        if channel is None or is_dm_channel(channel):
            self._viewing.pop(key, None)
            return
        self._viewing[key] = (channel, time.monotonic())
        self._viewing.move_to_end(key)
        while len(self._viewing) > VIEWING_MAX:
            self._viewing.popitem(last=False)

    def viewing(self, team: str, user: str) -> str | None:
        seen = self._viewing.get((team, user))
        if seen is None or time.monotonic() - seen[1] > VIEWING_TTL:
            return None
        return seen[0]

    async def channel_context(
        self, identity: Identity, team: str, user: str, question: str
    ) -> ContextMessage | None:
        """The recent messages of the channel ``user`` is looking at, when the question is about
        "this channel" and both Parley and ``user`` can read it; else None."""
        if not self.enabled or ws_reads_nothing(self.ws) or not asks_about_this_channel(question):
            return None
        channel = self.viewing(team, user)
        if channel is None or not self.ws.admits(user_id=user, channel=channel):
            return None
        try:
            name = await self._readable_name(channel, user)
            if name is None:
                return None
            return await self._recent(identity, channel, name)
        except Exception as exc:
            log.info("not reading %s for %s: %s", channel, user, _error(exc))
            return None

    async def _readable_name(self, channel: str, user: str) -> str | None:
        """The channel's name when Parley is in it and so is ``user``; None otherwise."""
        info = (await self.ws.client.conversations_info(channel=channel))["channel"]
        if not isinstance(info, Mapping) or not info.get("is_member") or info.get("is_im"):
            return None
        cursor: str | None = None
        for _ in range(MEMBER_PAGES):
            page = await self.ws.client.conversations_members(channel=channel, limit=200, cursor=cursor)
            if user in (page.get("members") or []):
                return str(info.get("name") or channel)
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        log.info("%s asked about %s, which they are not a member of", user, channel)
        return None

    async def _recent(self, identity: Identity, channel: str, name: str) -> ContextMessage | None:
        ws = self.ws
        limit = min(CHANNEL_MESSAGES, ws.settings.parley_context_messages)
        response = await ws.client.conversations_history(channel=channel, limit=limit)
        raw = [m for m in response.get("messages") or [] if isinstance(m, Mapping) and not m.get("subtype")]
        if not raw:
            return None
        raw.reverse()  # Slack gives the newest first
        people = [str(m["user"]) for m in raw if m.get("user") and not m.get("bot_id")]
        names = await ws.directory.names(u for u in people if u != identity.user_id)
        lines = []
        for m in raw:
            who = _speaker(m, identity, names)
            text = to_plain(strip_mention(message_markdown(m), identity.user_id), names)
            if text:
                lines.append(f"[{who}] {text}")
        newest = str(raw[-1].get("ts") or "")
        intro = f"The latest messages in #{name}, the channel the user is looking at (oldest first):"
        return ContextMessage(
            author=Author(f"channel:{channel}", f"#{name}"),
            text="\n".join([intro, *lines]),
            platform_id=f"channel:{channel}:{newest}",
        )


def ws_reads_nothing(ws: Workspace) -> bool:
    """``PARLEY_CONTEXT_MESSAGES=0``: Parley reads no messages back from Slack, channels included."""
    return ws.settings.parley_context_messages <= 0


def _speaker(m: Mapping[str, Any], identity: Identity, names: Mapping[str, str]) -> str:
    if m.get("user") == identity.user_id:
        return "Parley"
    if m.get("bot_id"):
        profile = m.get("bot_profile") or {}
        return str(profile.get("name") or m.get("username") or "a bot")
    user = str(m.get("user") or "someone")
    return names.get(user, user)


def _team(body: Mapping[str, Any]) -> str:
    team = body.get("team_id")
    return team if isinstance(team, str) else ""


def _string(event: Mapping[str, Any], name: str) -> str:
    value = event.get(name)
    return value if isinstance(value, str) else ""


def _error(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    error = response.get("error") if response is not None and hasattr(response, "get") else None
    return str(error or type(exc).__name__)
