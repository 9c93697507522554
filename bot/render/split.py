"""Cutting a long Markdown reply into messages that each fit the platform's length limit.

Pure functions. The stream calls :func:`cut_tail` on the part of a reply that is not frozen yet
and freezes whatever it returns; :func:`split_markdown` applies the same rule to a whole text.

A part is ``reopen + body + close``: ``body`` is a slice of the original Markdown (so joining the
bodies gives the original back), ``close`` ends a code fence that was open where the cut fell and
``reopen`` opens it again, with the same info string, at the start of the next part.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass

Render = Callable[[str], str]

# render() is assumed never to shrink Markdown below 1/_SHRINK of its length.
_SHRINK = 4
# How far past the cut bound a line is read to see whether it is a fence line.
_LINE_LOOKAHEAD = 1000

# Below this a part cannot hold a reopened fence, a closing fence and some text at the same time.
MIN_MAX_CHARS = 20

# A line that may open or close a fence. Any indentation counts: models put fences inside list
# items indented four spaces or more, and the platforms render those as code as well.
_FENCE_LINE = re.compile(r"^[ \t]*(`{3,}|~{3,})([^\n]*)$", re.MULTILINE)
# Text that would turn into a fence line if a cut put it at the start of a line.
_FENCE_START = re.compile(r"[ \t]*(?:```|~~~)")
_SENTENCE_END = re.compile(r"[.!?][\"')\]*_]*[ \t]+|[。！？]")


@dataclass(frozen=True, slots=True)
class Fence:
    """An open code fence: its marker (```` ``` ````, ``~~~~``…) and the line that opened it."""

    marker: str
    line: str

    @property
    def indent(self) -> str:
        return self.line[: len(self.line) - len(self.line.lstrip(" \t"))]


@dataclass(frozen=True, slots=True)
class Part:
    body: str
    reopen: str = ""
    close: str = ""

    @property
    def markdown(self) -> str:
        return self.reopen + self.body + self.close


def _identity(text: str) -> str:
    return text


def fence_after(text: str, fence: Fence | None = None) -> Fence | None:
    """The fence still open at the end of ``text`` (None if none), starting in state ``fence``."""
    for m in _FENCE_LINE.finditer(text):
        run, rest = m.group(1), m.group(2)
        if fence is None:
            if run[0] == "`" and "`" in rest:
                continue  # CommonMark: a backtick fence's info string has no backticks
            fence = Fence(run, m.group(0))
        elif run[0] == fence.marker[0] and len(run) >= len(fence.marker) and not rest.strip():
            fence = None
    return fence


def _reopen(fence: Fence | None, max_chars: int) -> str:
    if fence is None:
        return ""
    # An absurdly long opening line would eat the next part: drop the info string, and for an
    # absurdly long marker use a three-character one (the original closing fence, never shorter,
    # still closes it; only a shorter fence-like line inside the code could close it early).
    for line in (fence.line, fence.marker, fence.marker[0] * 3):
        if len(line) <= max_chars // 4:
            break
    return line + "\n"


def _close(head: str, fence: Fence | None) -> str:
    if fence is None:
        return ""
    return ("" if head.endswith("\n") else "\n") + fence.indent + fence.marker


def whole_part(tail: str, fence: Fence | None, max_chars: int) -> tuple[Part, Fence | None]:
    """``tail`` as one part (its fence reopened, any fence left open closed) and the fence open at its end.

    While streaming this closes the code block the model is still writing, so the platform shows
    it as code rather than as raw backticks.
    """
    reopen = _reopen(fence, max_chars)
    text = reopen + tail
    after = fence_after(text)
    return Part(tail, reopen, _close(text, after)), after


class _FenceLines:
    """Where the fence-looking lines of a text are, and which of them open or close a fence."""

    def __init__(self, text: str) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []  # index of the line's "\n" (or len(text))
        self.opens: set[int] = set()  # ends of lines that open a fence
        self.closes: set[int] = set()  # starts of lines that close one
        fence: Fence | None = None
        for m in _FENCE_LINE.finditer(text):
            self.starts.append(m.start())
            self.ends.append(m.end())
            before = fence
            fence = fence_after(m.group(0), fence)
            if before is None and fence is not None:
                self.opens.add(m.end())
            elif before is not None and fence is None:
                self.closes.add(m.start())

    def inside_line(self, c: int) -> bool:
        """True if a cut at ``c`` would split a fence-looking line (or drop its newline)."""
        i = bisect_left(self.starts, c) - 1  # last line starting before c
        return i >= 0 and c <= self.ends[i]

    def safe(self, text: str, c: int) -> bool:
        """A cut at ``c`` keeps every fence as it is in the original text."""
        if self.inside_line(c):
            return False
        # A mid-line cut must not start the next part with something that reads as a fence.
        return text[c - 1] == "\n" or _FENCE_START.match(text, c) is None

    def clean(self, text: str, c: int) -> bool:
        """Safe, and leaves no empty code block on either side of the cut."""
        if not self.safe(text, c):
            return False
        return (c - 1) not in self.opens and c not in self.closes


def _after_each(text: str, needle: str, low: int, high: int) -> Iterator[int]:
    """Positions just after each ``needle`` that lie in ``[low, high]``, last first."""
    end = high
    start = max(0, low - len(needle))
    while True:
        i = text.rfind(needle, start, end)
        if i < 0 or i + len(needle) < low:
            return
        yield i + len(needle)
        end = i + len(needle) - 1


def _sentence_ends(text: str, low: int, high: int) -> Iterator[int]:
    ends = [m.end() for m in _SENTENCE_END.finditer(text, max(0, low - 8), high) if m.end() >= low]
    return reversed(ends)


def _choose_cut(text: str, lo: int, hi: int, lines: _FenceLines) -> int:
    """Where to end the part: the last clean boundary in the upper half of ``(lo, hi]``.

    Paragraph, then line, then sentence, then word; a hard cut only when none exists, so a part
    is never much shorter than it could be.
    """
    low = max(lo + 1, lo + (hi - lo) // 2)
    searches = (
        _after_each(text, "\n\n", low, hi),
        _after_each(text, "\n", low, hi),
        _sentence_ends(text, low, hi),
        _after_each(text, " ", low, hi),
    )
    for candidates in searches:
        for c in candidates:
            if lines.clean(text, c):
                return c
    for c in range(hi, lo, -1):
        if lines.safe(text, c):
            return c
    return hi


def cut_tail(
    tail: str, fence: Fence | None, max_chars: int, render: Render = _identity
) -> tuple[Part, Fence | None] | None:
    """The first part to freeze if ``tail`` does not fit in one message, else None.

    ``fence`` is the fence open where ``tail`` starts. Returns the part (its rendered text is at
    most ``max_chars`` whenever render() expands text by less than the limit) and the fence open
    after it. The body is never empty, so calling this in a loop always finishes.
    """
    if max_chars < MIN_MAX_CHARS:
        raise ValueError(f"max_chars must be at least {MIN_MAX_CHARS}, got {max_chars}")
    reopen = _reopen(fence, max_chars)
    # Only the start of a long tail matters, which keeps splitting a whole long reply linear.
    # A tail this much longer than the limit is taken not to fit without rendering it all.
    if len(tail) <= _SHRINK * max_chars:
        whole, _ = whole_part(tail, fence, max_chars)
        if len(render(whole.markdown)) <= max_chars:
            return None
    lo = len(reopen)
    # Markdown length first; render() expansion and the closing fence are then measured and the
    # bound lowered by the excess until the rendered part fits.
    hi = max(lo + 1, min(lo + len(tail) - 1, max_chars))
    # Cut decisions look at most at the line running across ``hi``.
    line_end = tail.find("\n", hi - lo)
    scope = hi - lo + _LINE_LOOKAHEAD if line_end < 0 else min(line_end + 1, hi - lo + _LINE_LOOKAHEAD)
    text = reopen + tail[:scope]
    lines = _FenceLines(text)
    while True:
        c = _choose_cut(text, lo, hi, lines)
        head = text[:c]
        after = fence_after(head)
        part = Part(head[lo:], reopen, _close(head, after))
        excess = len(render(part.markdown)) - max_chars
        if excess <= 0 or c <= lo + 1:
            return part, after
        hi = max(lo + 1, c - excess)


def split_markdown(markdown: str, max_chars: int, render: Render = _identity) -> list[Part]:
    """Split a whole reply into parts the way the stream freezes it.

    A whitespace-only remainder after the last cut is dropped (a blank message cannot be sent),
    so the joined bodies equal ``markdown`` up to trailing whitespace.
    """
    parts: list[Part] = []
    fence: Fence | None = None
    rest = markdown
    while (cut := cut_tail(rest, fence, max_chars, render)) is not None:
        part, fence = cut
        parts.append(part)
        rest = rest[len(part.body) :]
    if rest.strip() or not parts:
        parts.append(whole_part(rest, fence, max_chars)[0])
    return parts
