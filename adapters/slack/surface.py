"""Writing one reply into a Slack thread: :class:`SlackSurface`, the budgets it declares, and
native streaming with its fall back to post-and-update.

Messages carry standard Markdown in a ``markdown`` block (so Slack renders ``**bold**``, lists,
code fences and tables as the model wrote them) plus a short ``text`` fallback for notifications.
While a reply is live an actions block with the Stop button follows the Markdown; the final edit
(``live=False``) leaves the Markdown and, on an answer's last message, Slack's own feedback
buttons (a ``context_actions`` block) in the same call. ``markdown_text`` would spare the block
but cannot be combined with blocks, and the buttons need one.

Status: in a thread, once the placeholder is up, the thread shows a status line with rotating
loading messages (``assistant.threads.setStatus``; Slack itself takes it away when the app posts
in the thread, so it is set after the placeholder), cleared as soon as answer text shows.

Native streaming (``chat.startStream`` / ``appendStream`` / ``stopStream``) is append-only,
while the renderer hands the surface full snapshots. ``edit()`` therefore appends only the new
suffix when the snapshot extends what was streamed; any snapshot that does not (the renderer
froze the message at a cut, or a status text is replaced), any streaming error, and a stream
nearing Slack's ~5 minute expiry end the stream and continue on the same message with
``chat.update`` and the full text, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

# The message markup lives in markup.py; these names stay importable from here too.
from adapters.slack.calls import SlackRefused, slack_call
from adapters.slack.markup import FALLBACK_CHARS as FALLBACK_CHARS
from adapters.slack.markup import FEEDBACK_ACTION as FEEDBACK_ACTION
from adapters.slack.markup import STOP_ACTION as STOP_ACTION
from adapters.slack.markup import blocks_for as blocks_for
from adapters.slack.markup import fallback_text as fallback_text
from adapters.slack.markup import feedback_block
from adapters.slack.text import message_markdown
from adapters.slack.uploads import upload_file
from bot.render.split import fence_after
from bot.render.surface import (
    PROVISIONAL,
    Budget,
    RateLimited,
    Shown,
    SurfaceLimits,
)

log = logging.getLogger("parley.slack")


# The markdown block holds 12,000 characters. Slack may count UTF-16 units (an emoji is two), so
# parts are cut a little shorter to keep emoji-heavy text within the limit too.
MAX_MARKDOWN = 11_000
STATUS_THINKING = "is thinking…"
# Texts the renderer and the core show before an answer exists. A native stream cannot take them
# back, so they are never streamed; the "thinking" status stands in for them.
# A stream this old is ended and continued with chat.update before Slack expires it (~5 min).
STREAM_MAX_AGE = 270.0

# Refusals that say streaming cannot work in this workspace at all / in this channel.
# "no_text": every reply's stream starts empty (see post()), so a workspace refusing that refuses all.
_STREAMING_OFF = frozenset(
    {
        "not_allowed_token_type",
        "missing_scope",
        "unknown_method",
        "method_deprecated",
        "feature_not_enabled",
        "no_text",
    }
)
_STREAMING_OFF_HERE = frozenset({"channel_type_not_supported", "not_in_channel", "restricted_action"})
_STATUS_OFF = frozenset({"missing_scope", "not_allowed_token_type", "unknown_method", "method_deprecated"})
_CLOSING_FENCE = re.compile(r"[ \t]*(`{3,}|~{3,})[ \t]*")


@dataclass(frozen=True, slots=True)
class SlackBudgets:
    """What Slack allows, as (calls, seconds). The renderer paces every reply within these.

    ``chat.update`` is Tier 3 (about 50 a minute) per workspace: one budget that every reply in
    the workspace shares. ``chat.postMessage`` allows about one a second per channel with short
    bursts. ``chat.startStream``/``stopStream`` are Tier 2 (20 a minute), ``appendStream`` Tier 4
    (100 a minute). Declared slightly under the published figures; the renderer also holds each
    slot until Slack has answered, so network jitter never squeezes two windows into one.
    """

    post: tuple[int, float] = (3, 3.0)
    update: tuple[int, float] = (45, 60.0)
    # Every streamed message is started once and stopped once, so bounding starts at 15 a minute
    # also keeps the (undeclarable, see edit()) stops near that rate, under Tier 2's 20.
    start_stream: tuple[int, float] = (15, 60.0)
    append_stream: tuple[int, float] = (90, 60.0)

    def post_budgets(self, team: str, channel: str, *, streaming: bool) -> tuple[Budget, ...]:
        budgets = [Budget(f"slack:{team}:{channel}:chat.postMessage", *self.post)]
        if streaming:
            budgets.append(Budget(f"slack:{team}:chat.startStream", *self.start_stream))
        return tuple(budgets)

    def edit_budgets(self, team: str, *, streaming: bool) -> tuple[Budget, ...]:
        # A streaming reply's edits are appends. When a stream falls back, the surface declares
        # chat.update from then on (the renderer re-reads limits before each action); only the
        # chat.update made inside the failing append's own slot goes undeclared, once a reply.
        if streaming:
            return (Budget(f"slack:{team}:chat.appendStream", *self.append_stream),)
        return (Budget(f"slack:{team}:chat.update", *self.update),)


class NativeStreaming:
    """Process-wide: whether native streaming is on, and where Slack has refused it."""

    def __init__(self, enabled: bool, *, max_age: float = STREAM_MAX_AGE) -> None:
        self.enabled = enabled
        self.max_age = max_age
        self._off: str | None = None
        self._off_channels: dict[str, str] = {}

    def usable(self, channel: str, thread_ts: str | None) -> bool:
        # Slack streams only into threads; a top-level DM answer is posted and updated instead.
        return self.enabled and bool(thread_ts) and self._off is None and channel not in self._off_channels

    def refused(self, channel: str, error: str) -> None:
        if error in _STREAMING_OFF and self._off is None:
            self._off = error
            log.warning("native streaming refused (%s): using post-and-update from now on", error)
        elif error in _STREAMING_OFF_HERE and channel not in self._off_channels:
            self._off_channels[channel] = error
            log.info("native streaming refused in %s (%s): using post-and-update there", channel, error)


@dataclass(slots=True)
class StatusSwitch:
    """Process-wide: what a thread's status says while the model works, and whether to set it at
    all (off once Slack says assistant.threads.setStatus never works here)."""

    text: str = STATUS_THINKING
    loading_messages: Sequence[str] = field(default_factory=tuple)
    off: bool = False


@dataclass(slots=True)
class _Stream:
    ts: str
    sent: str  # Markdown appended so far
    started: float


def make_ref(channel: str, ts: str) -> str:
    """A message's ref: ``ts`` is unique only within a channel."""
    return f"{channel}:{ts}"


