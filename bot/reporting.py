"""What a reply reports when it is done: the observer's figures (metrics implement it) and one
log line, with the same figures as fields of their own in JSON logs (``PARLEY_LOG_JSON``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from bot.types import ConversationKey, Outcome, Usage

log = logging.getLogger("parley.conversation")


class ReplyObserver(Protocol):
    """What the service reports as replies run (metrics implement it)."""

    def reply_started(self, platform: str, model: str) -> None: ...

    def reply_finished(self, reply: ReplyReport) -> None: ...


@dataclass(frozen=True, slots=True)
class ReplyReport:
    """One finished reply's figures; times are seconds since its message arrived."""

    conversation_id: int
    key: ConversationKey
    model: str
    outcome: Outcome
    usage: Usage
    first_token: float | None
    first_visible: float | None
    total: float


def since(start: float, moment: float | None) -> float | None:
    """Seconds from ``start`` to ``moment`` (monotonic clock), or None if it never came."""
    return None if moment is None else max(0.0, moment - start)


def report(observer: ReplyObserver | None, reply: ReplyReport) -> None:
    """Tell the observer, and log the one line per reply."""
    platform = reply.key.platform
    if observer is not None:
        observer.reply_finished(reply)
    log.info(
        "reply conversation=%s platform=%s model=%s outcome=%s in=%d out=%d "
        "first_token=%s first_visible=%s total=%.2fs",
        reply.conversation_id,
        platform,
        reply.model,
        reply.outcome,
        reply.usage.input_tokens,
        reply.usage.output_tokens,
        _seconds(reply.first_token),
        _seconds(reply.first_visible),
        reply.total,
        extra={
            "event": "reply",
            "conversation_id": reply.conversation_id,
            "conversation": str(reply.key),
            "platform": platform,
            "model": reply.model,
            "outcome": str(reply.outcome),
            "tokens_in": reply.usage.input_tokens,
            "tokens_out": reply.usage.output_tokens,
            "first_token_s": _rounded(reply.first_token),
            "first_visible_s": _rounded(reply.first_visible),
            "total_s": round(reply.total, 3),
        },
    )


def error_detail(error: Exception | None) -> str | None:
    """What a reply's row keeps of the error that ended it (the store masks credentials)."""
    if error is None:
        return None
    detail = getattr(error, "detail", "") or str(error)
    return f"{type(error).__name__}: {detail}"[:500]


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"
