"""An event loop in a thread, holding an async context open for sync tests (hypothesis).

::

    with Background() as bg:
        bench = bg.enter(slack_bench(tmp, "socket"))   # entered in the loop, exited at the end
        bg.run(bench.deliver(event))
"""

from __future__ import annotations

from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, TypeVar

from tests.fakes.loopback import LoopThread

T = TypeVar("T")


class Background:
    def __init__(self) -> None:
        self._thread: LoopThread | None = None
        self._contexts: list[AbstractAsyncContextManager[Any]] = []

    def __enter__(self) -> Background:
        self._thread = LoopThread("background-loop")
        return self

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        assert self._thread is not None, "use Background() as a context manager"
        return self._thread.run(coro, timeout)

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
            if self._thread is not None:
                self._thread.close()
