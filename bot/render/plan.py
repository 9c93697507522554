"""The planning step: from a reply's latest text and what its messages show, the next action.

Pure: plain values in, plain values out, no I/O and no clock (time is passed in). A reply keeps
two values and asks this module what to do whenever the pacer offers it a slot:

- a :class:`Snapshot`, the latest Markdown cut into messages: frozen parts (full messages that
  never change again) and the tail that is still growing, each with its rendered platform text;
- a :class:`Display`, what the reply's messages show now.

:func:`next_action` compares the two and returns the one post or edit that helps most (the
earliest message that differs), or nothing. :func:`urgent` and :func:`priority` say how much it
matters next to other replies' actions. Decisions about *what* to send and *how urgently* belong
here; *when* a slot is free is the budgets' business (``budget.py``), and the loop that hands
slots out is ``pacer.py``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from bot.render.split import Fence, Part, Render, cut_tail, whole_part

# When choosing who gets a slot, one second without an update weighs like this many unseen
# characters: a slowly streaming reply then still gets its turn beside fast ones.
AGING_CHARS_PER_SECOND = 200.0

_NO_TEXT = Part("")


class Kind(enum.Enum):
    """Which budgets an action draws from."""

    POST = "post"
    EDIT = "edit"


@dataclass(frozen=True, slots=True)
class Action:
    """One post or edit that brings a message of the reply level with the snapshot."""

    kind: Kind
    index: int  # which message of the reply
    text: str  # rendered platform text
    live: bool
    md_end: int  # how far into the Markdown this text reaches, to measure what is still unseen
    urgent: bool  # first or final text: may use the budgets' reserve and skip the spacing
    ref: str = ""  # the message edited (edits only)

    @property
    def freezes(self) -> bool:
        """The message gets text that is not streaming any more (no Stop control): a frozen part,
        the final text, or the placeholder a message left over after the text shrank shows."""
        return not self.live


@dataclass(frozen=True, slots=True)
class Piece:
    """A frozen part of the reply: its Markdown, the platform text, and where in the reply it ends."""

    part: Part
    text: str
    md_end: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The reply's latest Markdown cut into messages: frozen pieces, then the tail.

    Build the first with :meth:`blank` and the next ones with :func:`cut`.
    """

    markdown: str
    final: bool
    placeholder: str  # what an empty reply (or a message left over) shows
    frozen: tuple[Piece, ...] = ()
    frozen_md: str = ""  # the Markdown the frozen pieces cover
    fence: Fence | None = None  # open where the tail starts
    tail: Part = _NO_TEXT
    tail_text: str = ""  # the rendered tail, or the placeholder while the tail is blank
    tail_blank: bool = True

    @classmethod
    def blank(cls, placeholder: str) -> Snapshot:
        return cls("", False, placeholder, tail_text=placeholder)

    def extended_by(self, markdown: str) -> bool:
        """``markdown`` keeps the frozen pieces (it was extended, not rewritten before them)."""
        return markdown.startswith(self.frozen_md)

    @property
    def slots(self) -> int:
        """Messages this snapshot needs: a blank tail gets none of its own (platforms refuse empty
        messages), except that before any text the first message shows the placeholder."""
        return len(self.frozen) + (not self.tail_blank or not self.frozen)

    def desired(self, i: int, visible_md: int) -> tuple[str, bool, int]:
        """What message ``i`` should show: text, live, Markdown length covered.

        ``visible_md`` is what the messages cover now; a message left over after the text shrank
        keeps that figure (nothing can be deleted through the surface, so it shows the
        placeholder, no longer live).
        """
        n = len(self.frozen)
        if i < n:
            piece = self.frozen[i]
            return piece.text, False, piece.md_end
        if i == n and (not self.tail_blank or n == 0):
            return self.tail_text, not self.final, len(self.markdown)
        return self.placeholder, False, visible_md

    @property
    def parts(self) -> list[Part]:
        """The Markdown parts: frozen ones, then the tail unless it is blank."""
        parts = [p.part for p in self.frozen]
        if not self.tail_blank or not parts:
            parts.append(self.tail)
        return parts


