"""The one narrow object an adapter receives from the core: :class:`AdapterContext`.

An adapter parses its platform's events, shows its platform's UI and writes replies on its own
surface; for everything else it calls this object, and only this object: the settings, the
conversation service's intake (answer a message, stop a reply, close replies a crash left open),
the routing decision, the controls behind its commands, feedback on answers, a claim that holds
across restarts and instances (:meth:`AdapterContext.first_time`), the count of messages it
chose not to answer, and a way to mount an HTTP route on Parley's server. It never sees the
store, the gateway or the runtime.

Adapters are built from it by the factories named in the ``parley.adapters`` entry points:
``create(context) -> Adapter | None``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from bot.controls import Controls, LiveReplies, ModelList, Wording
from bot.feedback import Feedback, FeedbackObserver
from bot.intake import IntakeObserver
from bot.render.surface import Recoverable
from bot.routing import FollowedThreads, Routing
from bot.settings import Settings
from bot.store import Store, StoreError, StreamingReply
from bot.types import ConversationKey, IncomingMessage

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger("parley.context")

#: A reply the store last saw streaming, handed to an adapter to rebuild its surface.
OrphanedReply = StreamingReply
SurfaceFor = Callable[[OrphanedReply], Recoverable | None]
#: Rebuilds a message from the ``origin`` the adapter gave it (``IncomingMessage.origin``), in a
#: process other than the one that received it; None when it is no longer to be answered.
Rebuild = Callable[[Mapping[str, Any]], Awaitable[IncomingMessage | None]]
RouteHandler = Callable[["web.Request"], Awaitable["web.StreamResponse"]]


class Intake(LiveReplies, Protocol):
    """The conversation service's calls adapters need (bot.service.ConversationService)."""

    async def handle(
        self, msg: IncomingMessage, *, merge: bool = ..., in_line: Callable[[], None] | None = ...
    ) -> object: ...

    def answering(self, key: ConversationKey) -> bool: ...

    async def recover(self, platform: str, surface_for: SurfaceFor) -> int: ...

    def revive_with(self, platform: str, rebuild: Rebuild) -> None: ...

    def peers(self, platform: str) -> int: ...

    async def once(self, platform: str, event_id: str) -> bool: ...


class Observer(FeedbackObserver, IntakeObserver, Protocol):
    """What the context reports: votes cast, and messages not answered by a named rule."""


class AdapterContext:
    def __init__(
        self,
        settings: Settings,
        service: Intake,
        store: Store,
        list_models: Callable[[], Awaitable[Sequence[str]]],
        routes: list[tuple[str, str, Any]],
        observer: Observer | None = None,
    ) -> None:
        self.settings = settings
        self._service = service
        self._store = store
        self._routes = routes
        self._observer = observer
        self.feedback = Feedback(store, ask_why=settings.parley_feedback_ask_why, observer=observer)
        self.routing = Routing(
            settings,
            FollowedThreads(
                answering=service.answering,
                has_reply=_has_reply(store),
                remember_misses=not store.shared,
            ),
        )
        # One model list for every adapter: the gateway is asked once per TTL, whoever asks.
        self.models = ModelList(list_models)

    def controls(self, wording: Wording) -> Controls:
        """The controls, with a platform's way of naming its admins and places."""
        return Controls(self.settings, self._store, self._service, self.models, wording)

    # -- the service's intake -----------------------------------------------------------------------

    async def handle(
        self, msg: IncomingMessage, *, merge: bool = True, in_line: Callable[[], None] | None = None
    ) -> bool:
        """Answer ``msg`` once; False when it was not answered here (a duplicate delivery, a bot
        turn the loop breaker dropped, a "stop" that stopped a reply, or Parley shutting down).

        A person's burst of messages in one conversation is answered as one turn (``merge``; off
        for a request that stands alone, like a shortcut). ``in_line`` is called once ``msg`` has
        its place in its conversation's order: an adapter that hands a conversation's messages
        over one at a time may hand over the next one then, rather than after the answer.
        """
        if await self._service.handle(msg, merge=merge, in_line=in_line) is None:
            return False
        self.routing.follow(msg.key)  # follow-ups in this conversation are answered from now on
        return True

    def ignored(self, platform: str, reason: str) -> None:
        """A message not handed over, for a named reason (a :class:`~bot.routing.Reason` value,
        ``duplicate``, ``shutting_down``, ``no_permission``…): counted, never silent."""
        if self._observer is not None:
            self._observer.message_seen(platform, str(reason))

    async def first_time(self, platform: str, name: str) -> bool:
        """True for the first caller to ask about ``name`` (e.g. ``prompts:U1:2026-06-10``) on
        ``platform``, in this process or any other on the database, for about a day (claims are
        forgotten then); False for later ones, and when the database cannot say."""
        try:
            if not await self._store.events.claim(platform, name, "parley"):
                return False
            await self._store.events.done(platform, name)
        except StoreError as exc:
            log.warning("could not claim %s: %s", name, exc)
            return False
        return True

    async def forget(self, platform: str, name: str) -> None:
        """Undo :meth:`first_time` (what it guarded failed), so the next caller tries again."""
        try:
            await self._store.events.forget(platform, name)
        except StoreError as exc:
            log.warning("could not forget %s: %s", name, exc)

    def stop(self, ref: str) -> bool:
        """Stop the reply writing message ``ref`` (a platform's own stop control; the Stop button
        goes through :meth:`Controls.stop`, which checks who clicked)."""
        return self._service.stop(ref)

    async def recover(self, platform: str, surface_for: SurfaceFor) -> int:
        """Close the replies a crashed Parley left streaming on ``platform`` (and keep doing so)."""
        return await self._service.recover(platform, surface_for)

    def revive_with(self, platform: str, rebuild: Rebuild) -> None:
        """How this adapter rebuilds a message from its ``origin``. With several instances on one
        database, a turn that waited in an instance that stopped is rebuilt this way and
        answered by this one."""
        self._service.revive_with(platform, rebuild)

    async def once(self, platform: str, event_id: str) -> bool:
        """Whether this is the first delivery of ``event_id`` (e.g. ``command:{trigger id}``) to
        any instance: a slash command, button or shortcut is acted on once, whoever receives it."""
        return await self._service.once(platform, event_id)

    def peers(self, platform: str) -> int:
        """How many instances run ``platform``'s adapter on this database now, this one included
        (1 on SQLite): a budget no shared state covers is split between them."""
        return self._service.peers(platform)

    # -- HTTP -----------------------------------------------------------------------------------------

    def add_route(self, method: str, path: str, handler: RouteHandler) -> None:
        """Mount ``handler`` on Parley's HTTP server (call before ``parley run`` starts it)."""
        self._routes.append((method, path, handler))


def _has_reply(store: Store) -> Callable[[ConversationKey], Awaitable[bool]]:
    """Whether Parley answers in a conversation, for routing: a reply stored, or, with several
    instances, a turn under way in any of them (its reply may not be stored yet)."""
    if not store.shared:
        return store.conversations.has_reply

    async def has_reply(key: ConversationKey) -> bool:
        return await store.conversations.has_reply(key) or await store.turns.any_open(key)

    return has_reply
