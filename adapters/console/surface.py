"""The console's two reply surfaces: a pipe gets each reply's final text, a terminal watches it grow."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TextIO

from adapters.console.view import View
from bot.render.surface import SurfaceLimits

# One reply is never split on a terminal: it scrolls.
_LIMITS = SurfaceLimits(max_chars=10_000_000)


class PipedSurface:
    """The line protocol: each reply's final text, then a blank line, and nothing else on stdout."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    @property
    def limits(self) -> SurfaceLimits:
        return _LIMITS

    def render(self, markdown: str) -> str:
        return markdown

    async def post(self, text: str, *, live: bool) -> str:
        await self.edit("console", text, live=live)
        return "console"

    async def edit(self, ref: str, text: str, *, live: bool) -> None:
        if not live:
            self._out.write(text.rstrip("\n") + "\n\n")
            self._out.flush()

    async def set_status(self, status: str | None) -> None:
        return None


class TerminalSurface:
    """One reply on a terminal, drawn by a :class:`View` opened when the reply is first posted.

    ``ref`` is the posted message's id once there is one: what the Stop request (Ctrl-C) names.
    """

    def __init__(self, open_view: Callable[[], View]) -> None:
        self._open_view = open_view
        self._view: View | None = None
        self.ref: str | None = None

    @property
    def limits(self) -> SurfaceLimits:
        return _LIMITS

    def render(self, markdown: str) -> str:
        return markdown

    async def post(self, text: str, *, live: bool) -> str:
        ref = f"console:{uuid.uuid4().hex[:12]}"
        await self.edit(ref, text, live=live)
        self.ref = ref
        return ref

    async def edit(self, ref: str, text: str, *, live: bool) -> None:
        if self._view is None:
            self._view = self._open_view()
        if live:
            self._view.show(text)
        else:
            self._view.finish(text)

    async def set_status(self, status: str | None) -> None:
        return None

    def close(self) -> None:
        """The reply was abandoned before its final text: leave the terminal usable."""
        if self._view is not None:
            self._view.close()
