"""Feedback on answers: 👍 / 👎 for both platforms, decided and counted here once.

A finished answer carries the two buttons on its last message (the surface draws them: Slack's
own ``feedback_buttons``, Discord buttons); the buttons name the reply by its stored id, so a click
needs no memory of this process and works after a restart. :meth:`Feedback.vote` records one
person's vote (one per reply, changeable) and tells the observer only when a vote was really
cast: the same click again, a click delivered twice or to two instances, changes nothing, and a
changed vote counts once on its new value. A 👎 may ask "what was wrong?" (the adapter shows
:data:`WHY_TITLE` with :data:`WHY_LABEL`) and :meth:`Feedback.explain` keeps the answer.

The surface learns which reply it writes through :class:`Rateable`, told by the turn just before
the final edit: the feedback buttons replace the Stop button in that same edit, never in an
extra request, and never while the reply is live.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bot.render import ReplyStream
from bot.store import Store, StoreError

log = logging.getLogger("parley.feedback")

# Sentences adapters show as they are (standard Markdown, as bot.controls writes them).
WHY_TITLE = "What was wrong?"
WHY_LABEL = "Tell Parley what was wrong with this answer (optional)"
WHY_SHORT_LABEL = "What was wrong with this answer?"  # where a label is short (Discord: 45)
WHY_PLACEHOLDER = "It was out of date, it missed the point, it was too long…"
WHY_SUBMIT = "Send"
THANKS = "Thanks: your note is saved."
GONE = "That answer is no longer in Parley's history, so the vote was not counted."
FAILED = "Parley could not save your vote just now; please try again in a moment."


class Vote(enum.StrEnum):
    UP = "up"
    DOWN = "down"

    @classmethod
    def parse(cls, text: str) -> Vote | None:
        try:
            return cls(text)
        except ValueError:
            return None


def reply_id(text: str) -> int | None:
    """A stored reply's id written in a button (at most 18 digits: a BIGINT), or None."""
    return int(text) if text.isdigit() and len(text) <= 18 else None


class FeedbackObserver(Protocol):
    """Told of every vote cast (metrics implement it)."""

    def vote_cast(self, platform: str, model: str, value: str) -> None: ...


class VoteResult(enum.Enum):
    CAST = "cast"  # a new vote, or a changed one
    UNCHANGED = "unchanged"  # the same vote again, or a duplicate delivery of a click
    GONE = "gone"  # no such reply on that platform
    FAILED = "failed"  # the database could not take it


@dataclass(frozen=True, slots=True)
class VoteAnswer:
    result: VoteResult
    value: Vote
    ask_why: bool = False  # show "what was wrong?" (a 👎 just cast, and PARLEY_FEEDBACK_ASK_WHY)

    @property
    def text(self) -> str:
        """What to tell the person, if anything (a vote itself is answered by the buttons)."""
        return {VoteResult.GONE: GONE, VoteResult.FAILED: FAILED}.get(self.result, "")


class Feedback:
    def __init__(self, store: Store, *, ask_why: bool, observer: FeedbackObserver | None = None) -> None:
        self._store = store
        self._ask_why = ask_why
        self.observer = observer

    async def vote(
        self, platform: str, reply_id: int, user_id: str, value: Vote, *, click_id: str = ""
    ) -> VoteAnswer:
        """``user_id`` votes ``value`` on reply ``reply_id``; ``click_id`` is the platform's id of
        the click, so that a second delivery of it changes nothing."""
        try:
            voted = await self._store.feedback.vote(
                reply_id, user_id, value.value, platform=platform, click_id=click_id
            )
        except StoreError as exc:
            log.warning("could not store a vote on reply %s: %s", reply_id, exc)
            return VoteAnswer(VoteResult.FAILED, value)
        if voted is None:
            return VoteAnswer(VoteResult.GONE, value)
        if not voted.changed:
            return VoteAnswer(VoteResult.UNCHANGED, value)
        log.info("vote %s on reply %s (%s, %s)", value, reply_id, platform, voted.model or "no model")
        if self.observer is not None:
            self.observer.vote_cast(platform, voted.model, value.value)
        return VoteAnswer(VoteResult.CAST, value, ask_why=self._ask_why and value is Vote.DOWN)

    async def explain(self, reply_id: int, user_id: str, comment: str) -> bool:
        """Keep what ``user_id`` said was wrong with reply ``reply_id`` (after their 👎)."""
        try:
            return await self._store.feedback.explain(reply_id, user_id, comment)
        except StoreError as exc:
            log.warning("could not store feedback on reply %s: %s", reply_id, exc)
            return False


# -- what the turn tells the surface ---------------------------------------------------------


@runtime_checkable
class Rateable(Protocol):
    """A surface that can put feedback buttons on a reply's final message."""

    def rateable(self, reply_id: int, is_last: Callable[[str], bool]) -> None:
        """The reply, stored as ``reply_id``, is about to get its final text: a message sent from
        now on with ``live=False`` whose text ``is_last`` accepts is the reply's last message and
        carries the buttons (instead of the Stop button, in the same call)."""
        ...


def offer(surface: object, reply_id: int, is_last: Callable[[str], bool], *, enabled: bool) -> None:
    """Let ``surface`` put feedback buttons on the final message of reply ``reply_id``."""
    if enabled and isinstance(surface, Rateable):
        surface.rateable(reply_id, is_last)


def last_message(stream: ReplyStream) -> Callable[[str], bool]:
    """Whether a text is what ``stream``'s last message shows once its final text is set: the
    renderer cuts the final text into parts and renders each, so the last part's rendering is
    exactly the text of the last message's final post or edit."""

    def check(text: str) -> bool:
        try:
            parts = stream.parts
            return bool(parts) and stream.surface.render(parts[-1].markdown) == text
        except Exception:  # a surface's render bug must not cost the final edit
            log.exception("could not tell the reply's last message")
            return False

    return check
