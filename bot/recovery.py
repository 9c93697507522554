"""Crash recovery: replies a crashed process left streaming are closed with the interrupted note.

The rule (:func:`is_orphaned`) says which streaming rows no live process can still be writing;
:func:`close_orphan` reads each of the reply's messages back from the platform, appends the note
to the last one, removes its Stop control, and marks the row interrupted with the text it showed;
:class:`Recovery` runs a pass per platform when its adapter connects, and again at every sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from bot import notes as say
from bot.render import RateLimited, SurfaceError
from bot.render.surface import PLACEHOLDER, THINKING_PLACEHOLDER, Recoverable, ReplySurface, Shown
from bot.settings import Settings
from bot.store import Store, StoreError, StreamingReply
from bot.store.models import utcnow
from bot.tool_loop import without_status

log = logging.getLogger("parley.conversation")

# What an adapter hands recover(): a surface rebuilt from a reply's stored row, or None.
SurfaceFor = Callable[[StreamingReply], Recoverable | None]

# A recovery pass leaves a reply for the next pass after a 429 longer than this.
_RECOVERY_MAX_WAIT = 30.0
_PASS_LIMIT = 100  # streaming rows looked at per pass


@dataclass(frozen=True, slots=True)
class Writers:
    """Who may still be writing a streaming reply, as the rule needs to know it."""

    process: str  # this process's id (a fresh one per start)
    instance: str | None  # PARLEY_INSTANCE_ID: the same across restarts of one instance
    shared: bool  # other instances use this database (PostgreSQL)
    reply_timeout: float  # PARLEY_REPLY_TIMEOUT: no reply runs longer
    # On a shared database, the processes whose heartbeat is fresh (read after the replies, so
    # any writer of a reply read is registered); None where it is not known.
    alive: frozenset[str] | None = None


def is_orphaned(reply: StreamingReply, writers: Writers, live: set[int]) -> bool:
    """Whether no live process can still be writing ``reply`` (``live``: this process's rows).

    - This process's own replies only once past ``PARLEY_REPLY_TIMEOUT``: no reply runs longer.
    - On SQLite (one process per database) every other process's reply: that process is gone.
    - On a shared database another instance may be writing it, so only replies past the
      timeout, left by a previous process of the same ``PARLEY_INSTANCE_ID``, or written by a
      process that stopped heart-beating (``PARLEY_INSTANCE_TIMEOUT``).
    """
    if reply.id in live:
        return False
    info = reply.surface or {}
    if reply.created_at < utcnow() - timedelta(seconds=writers.reply_timeout + 30):
        return True
    if info.get("process") == writers.process:
        return False
    if not writers.shared:
        return True
    writer = info.get("process")
    if writers.alive is not None and isinstance(writer, str) and writer not in writers.alive:
        return True
    return bool(writers.instance) and info.get("instance") == writers.instance


class Recovery:
    """Closes orphaned replies, platform by platform, once their adapter can rebuild surfaces."""

    def __init__(self, settings: Settings, store: Store, process: str, live: Callable[[], set[int]]) -> None:
        self._settings = settings
        self._store = store
        self._process = process
        self._live = live
        self._surfaces: dict[str, SurfaceFor] = {}

    def orphaned(self, reply: StreamingReply, alive: frozenset[str] | None = None) -> bool:
        settings = self._settings
        writers = Writers(
            self._process,
            settings.parley_instance_id,
            self._store.shared,
            settings.parley_reply_timeout,
            alive,
        )
        return is_orphaned(reply, writers, self._live())

    async def recover(self, platform: str, surface_for: SurfaceFor) -> int:
        """Remember how ``platform``'s surfaces are rebuilt, and run a pass now; returns how
        many replies were closed."""
        self._surfaces[platform] = surface_for
        return await self.run_pass(platform)

    async def sweep(self) -> None:
        """A pass for every platform whose adapter has connected; failures are logged."""
        for platform in list(self._surfaces):
            try:
                await self.run_pass(platform)
            except Exception:
                log.exception("recovery sweep failed")

    async def run_pass(self, platform: str) -> int:
        surface_for = self._surfaces.get(platform)
        if surface_for is None:
            return 0
        try:
            replies = await self._store.replies.streaming(platform=platform, limit=_PASS_LIMIT)
        except StoreError as exc:
            log.warning("recovery: cannot read the store: %s", exc)
            return 0
        alive = await self._alive() if replies else None
        closed = 0
        for reply in replies:
            if not self.orphaned(reply, alive):
                continue
            try:
                if await close_orphan(self._store, reply, surface_for):
                    closed += 1
            except Exception:
                log.exception("recovery of reply %s failed; trying again later", reply.id)
        if closed:
            log.info("recovery: closed %d interrupted %s replies", closed, platform)
        return closed

    async def _alive(self) -> frozenset[str] | None:
        """The processes alive now, on a shared database; None where unknown (or unreadable)."""
        if not self._store.shared:
            return None
        try:
            rows = await self._store.instances.alive(self._settings.parley_instance_timeout)
        except StoreError as exc:
            log.warning("recovery: cannot read which instances are alive: %s", exc)
            return None
        return frozenset(row.process for row in rows)


async def close_orphan(store: Store, reply: StreamingReply, surface_for: SurfaceFor) -> bool:
    """Edit the reply's messages to say it was interrupted, then mark its row; False to retry later."""
    surface = surface_for(reply)
    refs = list(reply.reply_refs or (reply.surface or {}).get("refs") or ())
    texts: list[str] = []
    if surface is not None and refs:
        for index, ref in enumerate(refs):
            try:
                shown = await surface.read(ref)
            except RateLimited:
                return False  # read it in a later pass rather than overwrite it unread
            except SurfaceError:
                shown = None  # refused: the message or its channel is gone
            text = "" if shown is None else _unplaceheld(shown.text, surface)
            texts.append(text)
            if not await _close_message(surface, ref, shown, text, last=index == len(refs) - 1):
                return False
    elif refs:
        log.warning("recovery: reply %s on %s cannot be edited (no surface)", reply.id, reply.key)
    await store.replies.mark_interrupted(reply.id, text="".join(texts) if texts else None)
    return True


async def _close_message(
    surface: Recoverable, ref: str, shown: Shown | None, text: str, *, last: bool
) -> bool:
    """One message of an orphaned reply: the last gets the note, an earlier live one its text
    without Stop. False when the edit is worth trying again later."""
    if shown is not None and not shown.live:
        return True  # finished on the platform (a frozen part, or the end was not stored)
    if not last and shown is None:
        return True  # unknown text: leave an earlier part as it is
    new = _with_interrupted(text, surface) if last else text or surface.render(PLACEHOLDER)
    return await _recovery_edit(surface, ref, new)


def _unplaceheld(text: str, surface: ReplySurface) -> str:
    """What a message shows, without the renderer's placeholders or a tool's status line (they
    are not an answer)."""
    placeholders = {PLACEHOLDER, THINKING_PLACEHOLDER}
    with contextlib.suppress(Exception):
        placeholders |= {surface.render(PLACEHOLDER), surface.render(THINKING_PLACEHOLDER)}
    text = without_status(text)
    return "" if text.strip() in placeholders else text


def _with_interrupted(text: str, surface: ReplySurface) -> str:
    note = say.INTERRUPTED
    with contextlib.suppress(Exception):
        note = surface.render(note)
    if not text.strip():
        return note
    room = surface.limits.max_chars - len(note) - 3
    body = text.rstrip()
    if len(body) > room:
        body = body[: max(0, room - 1)] + "…"
    return f"{body}\n\n{note}"


async def _recovery_edit(surface: Recoverable, ref: str, text: str) -> bool:
    """One edit after a crash, outside the renderer (nothing else is writing these messages).

    True when done or when the platform refuses for good (the message is gone); False when it
    is worth trying again in a later pass (rate limited for long, the network failed).
    """
    for _ in range(2):
        try:
            await surface.edit(ref, text, live=False)
            return True
        except RateLimited as exc:
            if exc.retry_after > _RECOVERY_MAX_WAIT:
                return False
            await asyncio.sleep(exc.retry_after)
        except SurfaceError as exc:
            log.warning("recovery: the platform refused to edit %s (%s); leaving it", ref, exc)
            return True
        except Exception as exc:
            log.warning("recovery: editing %s failed (%r); trying again later", ref, exc)
            return False
    return False
