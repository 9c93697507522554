"""Several instances on one database (PostgreSQL): taking over from the ones that stop.

The conversation service creates a :class:`TakeOver` when its store is shared. At each tick of
the heartbeat (``bot/instances.py``) it:

1. closes the replies of processes that stopped heart-beating (``bot/recovery.py``: their writer
   is not alive) — first, so that the next turn of the conversation reads what they had shown;
2. adopts the open turns such processes left (``store.turns.adopt``): one whose reply had begun
   is only ended (no second answer), one still waiting becomes this process's, keeping its
   place in the queue, and is rebuilt by its adapter (``revive_with``) and answered here;
3. tidies this process's own turns (a finish lost to a database hiccup must not block a
   conversation) and, now and then, prunes ended turns and long-dead instances' rows.

At shutdown, turns still waiting here are handed back: the next live instance adopts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

from bot.queue import SharedTurnQueue
from bot.recovery import Recovery
from bot.settings import Settings
from bot.store import Store, StoreError
from bot.store.instances import STOP_CHANNEL
from bot.store.leases import NOTIFY_CHANNEL, TurnEntry
from bot.store.notify import Listener
from bot.types import IncomingMessage

log = logging.getLogger("parley.conversation")

# Rebuilds a message a stopped instance left waiting, from the ``origin`` its adapter gave it;
# None when it is no longer to be answered (deleted, or no longer for Parley).
Rebuild = Callable[[Mapping[str, Any]], Awaitable[IncomingMessage | None]]
# Runs a turn that holds a place in the shared queue (the service's).
RunTurn = Callable[[IncomingMessage, TurnEntry], Awaitable[object]]
# Counts the current task as a handler of the service (drain waits for it).
Track = Callable[[], contextlib.AbstractContextManager[None]]

# Ticks of the heartbeat between two prunings of ended turns and long-dead instances' rows.
_TIDY_EVERY = 20
# A dead instance's row is kept this long after its last beat (doctor shows recent deaths).
FORGET_INSTANCES = timedelta(days=1)


class TakeOver:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        process: str,
        queue: SharedTurnQueue,
        recovery: Recovery,
        *,
        run: RunTurn,
        track: Track,
        stop: Callable[[str], bool],
    ) -> None:
        self._settings = settings
        self._store = store
        self._process = process
        self._queue = queue
        self._recovery = recovery
        self._run = run
        self._track = track
        self.rebuilders: dict[str, Rebuild] = {}
        self._stop = stop
        self._listener = Listener(store.engine, {NOTIFY_CHANNEL: queue.wake, STOP_CHANNEL: self._stop_asked})
        self._revivals: set[asyncio.Task[None]] = set()
        self._ticks = 0
        self._stopping = False  # a stopping process hands turns over; it takes none

    async def start(self) -> None:
        await self._listener.ensure()

    async def aclose(self) -> None:
        await self._listener.aclose()

    async def tick(self) -> None:
        """Close silent instances' replies, then answer the turns they left waiting."""
        self._ticks += 1
        await self._listener.ensure()
        # Replies first: the turn after an interrupted one must read what it had shown.
        await self._recovery.sweep()
        if self._stopping:
            return
        timeout = self._settings.parley_instance_timeout
        adopted = await self._store.turns.adopt(self._process, sorted(self.rebuilders), silent_for=timeout)
        for conversation in adopted.moved:
            self._queue.wake(conversation)
        for entry in adopted.given_up:
            log.warning(
                "gave up turn %s in %s: each instance taking it stopped", entry.event_id, entry.conversation
            )
        for entry in adopted.revive:
            task = asyncio.create_task(self._revive(entry), name=f"parley revive {entry.event_id}")
            self._revivals.add(task)
            task.add_done_callback(self._revivals.discard)
        await self._store.turns.tidy(self._process, self._queue.known())
        await self._store.instances.drop_held_slots(timeout)
        if self._ticks % _TIDY_EVERY == 0:
            await self._store.turns.prune()
            await self._store.instances.forget(older_than=FORGET_INSTANCES.total_seconds())

    async def hand_back(self) -> None:
        """Stopping: turns still waiting here are left to a live instance, which answers them."""
        self._stopping = True
        try:
            handed = await self._store.turns.hand_back(self._process)
        except StoreError as exc:
            log.warning("could not hand waiting turns over: %s", exc)
            return
        for entry in handed:
            self._queue.wake(entry.conversation)
        if handed:
            log.info("left %d waiting turns to the other instances", len(handed))

    # -- Stop pressed on a reply another instance writes ------------------------------------------

    async def owner_elsewhere(self, ref: str) -> str | None:
        """Who asked the question of the reply another live instance writes in message ``ref``."""
        found = await self._writer_elsewhere(ref)
        return None if found is None else found[1]

    async def stop_elsewhere(self, ref: str) -> bool:
        """Ask the instance writing message ``ref`` to stop it; False if none does."""
        found = await self._writer_elsewhere(ref)
        if found is None:
            return False
        try:
            await self._store.instances.ask_to_stop(found[0], ref)
        except StoreError as exc:
            log.warning("could not pass a Stop on to the instance writing %s: %s", ref, exc)
            return False
        return True

    async def _writer_elsewhere(self, ref: str) -> tuple[str, str] | None:
        try:
            found = await self._store.instances.writer_of(ref)
        except StoreError as exc:
            log.warning("could not look up who writes %s: %s", ref, exc)
            return None
        if found is None or found[0] == self._process:
            return None
        return found

    def _stop_asked(self, payload: str) -> None:
        try:
            asked = json.loads(payload)
            process, ref = str(asked["process"]), str(asked["ref"])
        except (ValueError, KeyError, TypeError):
            return
        if process == self._process and self._stop(ref):
            log.info("stopped the reply in %s at another instance's request", ref)

    async def _revive(self, entry: TurnEntry) -> None:
        """Answer a turn a stopped instance left waiting, rebuilt by its adapter."""
        with self._track():
            msg = await self._rebuild(entry)
            if msg is None:
                with contextlib.suppress(StoreError):
                    await self._store.turns.finish(entry)
                return
            msg.event_id = entry.event_id
            log.info("answering turn %s in %s, left waiting by a stopped instance", entry.event_id, msg.key)
            try:
                await self._run(msg, entry)
            except Exception:
                log.exception("revived turn %s failed outside the reply", entry.event_id)

    async def _rebuild(self, entry: TurnEntry) -> IncomingMessage | None:
        rebuild = self.rebuilders.get(entry.platform)
        if rebuild is None or entry.origin is None:
            log.warning("turn %s in %s cannot be rebuilt here; dropped", entry.event_id, entry.conversation)
            return None
        try:
            msg = await rebuild(entry.origin)
        except Exception:
            log.exception("rebuilding turn %s failed; dropped", entry.event_id)
            return None
        if msg is None:
            log.info("turn %s in %s is no longer to be answered; dropped", entry.event_id, entry.conversation)
        return msg
