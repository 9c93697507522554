"""Tunable behaviour of the fake: rate budgets, message limits, streaming quirks, default scopes.

Every value here is a plain attribute that a test may change at any time, also while the fake runs
(``fs.limits.budgets["chat.update"] = Budget(3, 1.0)``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Scopes granted to the bot token unless the test says otherwise (reported in ``x-oauth-scopes``).
DEFAULT_SCOPES: frozenset[str] = frozenset(
    {
        "app_mentions:read",
        "assistant:write",
        "channels:history",
        "channels:read",
        "chat:write",
        "commands",
        "files:read",
        "files:write",
        "groups:history",
        "groups:read",
        "im:history",
        "im:read",
        "im:write",
        "mpim:history",
        "mpim:read",
        "reactions:write",
        "users:read",
    }
)


@dataclass(frozen=True)
class Budget:
    """At most ``calls`` accepted requests in any sliding window of ``per_seconds`` seconds.

    Requests refused with 429 do not consume the budget. ``Retry-After`` is the whole number of
    seconds (rounded up, at least 1) until the oldest accepted request leaves the window.
    """

    calls: int
    per_seconds: float


def _default_budgets() -> dict[str, Budget]:
    return {
        # Tier 3 ("50+ per minute"), shared by the whole workspace.
        "chat.update": Budget(50, 60.0),
        # "About one message per second per channel, short bursts allowed": 3 in any 3 s window,
        # i.e. a burst of 3, then 1/s sustained. Counted per channel (see RateLimits.per_channel).
        "chat.postMessage": Budget(3, 3.0),
        # Tier 2 ("20+ per minute") for start/stop, Tier 4 ("100+ per minute") for append.
        "chat.startStream": Budget(20, 60.0),
        "chat.stopStream": Budget(20, 60.0),
        "chat.appendStream": Budget(100, 60.0),
        # Tier 4: the agent methods with a documented tier, the external upload and views.open.
        "assistant.threads.setSuggestedPrompts": Budget(100, 60.0),
        "assistant.threads.setTitle": Budget(100, 60.0),
        "files.getUploadURLExternal": Budget(100, 60.0),
        "files.completeUploadExternal": Budget(100, 60.0),
        "views.open": Budget(100, 60.0),
        # "Special" and undocumented (unverified): modelled like chat.postMessage, about one a
        # second with short bursts, counted per thread (see RateLimits.per_thread).
        "assistant.threads.setStatus": Budget(3, 3.0),
    }


@dataclass
class RateLimits:
    """Per-method budgets. A method absent from ``budgets`` is never rate limited."""

    enabled: bool = True
    budgets: dict[str, Budget] = field(default_factory=_default_budgets)
    #: Methods whose budget is counted per channel instead of per workspace.
    per_channel: set[str] = field(default_factory=lambda: {"chat.postMessage"})
    #: Methods whose budget is counted per thread (channel and ``thread_ts``).
    per_thread: set[str] = field(default_factory=lambda: {"assistant.threads.setStatus"})

    def key(self, method: str, params: dict[str, Any], team_id: str) -> str:
        """Whose budget a call draws from: the workspace's, a channel's or a thread's."""
        channel = str(params.get("channel") or params.get("channel_id") or "")
        if method in self.per_thread:
            return f"{channel}:{params.get('thread_ts') or ''}"
        if method in self.per_channel:
            return channel
        return team_id


class Limiter:
    """Sliding-window bookkeeping for :class:`RateLimits` (one window per method/key/budget)."""

    def __init__(self) -> None:
        self._windows: dict[tuple[str, str, Budget], deque[float]] = {}

    def reset(self) -> None:
        self._windows.clear()

    def check(self, method: str, key: str, budget: Budget, now: float) -> int | None:
        """Record an accepted call and return None, or return the Retry-After seconds."""
        hits = self._windows.setdefault((method, key, budget), deque())
        while hits and now - hits[0] >= budget.per_seconds:
            hits.popleft()
        if len(hits) >= budget.calls:
            wait = budget.per_seconds - (now - hits[0])
            return max(1, math.ceil(wait))
        hits.append(now)
        return None


