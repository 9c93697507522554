"""Background work an adapter owns: failures logged, waited for and cancelled at shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any


class TaskSet:
    """Tasks spawned by an adapter. ``background`` ones (a typing loop) are never waited for,
    only cancelled at :meth:`drain`."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._tasks: set[asyncio.Task[Any]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    def spawn(
        self, coro: Coroutine[Any, Any, Any], name: str, *, background: bool = False
    ) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(self._guard(coro, name), name=name)
        tasks = self._background if background else self._tasks
        tasks.add(task)
        if not background:
            self._idle.clear()
        task.add_done_callback(lambda done: self._finished(tasks, done))
        return task

    def _finished(self, tasks: set[asyncio.Task[Any]], task: asyncio.Task[Any]) -> None:
        tasks.discard(task)
        if not self._tasks:
            self._idle.set()

    async def _guard(self, coro: Coroutine[Any, Any, Any], name: str) -> Any:
        try:
            return await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            self._log.exception("%s failed", name)
            return None

    @property
    def busy(self) -> int:
        """Foreground tasks still running."""
        return sum(not t.done() for t in self._tasks)

    async def wait_idle(self, within: float | None = None) -> None:
        await asyncio.wait_for(self._idle.wait(), within)

    async def drain(self, within: float) -> None:
        """Let foreground work finish for ``within`` seconds, then cancel what is left."""
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=within)
        left = [*self._tasks, *self._background]
        for task in left:
            task.cancel()
        if left:
            await asyncio.wait(left, timeout=5)
