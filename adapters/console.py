"""The console: the same core, from a terminal.

On a TTY the reply streams in as it grows. Otherwise each input line is one turn and each reply
is printed whole, followed by a blank line; stdout holds nothing else.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import getpass
import os
import sys
import uuid
from pathlib import Path
from typing import TextIO

from bot.render.surface import SurfaceLimits
from bot.runtime import Runtime
from bot.types import Attachment, Author, ConversationKey, IncomingMessage, Outcome

_MAX_ATTACHMENT_BYTES = 64 * 1024 * 1024


class ConsoleSurface:
    """Writes one reply to a terminal (streaming) or a pipe (final text only)."""

    def __init__(self, out: TextIO, *, streaming: bool) -> None:
        self._out = out
        self._streaming = streaming
        self._shown = ""
        self._limits = SurfaceLimits(max_chars=10_000_000)

    @property
    def limits(self) -> SurfaceLimits:
        return self._limits

    def render(self, markdown: str) -> str:
        return markdown

    async def post(self, text: str, *, live: bool) -> str:
        await self.edit("console", text, live=live)
        return "console"

    async def edit(self, ref: str, text: str, *, live: bool) -> None:
        if not self._streaming:
            if not live:
                self._out.write(text.rstrip("\n") + "\n\n")
                self._out.flush()
            return
        if text.startswith(self._shown):
            self._out.write(text[len(self._shown) :])
        elif "\n" not in self._shown:
            # Only a placeholder or a status line so far: redraw that line.
            self._out.write("\r\x1b[K" + text)
        else:
            self._out.write("\n" + text)
        self._shown = text
        if not live:
            self._out.write("\n\n")
        self._out.flush()

    async def set_status(self, status: str | None) -> None:
        return None


def _file_attachment(path: Path) -> Attachment:
    async def fetch(max_bytes: int) -> bytes:
        def read() -> bytes:
            with path.open("rb") as handle:
                return handle.read(max_bytes + 1)

        return await asyncio.to_thread(read)

    return Attachment(name=path.name, declared_type=None, size=path.stat().st_size, fetch=fetch)


async def _lines(stream: TextIO) -> asyncio.Queue[str | None]:
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def pump() -> None:
        for line in stream:
            loop.call_soon_threadsafe(queue.put_nowait, line)
        loop.call_soon_threadsafe(queue.put_nowait, None)

    loop.run_in_executor(None, pump)
    return queue


async def main(runtime: Runtime, *, thread: str | None, model: str | None, attach: list[str]) -> int:
    """The ``parley console`` loop; returns the exit status."""
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    missing = [name for name in attach if not Path(name).is_file()]  # noqa: ASYNC240 - once, at start
    if missing:
        print(f"parley: --attach: no such file {missing[0]}", file=sys.stderr)
        return 2
    attachments = [_file_attachment(Path(name)) for name in attach]
    thread_name = thread or "console-" + dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    key = ConversationKey("console", "", "console", thread_name)
    user = os.environ.get("USER") or _safe_user()
    author = Author(id=f"console:{user}", name=user)
    if interactive:
        print(
            f"Parley console — conversation '{thread_name}' (continue it later with --thread "
            f"{thread_name}). Ctrl-D to quit.",
            file=sys.stderr,
        )
    failed = False
    lines = await _lines(sys.stdin)
    while True:
        if interactive:
            sys.stdout.write("you> ")
            sys.stdout.flush()
        line = await lines.get()
        if line is None:
            break
        text = line.rstrip("\r\n")
        if not text.strip() and not attachments:
            continue
        if interactive:
            sys.stdout.write("parley> ")
        message = IncomingMessage(
            key=key,
            event_id=uuid.uuid4().hex,
            author=author,
            text=text,
            surface=ConsoleSurface(sys.stdout, streaming=interactive),
            attachments=tuple(attachments),
            model=model,
        )
        attachments = []
        result = await runtime.service.handle(message)
        if result is None or result.outcome is Outcome.ERROR:
            failed = True
    if interactive:
        print(file=sys.stderr)
    return 1 if failed else 0


def _safe_user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "you"