@dataclass
class MessageLimits:
    """Size limits of message content."""

    #: ``chat.update`` ``text``: documented limit 4,000 characters -> ``msg_too_long``.
    update_text_max: int = 4000
    #: ``chat.postMessage`` ``text``. Real Slack documents truncation at 40,000 characters (with a
    #: ``message_truncated`` warning) and asks for at most 4,000; the fake is strict by default and
    #: answers ``msg_too_long`` above this value, so code that passes here is safe there.
    post_text_max: int = 4000
    #: ``markdown_text`` (postMessage, update, start/append/stopStream): documented 12,000 chars.
    markdown_text_max: int = 12000
    #: Error for an over-long ``markdown_text``. Not in Slack's published error lists (unverified);
    #: seen reported as ``markdown_text_too_long``.
    markdown_too_long_error: str = "markdown_text_too_long"
    #: Section block text (documented 3,000) -> ``invalid_blocks``.
    section_text_max: int = 3000
    #: ``markdown`` block text (documented 12,000 per payload) -> ``invalid_blocks``.
    markdown_block_max: int = 12000
    #: Blocks per message (documented 50) -> ``invalid_blocks``.
    max_blocks: int = 50


@dataclass
class StreamingConfig:
    """Native streaming (chat.startStream/appendStream/stopStream) behaviour."""

    #: When set, every ``chat.startStream`` answers this error (e.g. ``"not_allowed_token_type"``
    #: or ``"channel_type_not_supported"``): a workspace where streaming is unavailable.
    refuse: str | None = None
    #: Reported behaviour of some workspaces: streaming only in DMs; elsewhere
    #: ``channel_type_not_supported``.
    dm_only: bool = False
    #: Documented: ``recipient_team_id``/``recipient_user_id`` are required outside DMs
    #: (``missing_recipient_team_id`` / ``missing_recipient_user_id``).
    require_recipient_outside_dm: bool = True
    #: Reported: a stream expires about 5 minutes after it started; later appends and stops answer
    #: ``message_not_in_streaming_state``.
    expiry_seconds: float = 300.0
    #: Reported: ``chat.update`` on a message that is still streaming -> ``streaming_state_conflict``.
    update_conflict: bool = True


@dataclass
class AgentConfig:
    """How the app is set up for Slack's AI surfaces (the manifest's ``features``)."""

    #: ``"agent_view"`` (the Agent messaging experience: the Messages tab, ``app_home_opened``
    #: with ``tab: "messages"``, ``app_context_changed``), ``"assistant_view"`` (the older
    #: assistant split view, where ``thread_ts`` is required) or None (neither: the
    #: ``assistant.threads.setSuggestedPrompts`` call answers ``not_agent_app``).
    view: str | None = "agent_view"
    #: Slack removes a thread's status two minutes after it was set if no message came.
    status_timeout: float = 120.0


@dataclass
class ApiFault:
    """A scripted failure of one Web API method (see ``FakeSlack.fail``).

    Answers ``status`` with ``{"ok": false, "error": error}`` (a 5xx, or a 429 with
    ``Retry-After``) for the next ``times`` matching calls (None: every one), before any other
    check. ``match`` picks calls by their parameters (e.g. one message's ``ts``).
    """

    method: str
    status: int = 500
    error: str = "internal_error"
    times: int | None = 1
    match: Callable[[dict[str, Any]], bool] | None = None
    retry_after: int | None = None
    hits: int = 0

    def applies(self, method: str, params: dict[str, Any]) -> bool:
        if method != self.method or (self.times is not None and self.hits >= self.times):
            return False
        return self.match is None or bool(self.match(params))
