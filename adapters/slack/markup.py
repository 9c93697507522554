"""The blocks of Parley's Slack messages: the answer's Markdown, then the Stop button while it
is live, or, on an answer's final message, Slack's own 👍 / 👎 (``feedback_buttons`` in a
``context_actions`` block); and the short ``text`` fallback notifications show."""

from __future__ import annotations

from typing import Any

from bot.render.surface import PLACEHOLDER

__all__ = [
    "FALLBACK_CHARS",
    "FEEDBACK_ACTION",
    "STOP_ACTION",
    "STOP_BLOCK",
    "blocks_for",
    "fallback_text",
    "feedback_block",
]

# The notification fallback: chat.update refuses ``text`` over 4,000 characters (msg_too_long).
FALLBACK_CHARS = 1_500
STOP_ACTION = "parley_stop"
FEEDBACK_ACTION = "parley_feedback"

STOP_BLOCK: dict[str, Any] = {
    "type": "actions",
    "block_id": STOP_ACTION,
    "elements": [
        {
            "type": "button",
            "action_id": STOP_ACTION,
            "text": {"type": "plain_text", "text": "Stop"},
            "style": "danger",
            "value": "stop",
        }
    ],
}


def feedback_block(reply_id: int) -> dict[str, Any]:
    """Slack's own 👍 / 👎 for reply ``reply_id``: the values name the reply, so a click needs no
    memory of this process (``adapters.slack.feedback`` reads them back)."""
    return {
        "type": "context_actions",
        # Slack asks for a new block_id whenever a message changes; one per reply does that.
        "block_id": f"{FEEDBACK_ACTION}_{reply_id}",
        "elements": [
            {
                "type": "feedback_buttons",
                "action_id": FEEDBACK_ACTION,
                "positive_button": {
                    "text": {"type": "plain_text", "text": "👍"},
                    "value": f"up:{reply_id}",
                    "accessibility_label": "This answer was helpful",
                },
                "negative_button": {
                    "text": {"type": "plain_text", "text": "👎"},
                    "value": f"down:{reply_id}",
                    "accessibility_label": "This answer was not helpful",
                },
            }
        ],
    }


def blocks_for(text: str, *, live: bool, rated: int | None = None) -> list[dict[str, Any]]:
    """The Markdown, then the Stop button while live, or the feedback buttons of reply ``rated``."""
    blocks: list[dict[str, Any]] = [{"type": "markdown", "text": text or PLACEHOLDER}]
    if live:
        blocks.append(STOP_BLOCK)
    elif rated is not None:
        blocks.append(feedback_block(rated))
    return blocks


def fallback_text(text: str) -> str:
    return text if len(text) <= FALLBACK_CHARS else text[: FALLBACK_CHARS - 1] + "…"
