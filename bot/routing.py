"""When Parley answers a platform message: decided here once, for every adapter.

An adapter parses a platform event into a :class:`Seen` (where it was written, by whom, whether
Parley was mentioned, whether the access policy admits it) and asks :meth:`Routing.route`. The
:class:`Route` it gets back says whether to answer, why (a :class:`Reason`, fit for a log line or
a metric label), and what to read back from the platform as context. The rules:

- a DM is answered; so is a message that mentions Parley;
- a message in a thread Parley has answered in (a *followed* thread) is answered without a
  mention, unless ``PARLEY_REQUIRE_MENTION`` is set;
- anything else is not: a channel message outside a thread without a mention, chatter in
  someone else's thread, other bots (unless ``PARLEY_ALLOW_BOTS``), people the access policy
  turns away.

Parley's own messages never reach this far: recognising them is the platform's business.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from bot.settings import Settings
from bot.types import ConversationKey


class Reason(enum.StrEnum):
    """Why a message is answered or not."""

    DM = "dm"
    MENTIONED = "mentioned"
    FOLLOWED = "followed_thread"
    OTHER_BOT = "other_bot"  # a bot not in PARLEY_ALLOW_BOTS
    DENIED = "denied"  # the access policy turned the author away here
    NOT_ADDRESSED = "not_addressed"  # a channel message outside a thread, without a mention
    MENTION_REQUIRED = "mention_required"  # a follow-up, but PARLEY_REQUIRE_MENTION is set
    NOT_FOLLOWED = "not_followed"  # chatter in a thread Parley has not answered in


_V = TypeVar("_V")

ANSWERED = frozenset({Reason.DM, Reason.MENTIONED, Reason.FOLLOWED})


@dataclass(frozen=True, slots=True)
class Seen:
    """A platform message, as much of it as the decision needs."""

    key: ConversationKey  # the conversation an answer would belong to
    author_id: str  # the id the access policy and PARLEY_ALLOW_BOTS know the author by
    is_dm: bool = False
    mentioned: bool = False
    in_thread: bool = False  # written inside an existing thread (a follow-up is possible there)
    is_bot: bool = False
    admitted: bool = True  # what bot.access said about this author in this place


@dataclass(frozen=True, slots=True)
class Route:
    """The decision about one message."""

    reason: Reason
    followed: bool = False  # Parley has answered in this conversation before
    read_back: bool = False  # read the thread's earlier messages from the platform as context

    @property
    def answer(self) -> bool:
        return self.reason in ANSWERED

    @property
    def include_own(self) -> bool:
        """Whether Parley's own messages among those read back are context: only where the store
        does not have them already (a thread Parley has not answered in)."""
        return not self.followed


class FollowedThreads:
    """Whether Parley has answered in a conversation: one cached look-up for every adapter.

    True while this process has a turn of it under way (its reply may not be stored yet), or
    when the store has a reply of Parley's in it. A yes never turns into a no, so it is kept (up
    to ``max_entries``, least recently asked dropped first). A no is kept for ``miss_ttl``
    seconds only when ``remember_misses``: with one process on the database (SQLite) every new
    answer goes through :meth:`follow` here, while with several (PostgreSQL) another instance
    may start answering in a thread at any moment, so the store is asked each time. Messages
    arriving together in one thread share one question to the store.
    """

    def __init__(
        self,
        *,
        answering: Callable[[ConversationKey], bool],
        has_reply: Callable[[ConversationKey], Awaitable[bool]],
        remember_misses: bool,
        miss_ttl: float = 30.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._answering = answering
        self._has_reply = has_reply
        self._remember_misses = remember_misses
        self._miss_ttl = miss_ttl
        self._max = max_entries
        self._clock = clock
        self._yes: OrderedDict[ConversationKey, None] = OrderedDict()
        self._no: OrderedDict[ConversationKey, float] = OrderedDict()  # key → valid until
        self._asking: dict[ConversationKey, asyncio.Future[bool]] = {}

    async def check(self, key: ConversationKey) -> bool:
        if self._answering(key) or self._known(key):
            return True
        until = self._no.get(key)
        if until is not None and until > self._clock():
            return False
        if await self._ask(key):
            self.follow(key)
            return True
        if self._remember_misses:
            self._no[key] = self._clock() + self._miss_ttl
            self._no.move_to_end(key)
            _bound(self._no, self._max)
        return False

    async def _ask(self, key: ConversationKey) -> bool:
        asking = self._asking.get(key)
        if asking is None:
            asking = asyncio.ensure_future(self._has_reply(key))
            self._asking[key] = asking
            asking.add_done_callback(lambda done: self._asked(key, done))
        return await asyncio.shield(asking)

    def _asked(self, key: ConversationKey, done: asyncio.Future[bool]) -> None:
        self._asking.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved: every caller that waited has seen it already

    def follow(self, key: ConversationKey) -> None:
        """Parley answers in ``key`` from now on (it just did, or it opened the thread)."""
        self._no.pop(key, None)
        self._yes[key] = None
        self._yes.move_to_end(key)
        _bound(self._yes, self._max)

    def _known(self, key: ConversationKey) -> bool:
        if key not in self._yes:
            return False
        self._yes.move_to_end(key)
        return True


class Routing:
    """The rules above, with :class:`FollowedThreads` for "has Parley answered here"."""

    def __init__(self, settings: Settings, followed: FollowedThreads) -> None:
        self._settings = settings
        self.followed = followed

    async def route(self, seen: Seen) -> Route:
        if seen.is_bot and seen.author_id not in self._settings.parley_allow_bots:
            return Route(Reason.OTHER_BOT)
        if not seen.admitted:
            return Route(Reason.DENIED)
        if seen.is_dm or seen.mentioned:
            return await self._addressed(seen, Reason.DM if seen.is_dm else Reason.MENTIONED)
        if not seen.in_thread:
            return Route(Reason.NOT_ADDRESSED)
        if self._settings.parley_require_mention:
            return Route(Reason.MENTION_REQUIRED)
        if await self.followed.check(seen.key):
            return Route(Reason.FOLLOWED, followed=True)
        return Route(Reason.NOT_FOLLOWED)

    async def _addressed(self, seen: Seen, reason: Reason) -> Route:
        if not seen.in_thread:
            return Route(reason)  # a new conversation: nothing earlier to read back
        followed = await self.followed.check(seen.key)
        # A thread Parley has not answered in is read whole. In one it follows, the store has
        # every turn, unless mentions are required: then the messages in between are read (not
        # Parley's own, which are stored).
        read_back = not followed or self._settings.parley_require_mention
        return Route(reason, followed=followed, read_back=read_back)

    def follow(self, key: ConversationKey) -> None:
        """Parley answers in ``key`` from now on (see :meth:`FollowedThreads.follow`)."""
        self.followed.follow(key)


def _bound(entries: OrderedDict[ConversationKey, _V], limit: int) -> None:
    while len(entries) > limit:
        entries.popitem(last=False)
