"""The people's clicks: slash commands, buttons, Slack's feedback buttons, shortcuts, modals.

Every payload is built from what the fake stores (the message as it is now, the modal as the app
opened it) and delivered like Slack's interactivity: form-encoded ``payload=`` over signed HTTP,
or an ``interactive`` envelope over Socket Mode, never retried. Each carries a fresh
``trigger_id`` (good for one ``views.open`` within 3 s) and, where Slack gives one, a
``response_url`` whose posts land in ``fs.responses``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Literal

from . import events as ev
from .acting import Acting
from .delivery import Delivery, Mode
from .sending import Target
from .views import OpenedView, state_values, view_submission_payload
from .workspace import DEFAULT_CHANNEL, DEFAULT_USER


def find_element(
    blocks: list[dict[str, Any]] | None, action_id: str, kind: str | None = None
) -> tuple[str, dict[str, Any]] | None:
    """(block_id, element) of the interactive element ``action_id`` in a message's blocks."""
    for block in blocks or []:
        candidates = list(block.get("elements") or [])
        if isinstance(block.get("accessory"), dict):
            candidates.append(block["accessory"])
        for element in candidates:
            if not isinstance(element, dict) or element.get("action_id") != action_id:
                continue
            if kind is None or element.get("type") == kind:
                return str(block.get("block_id", "")), element
    return None


def feedback_elements(blocks: list[dict[str, Any]] | None) -> list[tuple[str, dict[str, Any]]]:
    """Every ``feedback_buttons`` element (inside ``context_actions`` blocks) of a message."""
    found = []
    for block in blocks or []:
        if block.get("type") != "context_actions":
            continue
        for element in block.get("elements") or []:
            if isinstance(element, dict) and element.get("type") == "feedback_buttons":
                found.append((str(block.get("block_id", "")), element))
    return found


