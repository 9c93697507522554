"""Modals: ``views.open`` (with the trigger rules) and the ``view_submission`` payload.

A ``trigger_id`` comes with every slash command, button click and shortcut; it can be exchanged
for one modal, once, within three seconds (``expired_trigger_id``, ``exchanged_trigger_id``,
``invalid_trigger_id`` otherwise). Slack fills in the ``block_id`` and ``action_id`` an input
left out, and a submission carries what the user typed in ``view.state.values``.
"""

from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .records import ApiError, Params, require

if TYPE_CHECKING:
    from .interacting import Interacting

#: How long Slack honours a trigger_id.
TRIGGER_SECONDS = 3.0
#: ``view_too_large`` above this (documented 250 kB).
VIEW_MAX_BYTES = 250_000
_ids = itertools.count(1)


@dataclass
class OpenedView:
    """A modal the app opened: the view as Slack stores it, and what became of it."""

    t: float
    trigger_id: str
    user: str
    view: dict[str, Any]
    #: ``open``; ``submitted`` (closed by a submission the app acknowledged plainly or with
    #: ``response_action: "clear"``); ``updated`` views stay open with their new content.
    state: str = "open"
    #: Every submission delivered (the Delivery objects, see ``fs.submit_view``).
    submissions: list[Any] = field(default_factory=list)
    #: ``response_action: "errors"`` answers: the messages shown under the inputs.
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.view["id"])

    @property
    def callback_id(self) -> str:
        return str(self.view.get("callback_id", ""))

    def inputs(self) -> dict[str, tuple[str, str]]:
        """action_id -> (block_id, element type) of every input block."""
        out: dict[str, tuple[str, str]] = {}
        for block in self.view.get("blocks", []):
            element = block.get("element") if block.get("type") == "input" else None
            if isinstance(element, dict):
                out[str(element["action_id"])] = (str(block["block_id"]), str(element.get("type", "")))
        return out


def normalised_view(raw: dict[str, Any], fs_ident: Any, view_id: str) -> dict[str, Any]:
    """The stored view: ids Slack generates filled in, plus the fields ``views.open`` returns."""
    view: dict[str, Any] = json.loads(json.dumps(raw))
    for block in view.get("blocks", []):
        block.setdefault("block_id", uuid.uuid4().hex[:6])
        element = block.get("element")
        if isinstance(element, dict):
            element.setdefault("action_id", uuid.uuid4().hex[:6])
    view.update(
        id=view_id,
        team_id=fs_ident.team_id,
        state={"values": {}},
        hash=f"{next(_ids)}.{uuid.uuid4().hex[:8]}",
        previous_view_id=None,
        root_view_id=view_id,
        app_id=fs_ident.app_id,
        app_installed_team_id=fs_ident.team_id,
        bot_id=fs_ident.bot_id,
    )
    for key, default in (("private_metadata", ""), ("callback_id", ""), ("external_id", "")):
        view.setdefault(key, default)
    view.setdefault("clear_on_close", False)
    view.setdefault("notify_on_close", False)
    return view


def check_view(view: Any) -> dict[str, Any]:
    if not isinstance(view, dict) or view.get("type") != "modal":
        raise ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] invalid `view`"]})
    if not isinstance(view.get("title"), dict):
        raise ApiError(
            "invalid_arguments",
            response_metadata={"messages": ["[ERROR] missing required field: title [json-pointer:/view]"]},
        )
    if len(json.dumps(view)) > VIEW_MAX_BYTES:
        raise ApiError("view_too_large")
    return view


class ViewsApi:
    """``views.open``."""

    def __init__(self, fs: Interacting) -> None:
        self.fs = fs

    def handlers(self) -> dict[str, Any]:
        return {"views.open": self.views_open}

    async def views_open(self, params: Params) -> dict[str, Any]:
        fs = self.fs
        raw = params.get("view")
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError as exc:
                raise ApiError("invalid_arguments") from exc
        if raw is None:
            require(params, "view")
        trigger = str(params.get("trigger_id") or params.get("interactivity_pointer") or "")
        if not trigger:
            raise ApiError("invalid_arguments", response_metadata={"messages": ["invalid `trigger_id`"]})
        issued = fs.triggers.get(trigger)
        if issued is None:
            raise ApiError("invalid_trigger_id")
        if trigger in fs.exchanged_triggers:
            raise ApiError("exchanged_trigger_id")
        if fs.now() - issued[0] > TRIGGER_SECONDS:
            raise ApiError("expired_trigger_id")
        view = normalised_view(check_view(raw), fs.identity, f"V0VIEW{next(_ids):04d}")
        fs.exchanged_triggers.add(trigger)
        opened = OpenedView(fs.now(), trigger, issued[1], view)
        fs.views[opened.id] = opened
        return {"view": view}


def view_submission_payload(fs: Interacting, opened: OpenedView, values: dict[str, Any]) -> dict[str, Any]:
    """What Slack sends when the user presses the modal's submit button."""
    user = fs.users.get(opened.user)
    name = user.name if user else opened.user
    view = json.loads(json.dumps(opened.view))
    view["state"] = {"values": values}
    ident = fs.identity
    return {
        "type": "view_submission",
        "team": {"id": ident.team_id, "domain": ident.team_domain},
        "user": {"id": opened.user, "username": name, "name": name, "team_id": ident.team_id},
        "api_app_id": ident.app_id,
        "token": ident.verification_token,
        "trigger_id": fs.issue_trigger(opened.user),
        "view": view,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def state_values(opened: OpenedView, answers: dict[str, str]) -> dict[str, Any]:
    """``view.state.values`` for typed answers keyed by action_id (unknown ids are refused)."""
    inputs = opened.inputs()
    unknown = set(answers) - set(inputs)
    if unknown:
        raise ValueError(f"view {opened.id} has no input {sorted(unknown)} (has {sorted(inputs)})")
    values: dict[str, Any] = {}
    for action_id, (block_id, kind) in inputs.items():
        values.setdefault(block_id, {})[action_id] = {"type": kind, "value": answers.get(action_id)}
    return values
