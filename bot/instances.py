"""This process among the instances that share its database: its heartbeat, and a tick.

Every ``PARLEY_INSTANCE_TIMEOUT / 5`` seconds the process moves its row in ``instances``
(``bot/store/instances.py``) and, on a shared database, runs ``on_tick``: the conversation
service then takes over from processes silent for ``PARLEY_INSTANCE_TIMEOUT`` (closing their
replies, answering their waiting turns; see ``bot/service.py``). On SQLite the heartbeat alone
runs, so that ``parley doctor`` (and a second ``parley run``) can see a file already in use.

A process whose heartbeats stopped for longer than the timeout (a stalled loop, a database out
of reach) was taken for dead by the others: its waiting turns may be answered elsewhere by now
(it notices, since they are no longer its own, and drops them), and it says so in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable

from bot.store import Store, StoreError

log = logging.getLogger("parley.instances")

Tick = Callable[[], Awaitable[None]]
# Heartbeats per timeout: one or two may be late (a busy loop, a slow database) before the
# others act. Four missed in a row mean the process is gone.
BEATS_PER_TIMEOUT = 5


class Membership:
    def __init__(
        self,
        store: Store,
        process: str,
        *,
        name: str | None,
        timeout: float,
        on_tick: Tick | None = None,
    ) -> None:
        self.store = store
        self.process = process
        self.name = name
        self.timeout = timeout
        self.interval = timeout / BEATS_PER_TIMEOUT
        self.platforms: set[str] = set()  # adapters that run here (they registered for recovery)
        # On a shared database: live instances per platform they run, this one included.
        self.peers: dict[str, int] = {}
        self._on_tick = on_tick
        self._task: asyncio.Task[None] | None = None
        self._last_beat: float | None = None
        self._checked = False  # whether this process looked for another `parley run` on SQLite

    async def start(self) -> None:
        """The first heartbeat (before any turn is taken, so no one takes this process's turns for
        a dead one's), then the loop."""
        await self._beat()
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="parley heartbeat")

    async def stop(self) -> None:
        """Stop beating and leave the table: a clean stop is not a death."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(StoreError):
            await self.store.instances.leave(self.process)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self._beat()
            except StoreError as exc:
                log.warning("heartbeat: %s", exc)
                continue
            if not self.store.shared:
                await self._check_alone()
                continue
            try:
                await self._count_peers()
                if self._on_tick is not None:
                    await self._on_tick()
            except Exception:
                log.exception("taking over from silent instances failed")

    async def check_alone(self) -> bool:
        """On SQLite, once this process runs an adapter: whether it is the only ``parley run`` on
        the file; if not, say so in the log (``parley doctor`` warns too)."""
        others = [r for r in await self.store.instances.alive(self.timeout) if r.process != self.process]
        running = [r for r in others if r.platforms]
        if running:
            log.warning(
                "another Parley (%s) is using this SQLite database: run one instance per SQLite "
                "file, or use PostgreSQL for several",
                ", ".join(f"{r.name or r.process} on {r.host}, pid {r.pid}" for r in running),
            )
        return not running

    async def _check_alone(self) -> None:
        if self._checked or not self.platforms:
            return  # a console or a tool shares the file with a `parley run` by design
        self._checked = True
        try:
            await self.check_alone()
        except StoreError:
            self._checked = False

    def running(self, platform: str) -> int:
        """How many live instances run ``platform`` (1 until known: this one)."""
        return max(1, self.peers.get(platform, 1))

    async def _count_peers(self) -> None:
        peers: dict[str, int] = {}
        for row in await self.store.instances.alive(self.timeout):
            for platform in row.platforms:
                peers[platform] = peers.get(platform, 0) + 1
        self.peers = peers

    async def _beat(self) -> None:
        await self.store.instances.beat(
            self.process,
            name=self.name,
            host=socket.gethostname(),
            pid=os.getpid(),
            platforms=self.platforms,
        )
        now = time.monotonic()
        last, self._last_beat = self._last_beat, now
        if last is not None and now - last > self.timeout and self.store.shared:
            log.error(
                "this process was silent for over %.0f s and taken for dead by the other instances; "
                "its waiting turns may be answered elsewhere",
                self.timeout,
            )
