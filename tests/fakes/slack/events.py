"""Payloads as Slack sends them (Events API callbacks, slash commands, interactivity) and signing.

Shapes follow Slack's documented examples; the fields Bolt reads (``event_id``, ``team_id``,
``authorizations``, ``event.channel``/``user``/``ts``/``thread_ts``, ``channel_type``) are all present.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")
_ids = itertools.count(1)


@dataclass(frozen=True)
class Identity:
    """Who the workspace and the app are."""

    team_id: str = "T0FAKE0001"
    team_domain: str = "fakeworkspace"
    bot_user_id: str = "U0BOT00001"
    bot_id: str = "B0BOT00001"
    app_id: str = "A0APP00001"
    bot_name: str = "parley"
    verification_token: str = "fake-verification-token"


def new_event_id() -> str:
    return f"Ev{next(_ids):08d}FAKE"


def new_trigger_id() -> str:
    return f"{next(_ids)}.{int(time.time())}.{uuid.uuid4().hex[:32]}"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}`` with the signing secret."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def rich_text_blocks(text: str) -> list[dict[str, Any]]:
    """The ``rich_text`` block Slack clients attach to a typed message (mentions become user elements)."""
    elements: list[dict[str, Any]] = []
    pos = 0
    for m in _MENTION.finditer(text):
        if m.start() > pos:
            elements.append({"type": "text", "text": text[pos : m.start()]})
        elements.append({"type": "user", "user_id": m.group(1)})
        pos = m.end()
    if pos < len(text):
        elements.append({"type": "text", "text": text[pos:]})
    return [
        {
            "type": "rich_text",
            "block_id": uuid.uuid4().hex[:5],
            "elements": [{"type": "rich_text_section", "elements": elements}],
        }
    ]


def event_callback(ident: Identity, event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    """Wrap an inner event in the ``event_callback`` envelope of the Events API."""
    return {
        "token": ident.verification_token,
        "team_id": ident.team_id,
        "context_team_id": ident.team_id,
        "context_enterprise_id": None,
        "api_app_id": ident.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or new_event_id(),
        "event_time": int(float(event.get("event_ts") or event.get("ts") or time.time())),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": ident.team_id,
                "user_id": ident.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + uuid.uuid4().hex,
    }


def user_message_event(
    ident: Identity,
    *,
    kind: str,
    channel: str,
    channel_type: str,
    user: str,
    text: str,
    ts: str,
    thread_ts: str | None = None,
    files: list[dict[str, Any]] | None = None,
    parent_user_id: str | None = None,
) -> dict[str, Any]:
    """``app_mention`` (kind="app_mention") or ``message`` (kind="message") typed by a person."""
    event: dict[str, Any] = {
        "type": kind,
        "user": user,
        "ts": ts,
        "client_msg_id": str(uuid.uuid4()),
        "text": text,
        "team": ident.team_id,
        "channel": channel,
        "event_ts": ts,
    }
    if text:  # a message with only files (an audio clip) has no blocks
        event["blocks"] = rich_text_blocks(text)
    if kind == "message":
        event["channel_type"] = channel_type
    if thread_ts:
        event["thread_ts"] = thread_ts
        event["parent_user_id"] = parent_user_id or user
    if files:
        event["files"] = files
        event["upload"] = False
        event["display_as_bot"] = False
        if kind == "message":
            event["subtype"] = "file_share"
    return event


def bot_message_event(
    *,
    channel: str,
    channel_type: str,
    bot_id: str,
    text: str,
    ts: str,
    user: str | None = None,
    app_id: str | None = None,
    thread_ts: str | None = None,
    legacy_subtype: bool = False,
) -> dict[str, Any]:
    """A message posted by an app. Modern apps post as their bot user (``user`` + ``bot_id``);
    ``legacy_subtype=True`` gives the older ``subtype: bot_message`` shape without ``user``."""
    event: dict[str, Any] = {
        "type": "message",
        "text": text,
        "ts": ts,
        "bot_id": bot_id,
        "channel": channel,
        "event_ts": ts,
        "channel_type": channel_type,
    }
    if legacy_subtype:
        event["subtype"] = "bot_message"
        event["username"] = "other-bot"
    if user:
        event["user"] = user
    if app_id:
        event["app_id"] = app_id
        event["bot_profile"] = {"id": bot_id, "app_id": app_id, "name": "bot", "deleted": False}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def message_changed_event(
    *,
    channel: str,
    channel_type: str,
    message: dict[str, Any],
    previous_message: dict[str, Any],
    event_ts: str,
) -> dict[str, Any]:
    return {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "message": message,
        "previous_message": previous_message,
        "channel": channel,
        "channel_type": channel_type,
        "ts": event_ts,
        "event_ts": event_ts,
    }


def message_deleted_event(
    *,
    channel: str,
    channel_type: str,
    deleted_ts: str,
    previous_message: dict[str, Any],
    event_ts: str,
) -> dict[str, Any]:
    return {
        "type": "message",
        "subtype": "message_deleted",
        "hidden": True,
        "deleted_ts": deleted_ts,
        "previous_message": previous_message,
        "channel": channel,
        "channel_type": channel_type,
        "ts": event_ts,
        "event_ts": event_ts,
    }


def slash_command_payload(
    ident: Identity,
    *,
    command: str,
    text: str,
    channel: str,
    channel_name: str,
    user: str,
    user_name: str,
    response_url: str,
) -> dict[str, str]:
    """The form fields of a slash command (HTTP: form-encoded; Socket Mode: this dict as payload)."""
    return {
        "token": ident.verification_token,
        "team_id": ident.team_id,
        "team_domain": ident.team_domain,
        "channel_id": channel,
        "channel_name": channel_name,
        "user_id": user,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": ident.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": new_trigger_id(),
    }


def block_actions_payload(
    ident: Identity,
    *,
    action: dict[str, Any],
    channel: str,
    channel_name: str,
    user: str,
    user_name: str,
    message: dict[str, Any] | None,
    response_url: str,
) -> dict[str, Any]:
    """A ``block_actions`` interaction (button click) on a message."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user, "username": user_name, "name": user_name, "team_id": ident.team_id},
        "api_app_id": ident.app_id,
        "token": ident.verification_token,
        "container": {
            "type": "message",
            "message_ts": (message or {}).get("ts"),
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": new_trigger_id(),
        "team": {"id": ident.team_id, "domain": ident.team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": channel_name},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }
    if message is not None:
        payload["message"] = message
        if message.get("thread_ts"):
            payload["container"]["thread_ts"] = message["thread_ts"]
    return payload


def message_shortcut_payload(
    ident: Identity,
    *,
    callback_id: str,
    channel: str,
    channel_name: str,
    user: str,
    user_name: str,
    message: dict[str, Any],
    response_url: str,
) -> dict[str, Any]:
    """A ``message_action`` interaction (a message shortcut chosen from a message's menu)."""
    return {
        "type": "message_action",
        "token": ident.verification_token,
        "action_ts": f"{time.time():.6f}",
        "team": {"id": ident.team_id, "domain": ident.team_domain},
        "user": {"id": user, "username": user_name, "name": user_name, "team_id": ident.team_id},
        "channel": {"id": channel, "name": channel_name},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": new_trigger_id(),
        "response_url": response_url,
        "message_ts": message.get("ts"),
        "message": message,
    }
