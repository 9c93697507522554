"""``/parley``, the Stop button and the message shortcuts.

Each is acknowledged at once and answered ephemerally through its ``response_url``: validating a
model name or checking admin rights takes Web API calls that must not hold up the ack. The access
policy applies to each of them as it does to messages.

What each control does, who may use it and what it says are :mod:`bot.controls`' (sentences in
standard Markdown, turned into Slack's mrkdwn here); this module is Slack's UI for them.
``/parley model|system|reset|usage`` — model and system prompt are per channel (or DM). Slack
sends slash commands without the thread they were typed in, so ``/parley reset`` resets a DM; a
channel thread is reset with the "Reset Parley's memory" message shortcut, which Slack sends with
the message (and so its thread).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp

from adapters.slack.events import answer
from adapters.slack.surface import STOP_ACTION, make_ref
from adapters.slack.text import to_mrkdwn
from adapters.slack.thread import read_thread
from adapters.slack.workspace import Workspace, is_dm_channel
from bot.controls import FAILED, NOT_HERE, AdminCheck, Place, PlaceKind, StopResult, Wording
from bot.routing import Seen
from bot.types import Author, ConversationKey, IncomingMessage

log = logging.getLogger("parley.slack")

COMMAND = "/parley"
SUMMARIZE_CALLBACK = "summarize_thread"
RESET_CALLBACK = "reset_thread"
SUMMARIZE_PROMPT = (
    "Summarize this thread: what it is about, what was decided, and what is still open. "
    "Name who said what where it matters."
)
WORDING = Wording(settings_admins="workspace admins", stop_admins="a workspace admin", workspace="workspace")

Respond = Callable[..., Awaitable[Any]]

HELP = (
    "*/parley* — Parley's settings here:\n"
    "• `/parley model` shows the model; `/parley model NAME` sets it for this channel "
    "(`/parley model default` goes back to the default)\n"
    "• `/parley system TEXT` sets this channel's system prompt (`/parley system default` clears it)\n"
    "• `/parley reset` makes Parley forget this DM conversation so far "
    "(in a channel thread: the message shortcut *Reset Parley's memory*)\n"
    "• `/parley usage` shows your token usage"
)
RESET_IN_A_CHANNEL = (
    "In a channel each thread is its own conversation. To make Parley forget a thread, "
    "use the message shortcut *Reset Parley's memory* on a message in it."
)
RESET_IN_THE_MESSAGES_TAB = (
    "Here each thread is its own conversation: a new message starts afresh. To make Parley "
    "forget a thread, use the message shortcut *Reset Parley's memory* on a message in it."
)


def text_at(body: Any, *path: str) -> str:
    """A string at ``path`` in an interaction payload ("" where it is missing or not a string)."""
    value: Any = body
    for name in path:
        value = value.get(name) if isinstance(value, Mapping) else None
    return value if isinstance(value, str) else ""


class Interactions:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.controls = ws.ctx.controls(WORDING)

    def register(self, app: AsyncApp) -> None:
        app.command(COMMAND)(self._on_command)
        app.action(STOP_ACTION)(self._on_stop)
        app.shortcut(SUMMARIZE_CALLBACK)(self._on_summarize)
        app.shortcut(RESET_CALLBACK)(self._on_reset)

    # -- listeners: ack, then work in the background ----------------------------------------------

    async def _on_command(
        self, ack: Callable[..., Awaitable[None]], body: dict[str, Any], respond: Respond
    ) -> None:
        await ack()
        work = self._once(body, "command", self._command)
        self.ws.spawn(self._answering(work, respond), "slack /parley")

    async def _on_stop(
        self, ack: Callable[..., Awaitable[None]], body: dict[str, Any], respond: Respond
    ) -> None:
        await ack()
        self.ws.spawn(self._answering(self._once(body, "action", self._stop), respond), "slack stop")

    async def _on_summarize(
        self, ack: Callable[..., Awaitable[None]], body: dict[str, Any], respond: Respond
    ) -> None:
        await ack()
        # Claimed by the core with the turn (its event id is the trigger id).
        self.ws.spawn(self._answering(self._summarize(body), respond), "slack summarize")

    async def _on_reset(
        self, ack: Callable[..., Awaitable[None]], body: dict[str, Any], respond: Respond
    ) -> None:
        await ack()
        work = self._once(body, "reset", self._reset_thread)
        self.ws.spawn(self._answering(work, respond), "slack reset")

    async def _once(
        self,
        body: Mapping[str, Any],
        kind: str,
        act: Callable[[Mapping[str, Any]], Awaitable[str | None]],
    ) -> str | None:
        """``act(body)`` unless another delivery of the same interaction (its trigger id) was acted
        on already, here or by another instance; then nothing, not even an answer."""
        trigger = text_at(body, "trigger_id")
        if trigger and not await self.ws.ctx.once("slack", f"{kind}:{trigger}"):
            log.info("a %s Parley acted on already was delivered again; ignored", kind)
            return None
        return await act(body)

    async def _answering(self, work: Awaitable[str | None], respond: Respond) -> None:
        """Run ``work`` and tell the person its answer, if any; a failure is logged and said."""
        try:
            text = await work
        except Exception:
            log.exception("a Slack interaction failed")
            text = FAILED
        if text:
            await tell(respond, to_mrkdwn(text))

    def _is_admin(self, user: str) -> AdminCheck:
        async def check() -> bool:
            return (await self.ws.directory.user(user)).is_admin

        return check

    # -- /parley ----------------------------------------------------------------------------------

    async def _command(self, body: Mapping[str, Any]) -> str:
        user, channel, team = (
            text_at(body, "user_id"),
            text_at(body, "channel_id"),
            text_at(body, "team_id"),
        )
        if not self.ws.admits(user_id=user, channel=channel):
            return NOT_HERE
        verb, _, rest = str(body.get("text") or "").strip().partition(" ")
        verb, rest = verb.lower(), rest.strip()
        # Slack sends slash commands without their thread: settings are the channel's (or the DM's).
        dm = is_dm_channel(channel)
        place = Place(
            ConversationKey("slack", team, channel, ""),
            "this DM" if dm else "this channel",
            PlaceKind.DM if dm else PlaceKind.CHANNEL,
        )
        controls = self.controls
        if verb == "model":
            return await controls.model(place, rest, is_admin=self._is_admin(user))
        if verb == "system":
            return await controls.system(place, rest, is_admin=self._is_admin(user))
        if verb == "reset":
            if not text_at(body, "thread_ts"):
                if dm and self.ws.settings.parley_slack_agent:
                    return RESET_IN_THE_MESSAGES_TAB
                if not dm:
                    return RESET_IN_A_CHANNEL
            return await controls.reset(ConversationKey("slack", team, channel, text_at(body, "thread_ts")))
        if verb == "usage":
            return await controls.usage(user, place)
        return HELP

    # -- the Stop button -------------------------------------------------------------------------

    async def _stop(self, body: Mapping[str, Any]) -> str | None:
        user = text_at(body, "user", "id")
        channel = text_at(body, "container", "channel_id") or text_at(body, "channel", "id")
        ts = text_at(body, "container", "message_ts") or text_at(body, "message", "ts")
        if not self.ws.admits(user_id=user, channel=channel):
            return NOT_HERE
        stopped = await self.controls.stop(make_ref(channel, ts), user, is_admin=self._is_admin(user))
        # Stopped, or finished meanwhile: the reply's final edit says so and removes the button.
        return stopped.text if stopped.result is StopResult.REFUSED else None

    # -- message shortcuts ------------------------------------------------------------------------

    async def _summarize(self, body: Mapping[str, Any]) -> str | None:
        ws = self.ws
        identity = await ws.identity()
        user, channel = text_at(body, "user", "id"), text_at(body, "channel", "id")
        team = text_at(body, "team", "id") or identity.team_id
        thread_ts = text_at(body, "message", "thread_ts") or text_at(body, "message", "ts")
        key = ConversationKey("slack", team, channel, thread_ts)
        # Asked for by name, like a mention in the thread: the access policy applies, and Parley's
        # own messages are read back only where the store does not have them.
        seen = Seen(
            key, user, mentioned=True, in_thread=True, admitted=ws.admits(user_id=user, channel=channel)
        )
        route = await ws.ctx.routing.route(seen)
        if not route.answer:
            return NOT_HERE
        context = await read_thread(
            ws, identity, channel, thread_ts, before_ts=None, include_own=route.include_own
        )
        msg = IncomingMessage(
            key=key,
            # Interactions are never redelivered; the trigger id names this one.
            event_id=f"shortcut:{body.get('trigger_id') or body.get('action_ts')}",
            author=Author(user, (await ws.directory.user(user)).name),
            text=SUMMARIZE_PROMPT,
            surface=ws.surface(team_id=team, channel=channel, thread_ts=thread_ts, user_id=user),
            context=context,
        )
        await answer(ws, msg, merge=False)  # a request of its own, not part of a burst
        return None

    async def _reset_thread(self, body: Mapping[str, Any]) -> str:
        user, channel, team = (
            text_at(body, "user", "id"),
            text_at(body, "channel", "id"),
            text_at(body, "team", "id"),
        )
        if not self.ws.admits(user_id=user, channel=channel):
            return NOT_HERE
        thread_ts = text_at(body, "message", "thread_ts")
        if not thread_ts and (not is_dm_channel(channel) or self.ws.settings.parley_slack_agent):
            # A channel message starts its thread, and so does one in the Messages tab. (Without
            # the agent experience a top-level DM belongs to the DM's conversation, thread "".)
            thread_ts = text_at(body, "message", "ts")
        return await self.controls.reset(ConversationKey("slack", team, channel, thread_ts))


async def tell(respond: Respond, text: str) -> None:
    """Answer an interaction with ``text`` (mrkdwn), seen only by the person who clicked or typed."""
    try:
        await respond(text=text, response_type="ephemeral", replace_original=False)
    except Exception as exc:
        log.warning("could not answer an interaction: %s", exc)