def split_ref(ref: str) -> tuple[str, str]:
    channel, _, ts = ref.partition(":")
    return channel, ts


def committed(text: str, *, live: bool) -> str:
    """The part of a snapshot that is safe to stream: later snapshots will still start with it.

    While live, the renderer closes a code fence the model is still writing; that closing line
    moves as the code grows, so it is held back until the text really goes on past it.
    """
    if text in PROVISIONAL:
        return ""
    if not live:
        return text
    cut = text.rfind("\n")
    if cut >= 0 and _CLOSING_FENCE.fullmatch(text[cut + 1 :]) and fence_after(text[: cut + 1]) is not None:
        return text[:cut]
    return text


class SlackSurface:
    """One reply in one Slack conversation. Refs are ``"{channel}:{ts}"``."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        team_id: str,
        channel: str,
        thread_ts: str | None,
        recipient_user_id: str,
        budgets: SlackBudgets,
        streaming: NativeStreaming,
        status: StatusSwitch,
        spawn: Callable[[Coroutine[Any, Any, None], str], None],
        on_user_stop: Callable[[str], object] | None = None,
    ) -> None:
        self._client = client
        self.team_id = team_id
        self.channel = channel
        self.thread_ts = thread_ts
        self._recipient = recipient_user_id
        self._streaming = streaming
        self._status = status
        self._spawn = spawn
        self._on_user_stop = on_user_stop
        self._native = streaming.usable(channel, thread_ts)
        self._plain_limits = SurfaceLimits(
            max_chars=MAX_MARKDOWN,
            post_budgets=budgets.post_budgets(team_id, channel, streaming=False),
            edit_budgets=budgets.edit_budgets(team_id, streaming=False),
        )
        self._native_limits = SurfaceLimits(
            max_chars=MAX_MARKDOWN,
            post_budgets=budgets.post_budgets(team_id, channel, streaming=True),
            edit_budgets=budgets.edit_budgets(team_id, streaming=True),
        )
        self._streams: dict[str, _Stream] = {}
        self._status_lock = asyncio.Lock()
        self._status_ok = thread_ts is not None
        self._status_set = False  # set once per reply, after its placeholder
        self._status_shown = False  # and cleared at the first answer text
        self._rating: tuple[int, Callable[[str], bool]] | None = None

    @property
    def limits(self) -> SurfaceLimits:
        return self._native_limits if self._native else self._plain_limits

    def render(self, markdown: str) -> str:
        # The markdown block takes standard Markdown as it is.
        return markdown

    # -- posting ------------------------------------------------------------------------------

    async def post(self, text: str, *, live: bool) -> str:
        self._answer_shows(text)
        ref = await self._post(text, live=live)
        if not self._status_set and text in PROVISIONAL and self._status_ok and not self._status.off:
            # After the post: Slack takes a thread's status away when the app posts in it.
            self._status_set = self._status_shown = True
            self._spawn(self.set_status(self._status.text), "slack status")
        return ref

    async def _post(self, text: str, *, live: bool) -> str:
        if self._native and live:
            ts = await self._start_stream(committed(text, live=True))
            if ts is not None:
                return make_ref(self.channel, ts)
        response = await slack_call(
            "chat.postMessage",
            self._client.chat_postMessage(
                channel=self.channel,
                thread_ts=self.thread_ts,
                text=fallback_text(text),
                blocks=self._blocks(text, live=live),
                unfurl_links=False,
                unfurl_media=False,
            ),
        )
        return make_ref(self.channel, str(response["ts"]))

    # -- feedback -----------------------------------------------------------------------------

    def rateable(self, reply_id: int, is_last: Callable[[str], bool]) -> None:
        """The reply is ``reply_id`` and about to get its final text (bot.feedback.Rateable)."""
        self._rating = (reply_id, is_last)

    def _rated(self, text: str, *, live: bool) -> int | None:
        """The reply whose feedback buttons a message showing ``text`` carries, if any: only the
        final text of an answer's last message."""
        if live or self._rating is None:
            return None
        reply_id, is_last = self._rating
        return reply_id if is_last(text) else None

    def _blocks(self, text: str, *, live: bool) -> list[dict[str, Any]]:
        return blocks_for(text, live=live, rated=self._rated(text, live=live))

    async def _start_stream(self, text: str) -> str | None:
        """Start a native stream; None when Slack refuses (the caller posts instead)."""
        assert self.thread_ts is not None
        try:
            response = await slack_call(
                "chat.startStream",
                self._client.chat_startStream(
                    channel=self.channel,
                    thread_ts=self.thread_ts,
                    markdown_text=text or None,
                    # Required outside DMs: whom the streaming message is for.
                    recipient_team_id=self.team_id,
                    recipient_user_id=self._recipient,
                ),
            )
        except SlackRefused as exc:
            self._streaming.refused(self.channel, exc.error)
            self._native = False
            log.info("chat.startStream refused (%s); posting instead", exc.error)
            return None
        ts = str(response["ts"])
        self._streams[make_ref(self.channel, ts)] = _Stream(ts, text, time.monotonic())
        return ts

    # -- editing ------------------------------------------------------------------------------

    async def edit(self, ref: str, text: str, *, live: bool) -> None:
        self._answer_shows(text)
        stream = self._streams.get(ref)
        if stream is not None and await self._stream_edit(ref, stream, text, live=live):
            return
        channel, ts = split_ref(ref)
        try:
            await self._update(channel, ts, text, live=live)
        except SlackRefused as exc:
            if exc.error != "streaming_state_conflict":
                raise
            # A native stream this process does not know (its writer crashed): end it, then edit.
            log.info("ending an orphaned native stream %s before editing it", ts)
            with contextlib.suppress(Exception):
                await self._client.chat_stopStream(channel=channel, ts=ts)
            await self._update(channel, ts, text, live=live)

    async def _update(self, channel: str, ts: str, text: str, *, live: bool) -> None:
        await slack_call(
            "chat.update",
            self._client.chat_update(
                channel=channel, ts=ts, text=fallback_text(text), blocks=self._blocks(text, live=live)
            ),
        )

    async def delete(self, ref: str) -> None:
        channel, ts = split_ref(ref)
        await slack_call("chat.delete", self._client.chat_delete(channel=channel, ts=ts))

    async def upload(self, name: str, data: bytes, media_type: str) -> str:
        """Add a file to the reply: shared in its thread (``adapters/slack/uploads.py``)."""
        return await upload_file(
            self._client, channel=self.channel, thread_ts=self.thread_ts, name=name, data=data
        )

    # -- after a crash: rebuilt from describe(), read back what a message shows ----------------

    def describe(self) -> dict[str, Any]:
        return {
            "team": self.team_id,
            "channel": self.channel,
            "thread_ts": self.thread_ts,
            "user": self._recipient,
        }

    async def read(self, ref: str) -> Shown | None:
        """The message's Markdown and whether it still shows Stop; None if Slack no longer has it.

        A message without blocks was a native stream (they carry none): whether it was ended is
        not visible, so it counts as live.
        """
        channel, ts = split_ref(ref)
        window: dict[str, Any] = {"channel": channel, "oldest": ts, "latest": ts, "inclusive": True}
        if self.thread_ts:
            call = self._client.conversations_replies(ts=self.thread_ts, limit=5, **window)
            response = await slack_call("conversations.replies", call)
        else:
            response = await slack_call(
                "conversations.history", self._client.conversations_history(limit=1, **window)
            )
        for message in response.get("messages") or []:
            if isinstance(message, dict) and message.get("ts") == ts:
                blocks = message.get("blocks") or []
                live = not blocks or any(
                    isinstance(b, dict) and b.get("block_id") == STOP_ACTION for b in blocks
                )
                return Shown(message_markdown(message), live)
        return None

    async def _stream_edit(self, ref: str, stream: _Stream, text: str, *, live: bool) -> bool:
        """Bring a streaming message level by appending; False once it has to be chat.update'd."""
        target = committed(text, live=live)
        fresh = time.monotonic() - stream.started < self._streaming.max_age
        if fresh and target.startswith(stream.sent):
            suffix = target[len(stream.sent) :]
            try:
                if live:
                    if suffix:
                        await slack_call(
                            "chat.appendStream",
                            self._client.chat_appendStream(
                                channel=self.channel, ts=stream.ts, markdown_text=suffix
                            ),
                        )
                else:
                    # Not a declared budget: see SlackBudgets.start_stream.
                    rated = self._rated(text, live=False)
                    await slack_call(
                        "chat.stopStream",
                        self._client.chat_stopStream(
                            channel=self.channel,
                            ts=stream.ts,
                            markdown_text=suffix or None,
                            blocks=[feedback_block(rated)] if rated is not None else None,
                        ),
                    )
                    del self._streams[ref]
                stream.sent = target
                return True
            except RateLimited:
                raise
            except SlackRefused as exc:
                if exc.error == "stopped_by_user" and self._on_user_stop is not None:
                    self._on_user_stop(ref)
                reason = exc.error
            except Exception as exc:  # e.g. the connection broke: the append may or may not have landed
                reason = type(exc).__name__
        else:
            reason = "stream expiring" if not fresh else "text rewritten"
        await self._end_stream(ref, stream, reason)
        return False

    async def _end_stream(self, ref: str, stream: _Stream, reason: str) -> None:
        """Close the stream (best effort) so the message takes chat.update from now on."""
        log.info("native stream %s continues with chat.update (%s)", stream.ts, reason)
        self._streams.pop(ref, None)
        self._native = False  # the rest of this reply is posted and updated
        try:
            await self._client.chat_stopStream(channel=self.channel, ts=stream.ts)
        except Exception as exc:  # already expired or stopped: chat.update works on it either way
            log.debug("chat.stopStream on fall back: %s", exc)

    # -- status -------------------------------------------------------------------------------

    def _answer_shows(self, text: str) -> None:
        """Answer text takes the status's place: clear it (once, without holding up the text)."""
        if self._status_shown and text not in PROVISIONAL:
            self._status_shown = False
            self._spawn(self._clear_status(), "slack status")

    async def _clear_status(self) -> None:
        await self._set_status("")

    async def set_status(self, status: str | None) -> None:
        """assistant.threads.setStatus, best effort, in threads only; None clears a status this
        reply set (and costs nothing when there is none)."""
        if status is None and not self._status_shown:
            return
        self._status_shown = status is not None
        await self._set_status(status or "")

    async def _set_status(self, status: str) -> None:
        if not self._status_ok or self._status.off or self.thread_ts is None:
            return
        loading = list(self._status.loading_messages) if status else []
        async with self._status_lock:
            try:
                await self._client.assistant_threads_setStatus(
                    channel_id=self.channel,
                    thread_ts=self.thread_ts,
                    status=status,
                    loading_messages=loading or None,
                )
            except SlackApiError as exc:
                error = str(exc.response.get("error") or "")
                if error in _STATUS_OFF:
                    self._status.off = True
                if exc.response.status_code != 429:
                    self._status_ok = False
                log.debug("assistant.threads.setStatus: %s", error)
            except Exception as exc:
                log.debug("assistant.threads.setStatus failed: %r", exc)
