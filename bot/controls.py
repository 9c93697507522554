"""The controls behind the slash commands and the Stop button, for every adapter.

Model and system prompt (show, set, clear where a command was used), reset, usage, who may stop
a live reply, and who may change settings. Every sentence a person reads is written here once,
in standard Markdown; an adapter turns it into its platform's markup and decides how it is shown
(Slack: ephemeral responses; Discord: ephemeral interaction answers). What stays with the
adapters is the UI: parsing ``/parley model x`` or a Discord option, autocomplete, deferral, and
telling these controls where the command was used (a :class:`Place`) and whether the person is
an admin there.

The gateway's model list is fetched once per :data:`MODELS_TTL` and shared by every adapter
(:class:`ModelList`).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bot.settings import Settings
from bot.store import Store, Totals
from bot.types import ConversationKey

log = logging.getLogger("parley.controls")

MODELS_TTL = 300.0  # seconds the gateway's model list is trusted
CLEAR_WORDS = frozenset({"default", "reset", "clear", "none"})
SUGGESTED = 10  # model names offered with "no such model"

# Sentences adapters show as they are.
NOT_HERE = "Sorry, Parley isn't available to you here."
FAILED = "Something went wrong; the error is in Parley's log."
RESET_DONE = "Done: Parley starts this conversation afresh."
NOTHING_TO_RESET = "There is nothing to forget here yet."
UNCHECKED = " (the gateway's model list could not be read to check the name)"

AdminCheck = Callable[[], Awaitable[bool]]


class PlaceKind(enum.StrEnum):
    THREAD = "thread"  # settings apply to that conversation only
    CHANNEL = "channel"  # settings apply to the channel, and its threads follow them
    DM = "dm"


@dataclass(frozen=True, slots=True)
class Place:
    """Where a control was used."""

    key: ConversationKey  # a thread's or a DM's conversation; for a channel, thread ""
    label: str  # how a sentence names it: "this thread", "#general", "this channel", "this DM"
    kind: PlaceKind


@dataclass(frozen=True, slots=True)
class Wording:
    """How a platform names the people and places in these sentences."""

    settings_admins: str  # "workspace admins": who may change settings when admin-only
    stop_admins: str  # "a workspace admin": who may stop anyone's reply
    workspace: str  # "workspace", "server"
    mention: str = "<@{}>"  # a user mention, from the user's id


class StopResult(enum.Enum):
    STOPPED = "stopped"
    GONE = "gone"  # finished meanwhile (its final edit removes the button), or orphaned
    REFUSED = "refused"  # neither the person who asked nor an admin


@dataclass(frozen=True, slots=True)
class StopAnswer:
    result: StopResult
    text: str = ""  # what to tell the person who clicked, when anything


def known(value: bool) -> AdminCheck:
    """An :data:`AdminCheck` for a platform that knows the answer already (Discord permissions)."""

    async def check() -> bool:
        return value

    return check


class LiveReplies(Protocol):
    """What the conversation service says and does about replies being written."""

    def reply_owner(self, ref: str) -> str | None: ...

    def stop(self, ref: str) -> bool: ...


@runtime_checkable
class RepliesElsewhere(Protocol):
    """Replies another instance writes (several instances on one database): a Stop clicked here
    is passed on to it."""

    async def owner_elsewhere(self, ref: str) -> str | None: ...

    async def stop_elsewhere(self, ref: str) -> bool: ...


class ModelList:
    """The gateway's model names, fetched at most once per ``ttl`` by whoever asks first.

    Concurrent askers share one request (a lock); a refresh that fails or takes longer than a
    caller's ``wait`` leaves that caller with the list it had (or None), and the refresh goes on
    for the next one.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[Sequence[str]]],
        *,
        ttl: float = MODELS_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._clock = clock
        self._cached: tuple[float, list[str]] | None = None  # (valid until, names)
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def get(self, *, wait: float | None = None) -> list[str] | None:
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        try:
            return await asyncio.wait_for(asyncio.shield(self._refresh()), wait)
        except TimeoutError:
            return self._stale()

    async def _refresh(self) -> list[str] | None:
        async with self._lock:
            fresh = self._fresh()
            if fresh is not None:
                return fresh  # fetched while this caller waited for the lock
            self.fetches += 1
            try:
                names = list(await self._fetch())
            except Exception as exc:
                log.warning("could not list the gateway's models: %s", exc)
                return self._stale()
            self._cached = (self._clock() + self._ttl, names)
            return names

    def _fresh(self) -> list[str] | None:
        cached = self._cached
        return cached[1] if cached is not None and cached[0] > self._clock() else None

    def _stale(self) -> list[str] | None:
        return self._cached[1] if self._cached is not None else None


