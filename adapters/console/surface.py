"""The console's two reply surfaces: a pipe gets each reply's final text, a terminal watches it grow.

Both save a file added to a reply (a generated picture) in the working directory: the optional
``Uploads`` capability, ``upload(name, data, media_type) -> str``, returning the file's name.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from adapters.console.view import View
from bot.render.surface import SurfaceLimits

# One reply is never split on a terminal: it scrolls.
_LIMITS = SurfaceLimits(max_chars=10_000_000)


def save_upload(directory: Path, name: str, data: bytes) -> str:
    """Writes ``data`` into ``directory`` as ``name`` (or ``name-2``… if that exists, never
    replacing a file) and returns the name used. Only the base name counts, made safe."""
    base = re.sub(r"[^\w.-]+", "_", Path(name.replace("\\", "/")).name).lstrip(".") or "file"
    stem, dot, suffix = base.rpartition(".") if "." in base else (base, "", "")
    for n in range(1, 10_000):
        candidate = base if n == 1 else f"{stem}-{n}{dot}{suffix}"
        try:
            with (directory / candidate).open("xb") as handle:
                handle.write(data)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"no free name for {base} in {directory}")


class _ConsoleSurface:
    """What both surfaces share: one message per reply, Markdown as it is, no status line, and
    pictures saved in the working directory."""

    @property
    def limits(self) -> SurfaceLimits:
        return _LIMITS

    def render(self, markdown: str) -> str:
        return markdown

    async def set_status(self, status: str | None) -> None:
        return None

    async def upload(self, name: str, data: bytes, media_type: str) -> str:
        return await asyncio.to_thread(save_upload, Path.cwd(), name, data)


class PipedSurface(_ConsoleSurface):
    """The line protocol: each reply's final text, then a blank line, and nothing else on stdout."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    async def post(self, text: str, *, live: bool) -> str:
        await self.edit("console", text, live=live)
        return "console"

    async def edit(self, ref: str, text: str, *, live: bool) -> None:
        if not live:
            self._out.write(text.rstrip("\n") + "\n\n")
            self._out.flush()


class TerminalSurface(_ConsoleSurface):
    """One reply on a terminal, drawn by a :class:`View` opened when the reply is first posted.

    ``ref`` is the posted message's id once there is one: what the Stop request (Ctrl-C) names.
    """

    def __init__(self, open_view: Callable[[], View]) -> None:
        self._open_view = open_view
        self._view: View | None = None
        self.ref: str | None = None

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

    def close(self) -> None:
        """The reply was abandoned before its final text: leave the terminal usable."""
        if self._view is not None:
            self._view.close()
