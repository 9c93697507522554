"""Discord message text → what the model reads, and thread names.

Discord writes mentions as ``<@id>`` (``<@!id>`` from older clients), ``<@&role>`` and
``<#channel>``. Parley's own mention is removed (it only says "this is for you"); the others
become readable names, as the people in the channel see them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import discord

THREAD_NAME_CHARS = 60  # Discord allows 100; shorter names stay readable in the thread list
FALLBACK_THREAD_NAME = "Parley"

_USER = re.compile(r"<@!?(\d+)>")
_ROLE = re.compile(r"<@&(\d+)>")
_CHANNEL = re.compile(r"<#(\d+)>")
_MARKUP = re.compile(r"[*_~`>|#]+")
_SPACE = re.compile(r"\s+")


def strip_self(content: str, self_id: int, role_id: int | None = None) -> str:
    """``content`` without Parley's user mentions (both forms) or its managed role's mention."""
    text = re.sub(rf"<@!?{self_id}>", " ", content)
    if role_id is not None:
        text = text.replace(f"<@&{role_id}>", " ")
    return text


def readable(
    content: str,
    users: Mapping[int, str],
    roles: Mapping[int, str] = {},
    channels: Mapping[int, str] = {},
) -> str:
    """Mentions replaced by ``@name`` / ``#channel``; unknown ids keep their raw form."""

    def sub(pattern: re.Pattern[str], names: Mapping[int, str], prefix: str, text: str) -> str:
        def name(m: re.Match[str]) -> str:
            known = names.get(int(m.group(1)))
            return m.group(0) if known is None else f"{prefix}{known}"

        return pattern.sub(name, text)

    text = sub(_USER, users, "@", content)
    text = sub(_ROLE, roles, "@", text)
    return sub(_CHANNEL, channels, "#", text)


def message_text(message: discord.Message, self_id: int | None, role_id: int | None = None) -> str:
    """The text of a Discord message as the model should read it (Parley's mention removed)."""
    content = message.content or ""
    if self_id is not None:
        content = strip_self(content, self_id, role_id)
    users = {u.id: _display(u) for u in message.mentions}
    roles = {r.id: r.name for r in message.role_mentions}
    channels = {c.id: str(getattr(c, "name", c.id)) for c in message.channel_mentions}
    return _tidy(readable(content, users, roles, channels))


def self_role_id(message: discord.Message) -> int | None:
    """The id of Parley's managed role in the message's server (people mention it by mistake)."""
    guild = message.guild
    role = guild.self_role if guild is not None else None
    return role.id if role is not None else None


def _display(user: discord.abc.User) -> str:
    return user.display_name


def _tidy(text: str) -> str:
    # A removed leading mention leaves "  question": trim it without touching inner layout.
    lines = text.split("\n")
    lines[0] = lines[0].lstrip()
    return "\n".join(lines).strip()


def thread_name(prompt: str, limit: int = THREAD_NAME_CHARS) -> str:
    """A thread title from the first words of the prompt: no Markdown, cut at a word boundary."""
    flat = _SPACE.sub(" ", _MARKUP.sub(" ", _USER.sub("", prompt))).strip()
    if not flat:
        return FALLBACK_THREAD_NAME
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-") + "…"
