"""How one answer looks on a terminal while it is written, and once it is done.

The core sends a reply as whole snapshots, and a snapshot is not always the start of the next
one: while a code fence is open the renderer closes it at the end of each snapshot, and a status
line can stand where the answer goes on. So a terminal that can move its cursor redraws the
answer in place and, once it is final, prints it once; one that cannot (``TERM=dumb``) is given
only the lines two snapshots in a row agree on, and the rest when the answer is final.
"""

from __future__ import annotations

import asyncio
import enum
import os
import time
from collections.abc import Iterator, Mapping
from typing import Protocol, TextIO

from rich.console import Console, ConsoleOptions, RenderableType
from rich.live import Live
from rich.markdown import Markdown
from rich.segment import Segment
from rich.text import Text

# Below this many columns tables and code panels no longer fit: the text is shown as written.
MIN_MARKDOWN_WIDTH = 40
# A redraw re-lays the whole answer out; a token can arrive every few milliseconds.
REDRAW_EVERY = 1 / 15
LABEL = "parley>"


class Mode(enum.Enum):
    MARKDOWN = "markdown"  # headings, lists, highlighted code and tables, redrawn in place
    PLAIN = "plain"  # the text as the model wrote it, redrawn in place
    APPEND = "append"  # the text as written, never redrawn: the terminal cannot move its cursor


def choose_mode(env: Mapping[str, str], width: int) -> Mode:
    """What this terminal can show: ``NO_COLOR`` and narrow windows get plain text, and a dumb
    terminal (no cursor movement) gets plain text that is only ever appended to."""
    if env.get("TERM", "").lower() in ("dumb", "unknown"):
        return Mode.APPEND
    if env.get("NO_COLOR", "") or width < MIN_MARKDOWN_WIDTH:
        return Mode.PLAIN
    return Mode.MARKDOWN


class View(Protocol):
    """One answer on the terminal, from its first snapshot to its final text."""

    def show(self, text: str) -> None:
        """A snapshot of the answer while it is still being written."""
        ...

    def finish(self, text: str) -> None:
        """The answer's final text: shown once, and the view is done."""
        ...

    def close(self) -> None:
        """The answer was abandoned (the console is quitting): leave the terminal usable."""
        ...


def open_view(out: TextIO, env: Mapping[str, str] | None = None) -> View:
    """A view for the next answer, suited to ``out`` as it is now (its width may have changed)."""
    env = os.environ if env is None else env
    no_color = bool(env.get("NO_COLOR"))
    console = Console(file=out, highlight=False, markup=False, emoji=False, no_color=no_color)
    mode = choose_mode(env, console.size.width)
    if mode is Mode.APPEND:
        return AppendView(out)
    return LiveView(console, markdown=mode is Mode.MARKDOWN)


class Tail:
    """The last lines of a renderable that fit on the screen.

    A live region is redrawn by moving the cursor up over it; lines that scrolled off the top are
    out of reach, and redrawing them would leave copies in the scrollback. So while an answer is
    taller than the screen only its end is shown, and the whole is printed once it is final.
    """

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        lines = console.render_lines(self.renderable, options.update(height=None), pad=False)
        room = max(1, console.size.height - 2)  # the label above, the cursor's line below
        for i, line in enumerate(lines[-room:]):
            if i:
                yield Segment.line()
            yield from line


class LiveView:
    """An answer redrawn in place with rich's ``Live``, then printed once when final."""

    def __init__(self, console: Console, *, markdown: bool) -> None:
        self._console = console
        self._markdown = markdown
        self._tail = Tail(Text(""))
        # transient: when the answer is final the live region is wiped and the answer printed
        # whole in its place, so the scrollback holds it once.
        self._live = Live(
            self._tail,
            console=console,
            auto_refresh=False,
            transient=True,
            vertical_overflow="visible",
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._redraw: asyncio.TimerHandle | None = None
        self._drawn_at = 0.0
        console.print(Text(LABEL, style="bold cyan"))
        self._live.start()

    def _renderable(self, text: str) -> RenderableType:
        if self._markdown:
            return Markdown(text, hyperlinks=False)
        return Text(text)

    def show(self, text: str) -> None:
        self._tail.renderable = self._renderable(text)
        if self._redraw is not None:
            return  # already due: it will draw the newest snapshot
        wait = self._drawn_at + REDRAW_EVERY - time.monotonic()
        if wait <= 0:
            self._draw()
        else:
            self._redraw = asyncio.get_running_loop().call_later(wait, self._draw)

    def _draw(self) -> None:
        self._redraw = None
        if self._live.is_started:
            self._live.refresh()
            self._drawn_at = time.monotonic()

    def finish(self, text: str) -> None:
        final = self._renderable(text)
        self._tail.renderable = Text("")  # stop() draws once more before it wipes the region
        self.close()
        self._console.print(final)
        self._console.print()

    def close(self) -> None:
        if self._redraw is not None:
            self._redraw.cancel()
            self._redraw = None
        if self._live.is_started:
            self._live.stop()


def settled(previous: str, current: str) -> str:
    """The lines two snapshots in a row agree on: the part of an answer that will not change."""
    common = previous[: _common_length(previous, current)]
    return common[: common.rfind("\n") + 1]


def _common_length(a: str, b: str) -> int:
    if b.startswith(a):
        return len(a)  # the usual case: the answer only grew
    low, high = 0, min(len(a), len(b))  # a[:low] == b[:low]; a[:high + 1] != b[:high + 1]
    while low < high:
        mid = (low + high + 1) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid - 1
    return low


class AppendView:
    """An answer on a terminal that can only append: settled lines as they come, the rest at the end."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._previous = ""
        self._printed = ""
        self._done = False
        self._write(LABEL + " ")

    def _write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    def show(self, text: str) -> None:
        ready = settled(self._previous, text)
        self._previous = text
        if len(ready) > len(self._printed) and ready.startswith(self._printed):
            self._write(ready[len(self._printed) :])
            self._printed = ready

    def finish(self, text: str) -> None:
        # A printed line that changed after all (rare: a status line two snapshots shared) means
        # the final text starts afresh on a new line rather than being spliced onto the old one.
        rest = text[len(self._printed) :] if text.startswith(self._printed) else "\n" + text
        self._write(rest.rstrip("\n") + "\n\n")
        self._done = True

    def close(self) -> None:
        if not self._done:
            self._write("\n")
            self._done = True