class Interacting(Acting):
    """Interactivity payloads and the modal bookkeeping (``fs.views``, triggers)."""

    triggers: dict[str, tuple[float, str]]
    exchanged_triggers: set[str]
    views: dict[str, OpenedView]
    _response_seq: int

    def issue_trigger(self, user: str) -> str:
        trigger = ev.new_trigger_id()
        self.triggers[trigger] = (self.now(), user)
        return trigger

    def _new_response_url(self) -> str:
        self._response_seq += 1
        return f"{self.base_url}/response-url/R{self._response_seq:05d}"

    def _interaction(
        self, build: Callable[..., dict[str, Any]], channel: str, user: str, **fields: Any
    ) -> dict[str, Any]:
        """A payload from one of ``events``' builders with what every interaction carries (the
        channel's and user's names, a fresh ``response_url``); its ``trigger_id`` is recorded."""
        ch = self.channels[channel]
        u = self.users.get(user)
        payload = build(
            self.identity,
            channel=channel,
            channel_name="directmessage" if ch.is_dm else ch.name,
            user=user,
            user_name=u.name if u else user,
            response_url=self._new_response_url(),
            **fields,
        )
        self.triggers[payload["trigger_id"]] = (self.now(), user)
        return payload

    async def slash_command(
        self,
        command: str,
        text: str = "",
        *,
        channel: str = DEFAULT_CHANNEL,
        user: str = DEFAULT_USER,
        mode: Mode = "socket",
        url: Target | None = None,
    ) -> Delivery:
        """A user runs a slash command. HTTP: form-encoded fields; Socket Mode: ``slash_commands``."""
        payload = self._interaction(ev.slash_command_payload, channel, user, command=command, text=text)
        return await self.deliver("slash_commands", payload, mode=mode, url=url)

    def _block_actions(
        self, action: dict[str, Any], channel: str, message_ts: str | None, user: str
    ) -> dict[str, Any]:
        message = self.messages[(channel, message_ts)].to_api(self.identity.team_id) if message_ts else None
        return self._interaction(ev.block_actions_payload, channel, user, action=action, message=message)

    async def click_button(
        self,
        action_id: str,
        *,
        value: str | None = None,
        block_id: str | None = None,
        text: str | None = None,
        channel: str = DEFAULT_CHANNEL,
        message_ts: str | None = None,
        user: str = DEFAULT_USER,
        mode: Mode = "socket",
        url: Target | None = None,
        strict: bool = False,
    ) -> Delivery:
        """A user clicks a button (``block_actions``) on the stored message ``message_ts``.

        When the message has a button ``action_id``, its ``block_id``, ``value`` and text are
        sent (arguments given here win); ``strict=True`` raises ``ValueError`` when it has none,
        as a user could not click it.
        """
        found = None
        if message_ts is not None:
            msg = self.messages[(channel, message_ts)]
            found = None if msg.deleted else find_element(msg.blocks, action_id, "button")
            if found is None and strict:
                raise ValueError(f"message {message_ts} has no button {action_id!r}")
        element = found[1] if found else {}
        label = text if text is not None else str((element.get("text") or {}).get("text", "Button"))
        action = {
            "type": "button",
            "action_id": action_id,
            "block_id": block_id if block_id is not None else (found[0] if found else "actions"),
            "text": {"type": "plain_text", "text": label, "emoji": True},
            "value": value if value is not None else str(element.get("value", "")),
            "action_ts": f"{time.time():.6f}",
        }
        if element.get("style"):
            action["style"] = element["style"]
        payload = self._block_actions(action, channel, message_ts, user)
        return await self.deliver("interactive", payload, mode=mode, url=url)

    async def click_feedback(
        self,
        message_ts: str,
        choice: Literal["positive", "negative"],
        *,
        channel: str = DEFAULT_CHANNEL,
        user: str = DEFAULT_USER,
        mode: Mode = "socket",
        url: Target | None = None,
    ) -> Delivery:
        """A user presses 👍 (``"positive"``) or 👎 (``"negative"``) of the message's feedback buttons.

        The message must carry a ``context_actions`` block with a ``feedback_buttons`` element
        (``ValueError`` otherwise). The ``block_actions`` action is ``{"type": "feedback_buttons",
        "action_id", "block_id", "value", "text", "action_ts"}`` with the pressed button's value.
        Slack itself changes nothing on the message.
        """
        msg = self.messages[(channel, message_ts)]
        elements = [] if msg.deleted else feedback_elements(msg.blocks)
        if not elements:
            raise ValueError(f"message {message_ts} has no feedback buttons")
        block_id, element = elements[0]
        button = element[f"{choice}_button"]
        action = {
            "type": "feedback_buttons",
            "action_id": str(element.get("action_id", "")),
            "block_id": block_id,
            "value": str(button.get("value", "")),
            "text": dict(button.get("text") or {}),
            "action_ts": f"{time.time():.6f}",
        }
        payload = self._block_actions(action, channel, message_ts, user)
        return await self.deliver("interactive", payload, mode=mode, url=url)

    async def message_shortcut(
        self,
        callback_id: str,
        *,
        channel: str = DEFAULT_CHANNEL,
        message_ts: str,
        user: str = DEFAULT_USER,
        mode: Mode = "socket",
        url: Target | None = None,
    ) -> Delivery:
        """A user runs a message shortcut on a stored message."""
        message = self.messages[(channel, message_ts)].to_api(self.identity.team_id)
        payload = self._interaction(
            ev.message_shortcut_payload, channel, user, callback_id=callback_id, message=message
        )
        return await self.deliver("interactive", payload, mode=mode, url=url)

    # ------------------------------------------------------------------ modals

    def opened_views(self, callback_id: str | None = None) -> list[OpenedView]:
        """Modals the app opened (oldest first), optionally only those with ``callback_id``."""
        return [v for v in self.views.values() if callback_id is None or v.callback_id == callback_id]

    async def submit_view(
        self,
        view_id: str,
        answers: dict[str, str] | None = None,
        *,
        mode: Mode = "socket",
        url: Target | None = None,
    ) -> Delivery:
        """The user types ``answers`` (action_id -> text) into the open modal and submits it.

        Delivers ``view_submission`` with ``view.state.values``. Once the app acknowledges, the
        view's ``state`` follows its answer: no body or ``response_action: "clear"`` closes it
        (``submitted``), ``"errors"`` keeps it open and records ``errors``, ``"update"`` replaces
        its content.
        """
        opened = self.views[view_id]
        if opened.state == "submitted":
            raise ValueError(f"view {view_id} is closed")
        payload = view_submission_payload(self, opened, state_values(opened, answers or {}))
        delivery = await self.deliver("interactive", payload, mode=mode, url=url)
        opened.submissions.append(delivery)
        task = asyncio.ensure_future(self._after_submission(opened, delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return delivery

    async def _after_submission(self, opened: OpenedView, delivery: Delivery) -> None:
        await delivery.wait_done(within=delivery.ack_timeout + 5)
        if not delivery.acked:
            return
        answer = delivery.response or {}
        action = answer.get("response_action")
        if action == "errors":
            opened.errors.append(dict(answer.get("errors") or {}))
        elif action in ("update", "push") and isinstance(answer.get("view"), dict):
            opened.view = {**answer["view"], "id": opened.id}
            opened.state = "updated" if action == "update" else opened.state
        else:
            opened.state = "submitted"
