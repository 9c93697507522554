"""The lifecycle the loopback fakes share: ``async with`` in the test's loop, or a thread of its own.

A fake whose user is synchronous code, or a ``parley run`` child process, cannot be served by the
test's event loop; :meth:`LoopbackServer.in_thread` gives it a loop in a daemon thread and hands
it over only once ``start()`` has returned, which is when every fake is listening.

:class:`TcpProxy` sits between Parley and a real server (PostgreSQL) to cut it off and bring it
back.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, ClassVar, Self, TypeVar

T = TypeVar("T")


class LoopThread:
    """An event loop running forever in a daemon thread, until :meth:`close`."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        # Code on the loop that asks for "the current loop" outside a coroutine finds this one.
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run ``coro`` on the loop from another thread and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class LoopbackServer:
    """Base of a fake server: subclasses define ``start()`` (returns once listening) and ``stop()``."""

    #: The name of the thread :meth:`in_thread` serves the fake from.
    thread_name: ClassVar[str] = "fake-server"
    #: Whether a ``stop()`` that fails at the end of :meth:`in_thread` is ignored (the thread ends anyway).
    ignore_stop_errors: ClassVar[bool] = False

    async def start(self) -> Self:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @classmethod
    @contextmanager
    def in_thread(cls, **kwargs: Any) -> Iterator[Self]:
        """Build and start the fake on its own loop in a daemon thread (sync or subprocess tests)."""
        thread = LoopThread(cls.thread_name)
        try:
            server = thread.run(cls._started(kwargs))
        except BaseException:
            thread.close()
            raise
        try:
            yield server
        finally:
            try:
                thread.run(server.stop())
            except Exception:
                if not cls.ignore_stop_errors:
                    raise
            finally:
                thread.close()

    @classmethod
    async def _started(cls, kwargs: dict[str, Any]) -> Self:
        # Built on the fake's own loop, so nothing it creates belongs to the caller's thread.
        return await cls(**kwargs).start()


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target``, in a thread; :meth:`cut` makes the target
    unreachable (connections reset, new ones refused) and :meth:`restore` brings it back."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._thread = LoopThread("tcp-proxy")
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.restore()

    def restore(self) -> None:
        async def listen() -> None:
            self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)
            self.port = self._server.sockets[0].getsockname()[1]

        self._thread.run(listen())

    def cut(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
                self._server = None
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()

        self._thread.run(close())

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.transport.abort()
                self._writers.discard(dst)

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))

    def close(self) -> None:
        self.cut()
        self._thread.close()
