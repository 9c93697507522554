"""What comes in is made safe to store and send: no control characters, no lone surrogates, and a
question (or a line of thread context) no longer than ``PARLEY_MAX_INPUT_CHARS``."""

from __future__ import annotations

import re
from dataclasses import replace

from bot.types import Author, IncomingMessage

# Control characters other than tab and newlines: PostgreSQL refuses NUL in text, the rest is noise.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean(text: str) -> str:
    """Text safe to store and send: no control characters, no lone surrogates."""
    text = _CONTROL.sub("", text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates become "?"
    return text


def clean_author(author: Author) -> Author:
    name = clean(author.name)
    return author if name == author.name else replace(author, name=name)


def trimmed(text: str, limit: int) -> tuple[str, int]:
    """``text`` cut to ``limit`` characters, and its full length."""
    return (text if len(text) <= limit else text[:limit]), len(text)


def question(msg: IncomingMessage, limit: int) -> tuple[str, int]:
    """The message's text cleaned and cut to ``limit``, and the cleaned text's full length."""
    return trimmed(clean(msg.text), limit)


def tidy(msg: IncomingMessage, limit: int) -> tuple[IncomingMessage, int]:
    """``msg`` with its text, its author and its context cleaned and trimmed; and how long its
    question was before trimming (the reply says so when it was cut)."""
    asked, length = question(msg, limit)
    context = [
        replace(c, text=trimmed(clean(c.text), limit)[0], author=clean_author(c.author)) for c in msg.context
    ]
    return replace(msg, text=asked, author=clean_author(msg.author), context=context), length
