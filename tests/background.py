"""An event loop in a thread, holding an async context open for sync tests (hypothesis).

::

    with Background() as bg:
        bench = bg.enter(slack_bench(tmp, "socket"))   # entered in the loop, exited at the end
        bg.run(bench.deliver(event))
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")


class Background:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="background-loop", daemon=True)
        self._contexts: list[AbstractAsyncContextManager[Any]] = []

    def __enter__(self) -> Background:
        self._thread.start()
        return self

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def enter(self, context: AbstractAsyncContextManager[T]) -> T:
        value = self.run(context.__aenter__())
        self._contexts.append(context)
        return value

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            while self._contexts:
                self.run(self._contexts.pop().__aexit__(None, None, None))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()
