"""What the person at the terminal does: lines typed, and Ctrl-C, as things the event loop awaits."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import signal
from collections.abc import Iterator
from types import TracebackType
from typing import Self


class TerminalLines:
    """Lines typed at a terminal, read when the event loop sees them arrive.

    No thread: one blocked in a read would hold the process open after Ctrl-C until Enter. The
    terminal's own line editing (canonical mode) hands over whole lines; an empty read is Ctrl-D.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._fd, self._readable)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._loop = None

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # the terminal went away (EIO): the same as Ctrl-D
        if not data:
            self._stop()
            self._queue.put_nowait(None)
            return
        *lines, self._partial = (self._partial + self._decoder.decode(data)).split("\n")
        for line in lines:
            self._queue.put_nowait(line.rstrip("\r"))

    async def get(self) -> str | None:
        """The next line, without its line ending; None once the input has ended."""
        return await self._queue.get()

    def typed_ahead(self) -> bool:
        """Whether a line (or the end) is already waiting: typed, unseen, during an answer."""
        return not self._queue.empty()


@contextlib.contextmanager
def quiet_keys(fd: int) -> Iterator[None]:
    """While an answer is drawn in place: keys typed are not echoed, and Ctrl-C keeps output.

    An echo lands inside the live region; a ``^C`` after its last column wraps it a line further
    than the redraw knows, leaving a copy of the answer behind. And by default Ctrl-C makes the
    terminal discard output not yet shown, which can cut a redraw in half (NOFLSH keeps it).
    Lines typed meanwhile are still read, and shown at the next prompt.
    """
    try:
        import termios
    except ImportError:  # not a POSIX terminal
        yield
        return
    try:
        saved = termios.tcgetattr(fd)
    except termios.error:
        yield
        return
    quiet = list(saved)
    quiet[3] = (quiet[3] & ~(termios.ECHO | termios.ECHOCTL)) | termios.NOFLSH
    termios.tcsetattr(fd, termios.TCSANOW, quiet)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)


class Interrupts:
    """Ctrl-C (SIGINT) as an event to await, rather than a KeyboardInterrupt wherever it lands.

    Where the loop cannot take the signal (not the main thread), Ctrl-C keeps Python's default.
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[None] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> Self:
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGINT, self._queue.put_nowait, None)
        except (NotImplementedError, RuntimeError, ValueError):
            return self
        self._loop = loop
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.remove_signal_handler(signal.SIGINT)
            self._loop = None

    async def next(self) -> None:
        """Returns at the next Ctrl-C (or at once for one pressed since the last call)."""
        await self._queue.get()
