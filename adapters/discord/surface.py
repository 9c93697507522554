"""Writing one reply into a Discord channel, thread or DM: :class:`DiscordSurface`.

The core's renderer decides when to post and edit (within :class:`DiscordBudgets`) and where a
long reply is cut; this class only performs each call. Posts and edits go through
:class:`~adapters.discord.reply_rest.ReplyRest`, not discord.py, and report the bucket count
Discord announced in the answer (:meth:`DiscordSurface.announced`) so the renderer can pace each
channel by it; reads and deletes go through discord.py. While a message is live it carries a
Stop button; the renderer's final edit (``live=False``) sends ``components: []``, so the button
disappears, or, on an answer's last message, the 👍 / 👎 buttons in its place (same edit). Their
``custom_id``s name the reply (``parley:feedback:42:up``), so a click is understood after a
restart too (``adapters.discord.feedback``). Mentions in the model's text never ping anyone
(``allowed_mentions`` none), and link previews are suppressed so a reply with sources does not
grow a wall of embeds.

Typing: posting a message ends the bot's typing indicator on Discord, so it is triggered after
the placeholder is up and renewed every 8 s while the reply shows only the placeholder. Discord
has no call to end it early: it fades 10 s after the last trigger.

Files (a picture a tool made) are attached to the reply's latest message by an edit, so the
picture sits under the text it belongs to; the edit lists the files attached before, as Discord
keeps only what an edit's attachments name. Only when there is no message to edit (none posted,
or it was deleted meanwhile) does the file go out as a message of its own.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import discord

from adapters.discord.markdown import to_discord
from adapters.discord.reply_rest import NO_PINGS as NO_PINGS_JSON
from adapters.discord.reply_rest import (
    SUPPRESS_EMBEDS,
    Answer,
    DiscordRefused,
    ReplyRateLimited,
    ReplyRefused,
)
from bot.context import OrphanedReply
from bot.render.surface import PROVISIONAL, Announced, RateLimited, Shown, SurfaceLimits

if TYPE_CHECKING:
    from adapters.discord.hub import Hub

log = logging.getLogger("parley.discord")

T = TypeVar("T")

MAX_CHARS = 2000  # Discord counts code points, as Python does
STOP_ID = "parley:stop"
FEEDBACK_ID = "parley:feedback:"  # + "{reply id}:up" or "{reply id}:down"
TYPING_EVERY = 8.0  # Discord shows typing for 10 s per trigger
# What a reply shows before its answer exists: while it does, Parley looks busy.
NO_PINGS = discord.AllowedMentions.none()


class StopControl(discord.ui.View):
    """The Stop button. discord.py does not dispatch it (a stored view per message would never be
    freed); the adapter's ``on_interaction`` handles every ``parley:stop`` click instead."""

    def __init__(self) -> None:
        super().__init__(timeout=None)
        self.add_item(discord.ui.Button(label="Stop", style=discord.ButtonStyle.secondary, custom_id=STOP_ID))

    def is_dispatchable(self) -> bool:
        return False


class FeedbackControls(discord.ui.View):
    """👍 / 👎 on an answer's final message; handled, like Stop, by the adapter's ``on_interaction``
    from the ``custom_id`` alone (no stored view, so the buttons work after a restart)."""

    def __init__(self, reply_id: int) -> None:
        super().__init__(timeout=None)
        for emoji, value in (("👍", "up"), ("👎", "down")):
            self.add_item(
                discord.ui.Button(
                    emoji=emoji,
                    style=discord.ButtonStyle.secondary,
                    custom_id=f"{FEEDBACK_ID}{reply_id}:{value}",
                )
            )

    def is_dispatchable(self) -> bool:
        return False


def make_ref(channel_id: int, message_id: int) -> str:
    return f"{channel_id}:{message_id}"


def split_ref(ref: str) -> tuple[int, int]:
    channel, _, message = ref.partition(":")
    return int(channel), int(message)