def cut(previous: Snapshot, markdown: str, *, final: bool, max_chars: int, render: Render) -> Snapshot:
    """``markdown`` cut into messages, continuing from ``previous``.

    Frozen pieces never change: when ``markdown`` extends ``previous``'s frozen Markdown only the
    rest is cut (whatever no longer fits in one message freezes); when it was rewritten before
    them, it is cut from scratch. ``render`` must be pure; it is called on new pieces and on the
    tail.
    """
    if previous.extended_by(markdown):
        frozen, frozen_md, fence = previous.frozen, previous.frozen_md, previous.fence
    else:
        frozen, frozen_md, fence = (), "", None
    start = len(frozen_md)
    tail = markdown[start:]
    new: list[Piece] = []
    while (c := cut_tail(tail, fence, max_chars, render)) is not None:
        part, fence = c
        start += len(part.body)
        new.append(Piece(part, render(part.markdown), start))
        tail = tail[len(part.body) :]
    if new:
        frozen += tuple(new)
        frozen_md = markdown[:start]
    whole, _ = whole_part(tail, fence, max_chars)
    blank = not tail.strip()
    tail_text = previous.placeholder if blank else render(whole.markdown)
    return Snapshot(markdown, final, previous.placeholder, frozen, frozen_md, fence, whole, tail_text, blank)


@dataclass(frozen=True, slots=True)
class Message:
    """One posted message of the reply, as the platform confirmed it."""

    ref: str
    text: str
    live: bool
    dead: bool = False  # edits kept failing: its part is posted again as a new message


@dataclass(frozen=True, slots=True)
class Display:
    """What the reply's messages show now."""

    messages: tuple[Message, ...] = ()
    visible_md: int = 0  # Markdown length the messages already show
    clean: int = 0  # messages before this index show their frozen piece for good
    in_flight: bool = False  # an action is being sent: the next waits for its answer

    def sent(self, action: Action, ref: str) -> Display:
        """What is shown once ``action`` succeeded; ``ref`` names the message a post created."""
        messages = list(self.messages)
        if action.kind is Kind.POST:
            message = Message(ref, action.text, action.live)
            if action.index < len(messages):
                messages[action.index] = message  # replaces a dead one
            else:
                messages.append(message)
        else:
            messages[action.index] = replace(messages[action.index], text=action.text, live=action.live)
        return replace(self, messages=tuple(messages), visible_md=max(self.visible_md, action.md_end))

    def abandoned(self, index: int) -> Display:
        """Message ``index`` can no longer be edited: its text is to be posted again."""
        messages = list(self.messages)
        messages[index] = replace(messages[index], dead=True)
        return replace(self, messages=tuple(messages))

    def resplit(self) -> Display:
        """The text was rewritten before its frozen pieces: every message is compared anew."""
        return replace(self, clean=0, visible_md=0)


@dataclass(frozen=True, slots=True)
class Plan:
    """The next action (None: every message shows what it should) and the new clean prefix."""

    action: Action | None
    clean: int


def urgent(final: bool, visible_md: int) -> bool:
    """First or final text: the user is waiting for exactly this, so it may use the reserve."""
    return final or visible_md == 0


def next_action(snapshot: Snapshot, display: Display) -> Plan:
    """The one post or edit that brings the earliest differing message level with the snapshot."""
    if display.in_flight:
        return Plan(None, display.clean)
    messages = display.messages
    is_urgent = urgent(snapshot.final, display.visible_md)
    total = max(snapshot.slots, len(messages))
    clean = i = display.clean
    while i < total:
        text, live, end = snapshot.desired(i, display.visible_md)
        if i >= len(messages) or messages[i].dead:
            return Plan(Action(Kind.POST, i, text, live, end, is_urgent or i == 0), clean)
        m = messages[i]
        if m.text != text or m.live != live:
            return Plan(Action(Kind.EDIT, i, text, live, end, is_urgent, m.ref), clean)
        if i == clean and i < len(snapshot.frozen):
            clean += 1  # shows its frozen piece: never looked at again
        i += 1
    return Plan(None, clean)


def priority(*, md_len: int, visible_md: int, final: bool, waited: float) -> tuple[int, float]:
    """Who gets a free slot first (higher first): a reply showing nothing yet, then final texts,
    then by how much text is unseen, aged by the seconds since the reply last showed something.

    A reply that shows nothing yet comes first: its user has no sign Parley is on it, while a
    finishing reply's user is already reading.
    """
    tier = 2 if visible_md == 0 else 1 if final else 0
    return tier, md_len - visible_md + AGING_CHARS_PER_SECOND * waited
