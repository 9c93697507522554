"""Reading a Slack thread back (``conversations.replies``) as context for the core.

Used when Parley is mentioned in a thread it has not answered in ("@parley summarize this
thread"), and by the "Summarize thread" shortcut. Bounded: at most ``PARLEY_CONTEXT_MESSAGES``
messages (the thread's first message and the newest of those read before the trigger), and at
most ``_MAX_PAGES`` pages of ``_PAGE`` read (Slack pages a thread oldest first, so a thread longer
than that is read from its start). Each message keeps its ``ts`` as ``platform_id`` so the core
stores it only once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.slack.text import mentioned_users, message_markdown, strip_mention, to_plain
from adapters.slack.workspace import Identity, Workspace
from bot.types import Attachment, Author, ContextMessage

log = logging.getLogger("parley.slack")

_PAGE = 200
_MAX_PAGES = 5
# Message subtypes that are a person (or bot) saying something; edits, deletions, joins and
# Parley's own message_changed echoes are not.
SPOKEN_SUBTYPES = frozenset({None, "file_share", "thread_broadcast", "bot_message", "me_message"})


async def read_thread(
    ws: Workspace,
    identity: Identity,
    channel: str,
    thread_ts: str,
    *,
    before_ts: str | None,
    include_own: bool,
) -> list[ContextMessage]:
    """The thread up to (not including) ``before_ts``; Parley's own messages only if ``include_own``.

    Never raises: a thread that cannot be read gives no context (the question is still answered).
    """
    limit = ws.settings.parley_context_messages
    if limit <= 0:
        return []
    try:
        raw = await _replies(ws, channel, thread_ts, before_ts)
    except Exception as exc:
        log.warning("could not read thread %s in %s: %s", thread_ts, channel, exc)
        return []
    kept = _newest(_spoken(raw, identity, before_ts, include_own), thread_ts, limit)
    # Bots are named by their bot_profile; people need a users.info look-up (cached).
    users = [str(m["user"]) for m in kept if m.get("user") and not m.get("bot_id")]
    for m in kept:
        users.extend(mentioned_users(message_markdown(m)))
    names = await ws.directory.names(u for u in users if u != identity.user_id)
    return [_context(ws, m, identity, names) for m in kept]


async def _replies(
    ws: Workspace, channel: str, thread_ts: str, before_ts: str | None
) -> list[Mapping[str, Any]]:
    """``conversations.replies``, page after page (at most ``_MAX_PAGES``), oldest first."""
    raw: list[Mapping[str, Any]] = []
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        response = await ws.client.conversations_replies(
            channel=channel, ts=thread_ts, limit=_PAGE, cursor=cursor, latest=before_ts, inclusive=False
        )
        raw.extend(m for m in response.get("messages") or [] if isinstance(m, Mapping))
        cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
        if not response.get("has_more") or not cursor:
            break
    return raw


def _spoken(
    raw: Sequence[Mapping[str, Any]], identity: Identity, before_ts: str | None, include_own: bool
) -> list[Mapping[str, Any]]:
    """What people and bots said before ``before_ts`` (Parley's own only if ``include_own``)."""
    if before_ts is not None:
        raw = [m for m in raw if float(m.get("ts") or 0) < float(before_ts)]
    return [
        m
        for m in raw
        if m.get("subtype") in SPOKEN_SUBTYPES and _said_by(m) and (include_own or not _own(m, identity))
    ]


def _newest(raw: list[Mapping[str, Any]], thread_ts: str, limit: int) -> list[Mapping[str, Any]]:
    """At most ``limit`` messages: the first says what the thread is about, the newest where it stands."""
    if len(raw) <= limit:
        return raw
    first = [raw[0]] if raw[0].get("ts") == thread_ts else []
    return first + raw[len(raw) - (limit - len(first)) :]


def _context(
    ws: Workspace, m: Mapping[str, Any], identity: Identity, names: Mapping[str, str]
) -> ContextMessage:
    files = ws.files.attachments(m.get("files") or [])
    return ContextMessage(
        author=_author(m, identity, names),
        text=_text(m, identity, names, files),
        from_assistant=_own(m, identity),
        attachments=files,
        platform_id=str(m.get("ts") or ""),
    )


def _said_by(m: Mapping[str, Any]) -> bool:
    return bool(m.get("user") or m.get("bot_id"))


def _own(m: Mapping[str, Any], identity: Identity) -> bool:
    return m.get("user") == identity.user_id or (bool(identity.bot_id) and m.get("bot_id") == identity.bot_id)


def _author(m: Mapping[str, Any], identity: Identity, names: Mapping[str, str]) -> Author:
    if _own(m, identity):
        return Author(identity.user_id, "Parley", is_bot=True)
    if m.get("bot_id"):
        profile = m.get("bot_profile") or {}
        name = profile.get("name") or m.get("username") or m.get("bot_id")
        return Author(str(m.get("user") or m.get("bot_id")), str(name), is_bot=True)
    user = str(m.get("user"))
    return Author(user, names.get(user, user))


def _text(
    m: Mapping[str, Any], identity: Identity, names: Mapping[str, str], files: Sequence[Attachment]
) -> str:
    text = to_plain(strip_mention(message_markdown(m), identity.user_id), names)
    if not text and files:
        # A file posted without words still belongs to the conversation.
        text = "(shared " + ", ".join(f.name for f in files) + ")"
    return text