async def discord_call(what: str, call: Awaitable[T]) -> T:
    """Await a discord.py REST call; a 429 becomes :class:`RateLimited`, other refusals
    :class:`DiscordRefused`. (discord.py retries 429s itself; one that escapes is reported.)"""
    try:
        return await call
    except discord.RateLimited as exc:
        raise RateLimited(exc.retry_after, f"{what}: rate limited") from exc
    except discord.HTTPException as exc:
        if exc.status == 429:
            raise RateLimited(_retry_after(exc), f"{what}: rate limited") from exc
        raise DiscordRefused.from_http(what, exc) from exc


def _retry_after(exc: discord.HTTPException) -> float:
    value = getattr(exc.response, "headers", {}).get("Retry-After")
    try:
        return float(str(value))
    except (TypeError, ValueError):
        return 1.0


class DiscordSurface:
    """One reply in one Discord channel (a thread is a channel). Refs are ``"{channel}:{message}"``."""

    def __init__(
        self, hub: Hub, channel_id: int, *, reference: discord.MessageReference | None = None
    ) -> None:
        self._hub = hub
        self.channel_id = channel_id
        # Replies posted in a channel (not a thread) point at the question with their first part.
        self._reference = reference
        self._limits = SurfaceLimits(
            max_chars=MAX_CHARS,
            post_budgets=hub.budgets.post_budgets(channel_id),
            edit_budgets=hub.budgets.edit_budgets(channel_id),
        )
        self._typing: asyncio.Task[None] | None = None
        self._typing_over = False
        self._latest: str | None = None  # the reply's latest message: files are attached to it
        self._files: list[discord.Attachment] = []  # what it carries already
        self._rating: tuple[int, Callable[[str], bool]] | None = None
        self._announced: Announced | None = None

    @property
    def limits(self) -> SurfaceLimits:
        return self._limits

    def render(self, markdown: str) -> str:
        return to_discord(markdown)

    def _channel(self, channel_id: int) -> discord.PartialMessageable:
        return self._hub.client.get_partial_messageable(channel_id)

    def rateable(self, reply_id: int, is_last: Callable[[str], bool]) -> None:
        """The reply is ``reply_id`` and about to get its final text (bot.feedback.Rateable)."""
        self._rating = (reply_id, is_last)

    def _controls(self, text: str, *, live: bool) -> discord.ui.View | None:
        """Stop while live; once final, the feedback buttons on an answer's last message."""
        if live:
            return StopControl()
        if self._rating is not None and self._rating[1](text):
            return FeedbackControls(self._rating[0])
        return None

    async def post(self, text: str, *, live: bool) -> str:
        payload: dict[str, Any] = {
            "content": text,
            "allowed_mentions": NO_PINGS_JSON,
            "flags": SUPPRESS_EMBEDS,
        }
        view = self._controls(text, live=live)
        if view is not None:
            payload["components"] = view.to_components()
        if self._reference is not None:
            payload["message_reference"] = self._reference.to_message_reference_dict()
        key = self._hub.budgets.create_key(self.channel_id)
        answer = await self._send(self._hub.replies.post(key, self.channel_id, payload))
        self._reference = None
        self._after(text)
        ref = make_ref(int(answer.data.get("channel_id") or self.channel_id), int(answer.data["id"]))
        self._latest, self._files = ref, []
        return ref

    async def edit(self, ref: str, text: str, *, live: bool) -> None:
        channel_id, message_id = split_ref(ref)
        payload: dict[str, Any] = {
            "content": text,
            "components": view.to_components() if (view := self._controls(text, live=live)) else [],
            "allowed_mentions": NO_PINGS_JSON,
        }
        key = self._hub.budgets.edit_key(channel_id)
        await self._send(self._hub.replies.edit(key, channel_id, message_id, payload))
        self._after(text)

    async def _send(self, call: Awaitable[Answer]) -> Answer:
        """Await a post or edit, keeping what its answer announced (an error's included)."""
        self._announced = None
        try:
            answer = await call
        except (ReplyRefused, ReplyRateLimited) as exc:
            self._announced = exc.announced
            raise
        self._announced = answer.announced
        return answer

    def announced(self) -> Announced | None:
        """What Discord's answer to this reply's latest post or edit said about its bucket."""
        return self._announced

    async def upload(self, name: str, data: bytes, media_type: str) -> str:
        """Attach a file to the reply's latest message (a message of its own if there is none)."""
        if self._latest is not None:
            channel_id, message_id = split_ref(self._latest)
            message = self._channel(channel_id).get_partial_message(message_id)
            files: list[discord.Attachment | discord.File] = [
                *self._files,
                discord.File(io.BytesIO(data), filename=name),
            ]
            try:
                async with self._hub.throttle.slot():  # not a renderer action: the adapter's share
                    edited = await discord_call("attach", message.edit(attachments=files))
            except DiscordRefused as exc:
                if exc.status != 404:
                    raise
                log.info("the reply's message %s is gone; posting the file on its own", self._latest)
            else:
                self._files = list(edited.attachments)
                return self._latest
        file = discord.File(io.BytesIO(data), filename=name)
        async with self._hub.throttle.slot():
            posted = await discord_call("post file", self._channel(self.channel_id).send(file=file))
        self._latest, self._files = make_ref(posted.channel.id, posted.id), list(posted.attachments)
        return self._latest

    async def delete(self, ref: str) -> None:
        """Delete one of this reply's messages (one the renderer replaced by a fresh post)."""
        channel_id, message_id = split_ref(ref)
        async with self._hub.throttle.slot():  # not a renderer action: the adapter's share
            await discord_call("delete", self._channel(channel_id).get_partial_message(message_id).delete())

    # -- after a crash: rebuilt from describe(), read back what a message shows ----------------

    def describe(self) -> dict[str, Any]:
        return {"channel": str(self.channel_id)}

    async def read(self, ref: str) -> Shown | None:
        """The message's text and whether it still has the Stop button; None if it is gone."""
        channel_id, message_id = split_ref(ref)
        try:
            async with self._hub.throttle.slot():  # not a renderer action: the adapter's share
                message = await discord_call("read", self._channel(channel_id).fetch_message(message_id))
        except DiscordRefused as exc:
            if exc.status in (403, 404):
                return None
            raise
        live = any(
            getattr(child, "custom_id", None) == STOP_ID
            for row in message.components
            for child in getattr(row, "children", ())
        )
        return Shown(message.content, live)

    async def set_status(self, status: str | None) -> None:
        if status is None:
            self._end_typing()
        else:
            self._start_typing()

    # -- typing ---------------------------------------------------------------------------------

    def _after(self, text: str) -> None:
        if text in PROVISIONAL:
            self._start_typing()
        else:
            self._end_typing()  # text is showing: the reply speaks for itself

    def _start_typing(self) -> None:
        if self._typing is None and not self._typing_over:
            self._typing = self._hub.spawn(
                self._typing_loop(), f"discord typing {self.channel_id}", background=True
            )

    def _end_typing(self) -> None:
        self._typing_over = True
        if self._typing is not None:
            self._typing.cancel()
            self._typing = None

    async def _typing_loop(self) -> None:
        throttle = self._hub.throttle
        channel = self._channel(self.channel_id)
        while True:
            # Best effort: never wait for a slot another call needs more.
            if throttle.try_acquire():
                try:
                    await channel.typing()
                except Exception as exc:
                    log.debug("typing in %s failed: %s", self.channel_id, exc)
                finally:
                    throttle.release()
            await asyncio.sleep(TYPING_EVERY)


def recovered_surface(hub: Hub, reply: OrphanedReply) -> DiscordSurface | None:
    """A surface for a reply a crashed process left open (see ConversationService.recover)."""
    described = (reply.surface or {}).get("surface")
    channel = described.get("channel") if isinstance(described, dict) else None
    refs = reply.reply_refs or tuple((reply.surface or {}).get("refs") or ())
    if channel is None and refs:
        channel = str(refs[0]).partition(":")[0]
    try:
        return DiscordSurface(hub, int(str(channel)))
    except (TypeError, ValueError):
        return None