class Controls:
    """One platform's view of the controls: the shared state, that platform's :class:`Wording`."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        replies: LiveReplies,
        models: ModelList,
        wording: Wording,
    ) -> None:
        self._settings = settings
        self._store = store
        self._replies = replies
        self.models = models
        self.wording = wording

    # -- who may ----------------------------------------------------------------------------------

    async def may_change_settings(self, place: Place, is_admin: AdminCheck) -> bool:
        """With ``PARLEY_ADMIN_ONLY_SETTINGS`` only admins change what a channel or thread uses; a
        DM concerns nobody else, so whoever is in it may."""
        if not self._settings.parley_admin_only_settings or place.kind is PlaceKind.DM:
            return True
        return await is_admin()

    # -- model ------------------------------------------------------------------------------------

    async def model(self, place: Place, name: str, *, is_admin: AdminCheck) -> str:
        """Show the model used at ``place`` (``name`` empty), or set or clear it there."""
        default = self._settings.parley_model
        if not name:
            model, _ = await self._overrides(place)
            return f"Parley answers with **{model or default}** in {place.label}."
        if not await self.may_change_settings(place, is_admin):
            return f"Only {self.wording.settings_admins} can change Parley's model."
        if name.lower() in CLEAR_WORDS:
            await self._set_model(place, None)
            return f"{_cap(place.label)} is back to the default model, **{default}**."
        known_names = await self.models.get()
        if known_names is not None and name not in known_names:
            close = [m for m in known_names if name.lower() in m.lower()] or known_names
            offered = ", ".join(f"`{m}`" for m in close[:SUGGESTED])
            return f"The gateway has no model `{name}`. Some it offers: {offered}"
        await self._set_model(place, name)
        note = "" if known_names is not None else UNCHECKED
        return f"Parley now answers with **{name}** in {place.label}{note}."

    # -- system prompt ------------------------------------------------------------------------------

    async def system(self, place: Place, prompt: str, *, is_admin: AdminCheck) -> str:
        """Show the system prompt used at ``place`` (``prompt`` empty), or set or clear it there."""
        if not prompt:
            _, system = await self._overrides(place)
            if not system:
                return f"{_cap(place.label)} uses Parley's default system prompt."
            return f"The system prompt in {place.label}:\n{_quoted(system)}"
        if not await self.may_change_settings(place, is_admin):
            return f"Only {self.wording.settings_admins} can change Parley's system prompt."
        if prompt.lower() in CLEAR_WORDS:
            await self._set_system(place, None)
            return f"{_cap(place.label)} is back to the default system prompt."
        await self._set_system(place, prompt)
        return f"Parley will follow this system prompt in {place.label}."

    # -- reset, usage -------------------------------------------------------------------------------

    async def reset(self, key: ConversationKey) -> str:
        """Forget the conversation ``key`` so far (its history stays stored)."""
        conversation = await self._store.conversations.find(key)
        if conversation is None:
            return NOTHING_TO_RESET
        await self._store.conversations.reset(conversation.id)
        return RESET_DONE

    async def usage(self, user_id: str, place: Place) -> str:
        """The person's tokens on this platform and, in a workspace or server, everybody's there."""
        platform = place.key.platform
        lines = [f"**You:** {_totals(await self._store.usage.totals(user_id=user_id, platform=platform))}"]
        if place.key.workspace:
            everyone = await self._store.usage.totals(workspace=place.key.workspace, platform=platform)
            lines.append(f"**This {self.wording.workspace}:** {_totals(everyone)}")
        return "\n".join(lines)

    # -- stop ---------------------------------------------------------------------------------------

    async def stop(self, ref: str, clicker: str, *, is_admin: AdminCheck) -> StopAnswer:
        """Stop the live reply whose message is ``ref``, if ``clicker`` asked for it or is an admin.

        ``is_admin`` is asked only when someone else asked (on Slack it costs a look-up).
        """
        owner = self._replies.reply_owner(ref)
        elsewhere = self._replies if isinstance(self._replies, RepliesElsewhere) and owner is None else None
        if elsewhere is not None:
            owner = await elsewhere.owner_elsewhere(ref)  # another instance may be writing it
        if owner is None:
            return StopAnswer(StopResult.GONE)
        if owner != clicker and not await is_admin():
            who = self.wording.mention.format(owner)
            text = f"Only {who}, who asked, or {self.wording.stop_admins} can stop this reply."
            return StopAnswer(StopResult.REFUSED, text)
        if elsewhere is not None:
            await elsewhere.stop_elsewhere(ref)
        else:
            self._replies.stop(ref)
        return StopAnswer(StopResult.STOPPED)

    # -- storage ------------------------------------------------------------------------------------

    async def _overrides(self, place: Place) -> tuple[str | None, str | None]:
        # A read that creates nothing: a channel's settings can be shown before anyone talked there.
        found = await self._store.conversations.overrides(place.key)
        return found.model, found.system

    async def _set_model(self, place: Place, model: str | None) -> None:
        if place.kind is PlaceKind.THREAD:
            conversation = await self._store.conversations.find_or_create(place.key)
            await self._store.conversations.set_model(conversation.id, model)
        else:
            await self._store.conversations.set_channel_model(place.key, model)

    async def _set_system(self, place: Place, system: str | None) -> None:
        if place.kind is PlaceKind.THREAD:
            conversation = await self._store.conversations.find_or_create(place.key)
            await self._store.conversations.set_system(conversation.id, system)
        else:
            await self._store.conversations.set_channel_system(place.key, system)


def _totals(t: Totals) -> str:
    replies = f"{t.requests} repl{'y' if t.requests == 1 else 'ies'}"
    thinking = f" ({t.thinking_tokens:,} of them thinking)" if t.thinking_tokens else ""
    pictures = f", {t.images:,} picture{'' if t.images == 1 else 's'}" if t.images else ""
    return f"{replies}, {t.input_tokens:,} input and {t.output_tokens:,} output tokens{thinking}{pictures}"


def _quoted(text: str) -> str:
    return "\n".join(f"> {line}" for line in text.splitlines() or [""])


def _cap(label: str) -> str:
    return label[:1].upper() + label[1:]
