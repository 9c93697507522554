"""Feedback in Slack: clicks on the ``feedback_buttons`` of an answer, and "what was wrong?".

Each button's value names its vote and the reply (``up:42``), so a click is understood by any
instance, before or after a restart. The vote itself is :mod:`bot.feedback`'s; the click's
``trigger_id`` names it, so a click delivered twice counts once. A 👎 just cast opens a modal
asking what was wrong (``views.open`` with that trigger, within Slack's 3 seconds); its answer is
kept with the vote. The access policy applies to the buttons as it does to messages.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp

from adapters.slack.commands import Respond, tell, text_at
from adapters.slack.surface import FEEDBACK_ACTION
from adapters.slack.text import to_mrkdwn
from adapters.slack.workspace import Workspace
from bot.controls import NOT_HERE
from bot.feedback import WHY_LABEL, WHY_PLACEHOLDER, WHY_SUBMIT, WHY_TITLE, Vote, reply_id

log = logging.getLogger("parley.slack")

WHY_CALLBACK = "parley_feedback_why"
WHY_BLOCK = "why"
WHY_INPUT = "why"

Ack = Callable[..., Awaitable[None]]


def parse_value(value: str) -> tuple[Vote, int] | None:
    """``up:42`` → (up, 42); None for anything else."""
    vote, _, reply = value.partition(":")
    parsed, number = Vote.parse(vote), reply_id(reply)
    return None if parsed is None or number is None else (parsed, number)


def why_view(reply_id: int) -> dict[str, Any]:
    """The "what was wrong?" modal for reply ``reply_id``."""
    return {
        "type": "modal",
        "callback_id": WHY_CALLBACK,
        "private_metadata": str(reply_id),
        "title": {"type": "plain_text", "text": WHY_TITLE},
        "submit": {"type": "plain_text", "text": WHY_SUBMIT},
        "close": {"type": "plain_text", "text": "Skip"},
        "blocks": [
            {
                "type": "input",
                "block_id": WHY_BLOCK,
                "optional": True,
                "label": {"type": "plain_text", "text": WHY_LABEL},
                "element": {
                    "type": "plain_text_input",
                    "action_id": WHY_INPUT,
                    "multiline": True,
                    "max_length": 3000,
                    "placeholder": {"type": "plain_text", "text": WHY_PLACEHOLDER},
                },
            }
        ],
    }


class FeedbackActions:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def register(self, app: AsyncApp) -> None:
        app.action(FEEDBACK_ACTION)(self._on_vote)
        app.view(WHY_CALLBACK)(self._on_why)

    async def _on_vote(self, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        await ack()
        # The modal must open within 3 s of the click: the vote is one short transaction first.
        self.ws.spawn(self.vote(body, respond), "slack feedback")

    async def vote(self, body: Mapping[str, Any], respond: Respond) -> None:
        actions = body.get("actions")
        action = actions[0] if isinstance(actions, list) and actions else None
        parsed = parse_value(str(action.get("value") or "")) if isinstance(action, Mapping) else None
        user = text_at(body, "user", "id")
        channel = text_at(body, "container", "channel_id") or text_at(body, "channel", "id")
        if parsed is None or not user:
            return
        value, reply_id = parsed
        if not self.ws.admits(user_id=user, channel=channel):
            await tell(respond, to_mrkdwn(NOT_HERE))
            return
        trigger = text_at(body, "trigger_id")
        answer = await self.ws.ctx.feedback.vote("slack", reply_id, user, value, click_id=trigger)
        if answer.ask_why and trigger:
            try:
                await self.ws.client.views_open(trigger_id=trigger, view=why_view(reply_id))
            except Exception as exc:
                log.info("could not ask what was wrong with reply %s: %s", reply_id, exc)
        elif answer.text:
            await tell(respond, to_mrkdwn(answer.text))

    async def _on_why(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        await ack()  # closes the modal
        self.ws.spawn(self.explain(body, view), "slack feedback note")

    async def explain(self, body: Mapping[str, Any], view: Mapping[str, Any]) -> None:
        user = text_at(body, "user", "id")
        reply = reply_id(str(view.get("private_metadata") or ""))
        text = text_at(view, "state", "values", WHY_BLOCK, WHY_INPUT, "value")
        if user and reply is not None and text.strip():
            await self.ws.ctx.feedback.explain(reply, user, text)
