"""``parley`` under a real pseudo-terminal, and the screen a terminal emulator makes of its output.

pexpect gives the process a pty (so it sees a TTY, a window size and Ctrl-C as SIGINT); pyte plays
the bytes it writes onto a screen with scrollback, as a terminal would. Tests read that screen:
what a person sees, and what stays in the scrollback, not the bytes that drew it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pexpect
import pyte

_KEEP = ("PATH", "HOME", "SYSTEMROOT", "TMPDIR", "USER")


class Terminal:
    """One ``python -m bot ARGS`` in a ``rows`` x ``cols`` pseudo-terminal."""

    def __init__(self, *args: str, cwd: Path, env: dict[str, str], rows: int = 40, cols: int = 100) -> None:
        full = {k: v for k, v in os.environ.items() if k in _KEEP}
        full.update({"TERM": "xterm-256color", "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"})
        full.update(env)
        self.cols = cols
        self.screen = pyte.HistoryScreen(cols, rows, history=5000, ratio=0.5)
        self._stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()
        self.child = pexpect.spawn(
            sys.executable, ["-m", "bot", *args], cwd=str(cwd), env=full, dimensions=(rows, cols)
        )

    def _pump(self, wait: float) -> bool:
        """Feeds what the process wrote within ``wait`` s to the screen; False once it has exited."""
        try:
            data = self.child.read_nonblocking(65536, timeout=wait)
        except pexpect.TIMEOUT:
            return True
        except pexpect.EOF:
            return False
        self.raw.extend(data)
        self._stream.feed(data)
        return True

    def wait_for(self, predicate: Callable[[], bool], within: float = 30.0) -> bool:
        end = time.monotonic() + within
        while not predicate():
            if time.monotonic() >= end or not self._pump(0.05):
                return predicate()
        return True

    def shows(self, text: str, within: float = 30.0) -> bool:
        return self.wait_for(lambda: text in self.text(), within)

    def lines(self) -> list[str]:
        """The scrollback and the screen, top to bottom, each line without trailing blanks."""
        history = [_line(row, self.cols) for row in self.screen.history.top]
        return [*history, *(row.rstrip() for row in self.screen.display)]

    def text(self) -> str:
        return "\n".join(self.lines())

    def cursor_line(self) -> str:
        return self.screen.display[self.screen.cursor.y].rstrip()

    def at_prompt(self, count: int) -> bool:
        """Whether the ``count``-th ``you>`` prompt is showing, waiting on its line."""
        prompts = sum(line.startswith("you>") for line in self.lines())
        return prompts >= count and self.cursor_line() == "you>"

    def type(self, line: str) -> None:
        self.child.sendline(line)

    def ctrl_c(self) -> None:
        self.child.sendintr()

    def wait_exit(self, within: float = 30.0) -> int | None:
        """The exit status once the process has ended (and its last output is on the screen)."""
        self.wait_for(lambda: False, within)  # reads to the end of its output
        end = time.monotonic() + 5
        while self.child.isalive() and time.monotonic() < end:
            time.sleep(0.05)
        if self.child.isalive():
            return None
        self.child.close()
        status = self.child.exitstatus
        return status if status is not None else -(self.child.signalstatus or 0)

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


def _line(row: dict[int, pyte.screens.Char], cols: int) -> str:
    return "".join(row[x].data for x in range(cols)).rstrip()
