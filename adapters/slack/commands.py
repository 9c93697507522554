"""``/parley``, the Stop button and the message shortcuts.

Each is acknowledged at once and answered ephemerally through its ``response_url``: validating a
model name or checking admin rights takes Web API calls that must not hold up the ack. The access
policy applies to each of them as it does to messages.

``/parley model|system|reset|usage`` — model and system prompt are per channel (admins only when
``PARLEY_ADMIN_ONLY_SETTINGS``). Slack sends slash commands without the thread they were typed
in, so ``/parley reset`` resets a DM; a channel thread is reset with the "Reset Parley's memory"
message shortcut, which Slack sends with the message (and so its thread).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp

from adapters.slack.events import answer
from adapters.slack.surface import STOP_ACTION, make_ref
from adapters.slack.thread import read_thread
from adapters.slack.workspace import Workspace, is_dm_channel
from bot.types import Author, ConversationKey, IncomingMessage

log = logging.getLogger("parley.slack")

COMMAND = "/parley"
SUMMARIZE_CALLBACK = "summarize_thread"
RESET_CALLBACK = "reset_thread"
SUMMARIZE_PROMPT = (
    "Summarize this thread: what it is about, what was decided, and what is still open. "
    "Name who said what where it matters."
)
_MODELS_TTL = 300.0
_CLEAR = frozenset({"default", "reset", "clear", "none"})

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


class Interactions:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._models: tuple[float, list[str]] | None = None

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
        self.ws.spawn(self._command(body, respond), "slack /parley")

    async def _on_stop(
        self, ack: Callable[..., Awaitable[None]], body: dict[str, Any], respond: Respond
    ) -> None:
        await ack()
        self.ws.spawn(self._stop(body, respond), "slack stop")

    async def _on_summarize(
        self, ack: Callable[..., Awaitable[None]], body: dict[str, Any], respond: Respond
    ) -> None:
        await ack()
        self.ws.spawn(self._summarize(body, respond), "slack summarize")

    async def _on_reset(
        self, ack: Callable[..., Awaitable[None]], body: dict[str, Any], respond: Respond
    ) -> None:
        await ack()
        self.ws.spawn(self._reset_thread(body, respond), "slack reset")

    # -- /parley ----------------------------------------------------------------------------------

    async def _command(self, body: Mapping[str, Any], respond: Respond) -> None:
        user = str(body.get("user_id", ""))
        channel = str(body.get("channel_id", ""))
        team = str(body.get("team_id", ""))
        if not self.ws.admits(user_id=user, channel=channel):
            await _tell(respond, "Sorry, Parley isn't available to you here.")
            return
        verb, _, rest = str(body.get("text") or "").strip().partition(" ")
        verb, rest = verb.lower(), rest.strip()
        channel_key = ConversationKey("slack", team, channel, "")
        if verb == "model":
            reply = await self._model(user, channel_key, rest)
        elif verb == "system":
            reply = await self._system(user, channel_key, rest)
        elif verb == "reset":
            reply = await self._reset_dm(channel_key, str(body.get("thread_ts") or ""))
        elif verb == "usage":
            reply = await self._usage(user, team)
        else:
            reply = HELP
        await _tell(respond, reply)

    async def _may_change_settings(self, user: str) -> bool:
        if not self.ws.settings.parley_admin_only_settings:
            return True
        return (await self.ws.directory.user(user)).is_admin

    async def _model(self, user: str, key: ConversationKey, name: str) -> str:
        store = self.ws.store
        if not name:
            model, _ = await self._channel_overrides(key)
            return f"Parley uses *{model or self.ws.settings.parley_model}* in this channel."
        if not await self._may_change_settings(user):
            return "Only workspace admins can change Parley's model."
        if name.lower() in _CLEAR:
            await store.conversations.set_channel_model(key, None)
            return f"This channel is back to the default model, *{self.ws.settings.parley_model}*."
        known = await self._known_models()
        if known is not None and name not in known:
            close = [m for m in known if name.lower() in m.lower()][:10] or known[:10]
            return f"The gateway has no model `{name}`. Some it offers: " + ", ".join(f"`{m}`" for m in close)
        await store.conversations.set_channel_model(key, name)
        note = "" if known is not None else " (the gateway's model list could not be read to check the name)"
        return f"Parley now answers with *{name}* in this channel{note}."

    async def _channel_overrides(self, key: ConversationKey) -> tuple[str | None, str | None]:
        """This channel's (model, system prompt) overrides (the channel-level key, thread "")."""
        overrides = await self.ws.store.conversations.overrides(key)  # creates no row
        return overrides.model, overrides.system

    async def _known_models(self) -> list[str] | None:
        """The gateway's models (cached for five minutes), or None if they cannot be listed."""
        now = time.monotonic()
        if self._models is not None and self._models[0] > now:
            return self._models[1]
        try:
            models = await self.ws.runtime.gateway.list_models()
        except Exception as exc:
            log.warning("could not list the gateway's models: %s", exc)
            return None
        self._models = (now + _MODELS_TTL, list(models))
        return self._models[1]

    async def _system(self, user: str, key: ConversationKey, prompt: str) -> str:
        if not prompt:
            _, system = await self._channel_overrides(key)
            return (
                f"This channel's system prompt:\n>{system}"
                if system
                else "This channel uses the default system prompt."
            )
        if not await self._may_change_settings(user):
            return "Only workspace admins can change Parley's system prompt."
        if prompt.lower() in _CLEAR:
            await self.ws.store.conversations.set_channel_system(key, None)
            return "This channel is back to the default system prompt."
        await self.ws.store.conversations.set_channel_system(key, prompt)
        return "Parley will follow this system prompt in this channel."

    async def _reset_dm(self, channel_key: ConversationKey, thread_ts: str) -> str:
        if not is_dm_channel(channel_key.channel) and not thread_ts:
            return (
                "In a channel each thread is its own conversation. To make Parley forget a thread, "
                "use the message shortcut *Reset Parley's memory* on a message in it."
            )
        key = ConversationKey("slack", channel_key.workspace, channel_key.channel, thread_ts)
        if await self._reset(key):
            return "Done: Parley starts this conversation afresh."
        return "There is nothing to forget here yet."

    async def _reset(self, key: ConversationKey) -> bool:
        conversation = await self.ws.store.conversations.find(key)
        if conversation is None:
            return False
        await self.ws.store.conversations.reset(conversation.id)
        return True

    async def _usage(self, user: str, team: str) -> str:
        totals = await self.ws.store.usage.totals(user_id=user, platform="slack", workspace=team)
        replies = f"{totals.requests} repl{'y' if totals.requests == 1 else 'ies'}"
        thinking = f" ({totals.thinking_tokens:,} of them thinking)" if totals.thinking_tokens else ""
        return (
            f"Your Parley usage in this workspace: {replies}, {totals.input_tokens:,} input and "
            f"{totals.output_tokens:,} output tokens{thinking}."
        )

    # -- the Stop button -------------------------------------------------------------------------

    async def _stop(self, body: Mapping[str, Any], respond: Respond) -> None:
        user = str((body.get("user") or {}).get("id", ""))
        container = body.get("container") or {}
        channel = str(container.get("channel_id") or (body.get("channel") or {}).get("id", ""))
        ts = str(container.get("message_ts") or (body.get("message") or {}).get("ts", ""))
        if not self.ws.admits(user_id=user, channel=channel):
            await _tell(respond, "Sorry, Parley isn't available to you here.")
            return
        ref = make_ref(channel, ts)
        owner = self.ws.service.reply_owner(ref)
        if owner is None:
            return  # finished meanwhile: its final edit removes the button
        if owner != user and not (await self.ws.directory.user(user)).is_admin:
            await _tell(respond, f"Only <@{owner}>, who asked, can stop this reply.")
            return
        self.ws.service.stop(ref)

    # -- message shortcuts ------------------------------------------------------------------------

    async def _summarize(self, body: Mapping[str, Any], respond: Respond) -> None:
        ws = self.ws
        identity = await ws.identity()
        user = str((body.get("user") or {}).get("id", ""))
        channel = str((body.get("channel") or {}).get("id", ""))
        team = str((body.get("team") or {}).get("id") or identity.team_id)
        message = body.get("message") or {}
        if not ws.admits(user_id=user, channel=channel):
            await _tell(respond, "Sorry, Parley isn't available to you here.")
            return
        thread_ts = str(message.get("thread_ts") or message.get("ts") or "")
        key = ConversationKey("slack", team, channel, thread_ts)
        followed = await ws.store.conversations.has_reply(key)
        context = await read_thread(
            ws, identity, channel, thread_ts, before_ts=None, include_own=not followed
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
        await answer(ws, msg)

    async def _reset_thread(self, body: Mapping[str, Any], respond: Respond) -> None:
        user = str((body.get("user") or {}).get("id", ""))
        channel = str((body.get("channel") or {}).get("id", ""))
        team = str((body.get("team") or {}).get("id", ""))
        message = body.get("message") or {}
        if not self.ws.admits(user_id=user, channel=channel):
            await _tell(respond, "Sorry, Parley isn't available to you here.")
            return
        thread_ts = str(message.get("thread_ts") or message.get("ts") or "")
        if is_dm_channel(channel) and not message.get("thread_ts"):
            thread_ts = ""  # a top-level DM message belongs to the DM's conversation
        done = await self._reset(ConversationKey("slack", team, channel, thread_ts))
        await _tell(
            respond,
            "Done: Parley starts this thread afresh." if done else "Parley has no memory of this thread.",
        )


async def _tell(respond: Respond, text: str) -> None:
    try:
        await respond(text=text, response_type="ephemeral", replace_original=False)
    except Exception as exc:
        log.warning("could not answer an interaction: %s", exc)
