"""The one narrow object an adapter receives from the core: :class:`AdapterContext`.

An adapter parses its platform's events, shows its platform's UI and writes replies on its own
surface; for everything else it calls this object, and only this object: the settings, the
conversation service's intake (answer a message, stop a reply, close replies a crash left open),
the routing decision, the controls behind its commands, and a way to mount an HTTP route on
Parley's server. It never sees the store, the gateway or the runtime.

Adapters are built from it by the factories named in the ``parley.adapters`` entry points:
``create(context) -> Adapter | None``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from bot.controls import Controls, LiveReplies, ModelList, Wording
from bot.render.surface import Recoverable
from bot.routing import FollowedThreads, Routing
from bot.settings import Settings
from bot.store import Store, StreamingReply
from bot.types import ConversationKey, IncomingMessage

if TYPE_CHECKING:
    from aiohttp import web

#: A reply the store last saw streaming, handed to an adapter to rebuild its surface.
OrphanedReply = StreamingReply
SurfaceFor = Callable[[OrphanedReply], Recoverable | None]
#: Rebuilds a message from the ``origin`` the adapter gave it (``IncomingMessage.origin``), in a
#: process other than the one that received it; None when it is no longer to be answered.
Rebuild = Callable[[Mapping[str, Any]], Awaitable[IncomingMessage | None]]
RouteHandler = Callable[["web.Request"], Awaitable["web.StreamResponse"]]


class Intake(LiveReplies, Protocol):
    """The conversation service's calls adapters need (bot.service.ConversationService)."""

    async def handle(self, msg: IncomingMessage) -> object: ...

    def answering(self, key: ConversationKey) -> bool: ...

    async def recover(self, platform: str, surface_for: SurfaceFor) -> int: ...

    def revive_with(self, platform: str, rebuild: Rebuild) -> None: ...

    def peers(self, platform: str) -> int: ...

    async def once(self, platform: str, event_id: str) -> bool: ...


class AdapterContext:
    def __init__(
        self,
        settings: Settings,
        service: Intake,
        store: Store,
        list_models: Callable[[], Awaitable[Sequence[str]]],
        routes: list[tuple[str, str, Any]],
    ) -> None:
        self.settings = settings
        self._service = service
        self._store = store
        self._routes = routes
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

    async def handle(self, msg: IncomingMessage) -> bool:
        """Answer ``msg`` once; False when it was not answered here (a duplicate delivery, a bot
        turn the loop breaker dropped, or Parley shutting down)."""
        if await self._service.handle(msg) is None:
            return False
        self.routing.follow(msg.key)  # follow-ups in this conversation are answered from now on
        return True

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
