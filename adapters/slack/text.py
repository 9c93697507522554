"""Slack's message markup → the plain text the model reads.

Slack sends ``<@U123>``, ``<#C123|general>``, ``<https://x|label>`` and HTML-escapes ``& < >``.
The model understands names and URLs better than ids, so mentions become ``@Name`` (names come
from the user directory), and the bot's own mention is removed from the question.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|([^>]*))?>")
_CHANNEL = re.compile(r"<#([CGD][A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")
_SUBTEAM = re.compile(r"<!subteam\^([A-Z0-9]+)(?:\|([^>]*))?>")
_DATE = re.compile(r"<!date\^[^|>]*\|([^>]*)>")
_LINK = re.compile(r"<((?:https?|mailto|tel):[^|>]+)(?:\|([^>]*))?>")
_SPACES = re.compile(r"[ \t]{2,}")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")


def mentioned_users(text: str) -> list[str]:
    """User ids mentioned in ``text``, in order, without repeats."""
    return list(dict.fromkeys(m.group(1) for m in _USER.finditer(text)))


def mentions(text: str, user_id: str) -> bool:
    return any(m.group(1) == user_id for m in _USER.finditer(text))


def strip_mention(text: str, user_id: str) -> str:
    """``text`` without any ``<@user_id>``; the spaces it leaves behind are collapsed."""
    out = _USER.sub(lambda m: "" if m.group(1) == user_id else m.group(0), text)
    return _SPACES.sub(" ", out).strip()


def to_plain(text: str, names: Mapping[str, str]) -> str:
    """Slack markup → readable text. ``names`` maps user ids to display names (unknown ids stay)."""

    def user(m: re.Match[str]) -> str:
        return "@" + (names.get(m.group(1)) or m.group(2) or m.group(1))

    def link(m: re.Match[str]) -> str:
        url, label = m.group(1), m.group(2)
        if url.startswith("mailto:") and label:
            return label
        return f"{label} ({url})" if label and label != url else url

    out = _USER.sub(user, text)
    out = _CHANNEL.sub(lambda m: "#" + (m.group(2) or m.group(1)), out)
    out = _SPECIAL.sub(lambda m: "@" + m.group(1), out)
    out = _SUBTEAM.sub(lambda m: "@" + (m.group(2) or m.group(1)).lstrip("@"), out)
    out = _DATE.sub(lambda m: m.group(1), out)
    out = _LINK.sub(link, out)
    # Unescape last, so an escaped "&lt;@U1&gt;" typed by a user never turns into a mention.
    return out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def to_mrkdwn(markdown: str) -> str:
    """The Markdown of Parley's own short sentences (bot.controls) as Slack mrkdwn, for answers
    that go out as ``text``: ``**bold**`` is ``*bold*`` there; code, quotes and mentions are alike."""
    return _BOLD.sub(r"*\1*", markdown)


def message_markdown(message: Mapping[str, Any]) -> str:
    """A message's full text: the Markdown of its ``markdown`` blocks when it has them.

    Parley's own replies carry the answer in a markdown block and only a short notification
    fallback in ``text``; reading the block gives the model the whole answer back.
    """
    blocks = message.get("blocks") or []
    parts = [str(b.get("text", "")) for b in blocks if isinstance(b, dict) and b.get("type") == "markdown"]
    if parts:
        return "\n".join(parts)
    return str(message.get("text") or "")
