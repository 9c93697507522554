"""The ``parley console`` loop: one conversation, one turn per line typed or piped in."""

from __future__ import annotations

import asyncio
import datetime as dt
import getpass
import os
import sys
import uuid
from pathlib import Path
from typing import TextIO

from adapters.console.keys import Interrupts, TerminalLines, quiet_keys
from adapters.console.surface import PipedSurface, TerminalSurface
from adapters.console.view import open_view
from bot.render.surface import ReplySurface
from bot.runtime import Runtime
from bot.service import ConversationService
from bot.types import Attachment, Author, ConversationKey, IncomingMessage, Outcome, ReplyResult

PROMPT = "you> "
# After a second Ctrl-C, how long the stopped answer gets to write its last words and its row.
QUIT_GRACE = 5.0
# How often a Ctrl-C pressed before the reply's first message is retried until there is one.
_STOP_RETRY = 0.05


class Session:
    """The console's conversation, who is typing, and the files for the first turn."""

    def __init__(self, thread: str, model: str | None, attachments: list[Attachment]) -> None:
        self.thread = thread
        self.key = ConversationKey("console", "", "console", thread)
        user = os.environ.get("USER") or _safe_user()
        self.author = Author(id=f"console:{user}", name=user)
        self.model = model
        self._attachments = attachments

    def message(self, text: str, surface: ReplySurface) -> IncomingMessage | None:
        """The turn for one line; None for a blank line with nothing attached."""
        if not text.strip() and not self._attachments:
            return None
        attachments, self._attachments = tuple(self._attachments), []
        return IncomingMessage(
            key=self.key,
            event_id=uuid.uuid4().hex,
            author=self.author,
            text=text,
            surface=surface,
            attachments=attachments,
            model=self.model,
        )


async def main(runtime: Runtime, *, thread: str | None, model: str | None, attach: list[str]) -> int:
    """The ``parley console`` loop; returns the exit status."""
    missing = [name for name in attach if not Path(name).is_file()]  # noqa: ASYNC240 - once, at start
    if missing:
        print(f"parley: --attach: no such file {missing[0]}", file=sys.stderr)
        return 2
    attachments = [_file_attachment(Path(name)) for name in attach]
    thread_name = thread or "console-" + dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    session = Session(thread_name, model, attachments)
    if sys.stdin.isatty() and sys.stdout.isatty():
        return await _interactive(runtime.service, session)
    return await _piped(runtime.service, session)


def _failed(result: ReplyResult | None) -> bool:
    return result is None or result.outcome is Outcome.ERROR


# -- a pipe: the line protocol ------------------------------------------------------------------


async def _piped(service: ConversationService, session: Session) -> int:
    failed = False
    lines = await _lines(sys.stdin)
    while (line := await lines.get()) is not None:
        message = session.message(line.rstrip("\r\n"), PipedSurface(sys.stdout))
        if message is not None:
            failed |= _failed(await service.handle(message))
    return 1 if failed else 0


async def _lines(stream: TextIO) -> asyncio.Queue[str | None]:
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def pump() -> None:
        for line in stream:
            loop.call_soon_threadsafe(queue.put_nowait, line)
        loop.call_soon_threadsafe(queue.put_nowait, None)

    loop.run_in_executor(None, pump)
    return queue


# -- a terminal: answers drawn in place, Ctrl-C to stop one ---------------------------------------


async def _interactive(service: ConversationService, session: Session) -> int:
    print(
        f"Parley console — conversation '{session.thread}' (continue it later with --thread "
        f"{session.thread}). Ctrl-C stops an answer; Ctrl-D, or Ctrl-C here, quits.",
        file=sys.stderr,
    )
    failed = False
    with TerminalLines(sys.stdin.fileno()) as lines, Interrupts() as interrupts:
        while (text := await _prompt(lines, interrupts)) is not None:
            surface = TerminalSurface(lambda: open_view(sys.stdout))
            message = session.message(text, surface)
            if message is None:
                continue
            with quiet_keys(sys.stdin.fileno()):
                result, quit = await _answer(service, message, surface, interrupts)
            failed |= _failed(result) and not (quit and result is None)
            if quit:
                break
    print(file=sys.stderr)
    return 1 if failed else 0


async def _prompt(lines: TerminalLines, interrupts: Interrupts) -> str | None:
    """The next line typed; None at Ctrl-D or Ctrl-C."""
    sys.stdout.write(PROMPT)
    sys.stdout.flush()
    unseen = lines.typed_ahead()
    read = asyncio.ensure_future(lines.get())
    ctrl_c = asyncio.ensure_future(interrupts.next())
    try:
        await asyncio.wait({read, ctrl_c}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        read.cancel()
        ctrl_c.cancel()
    line = read.result() if read.done() and not read.cancelled() else None
    if unseen and line is not None:
        print(line)  # typed while an answer was drawn, with the echo off
    return line


async def _answer(
    service: ConversationService, message: IncomingMessage, surface: TerminalSurface, interrupts: Interrupts
) -> tuple[ReplyResult | None, bool]:
    """Runs one turn: a first Ctrl-C stops the answer, a second quits. Returns (result, quit)."""
    turn = asyncio.ensure_future(service.handle(message))
    stopping: asyncio.Task[None] | None = None
    try:
        while True:
            ctrl_c = asyncio.ensure_future(interrupts.next())
            await asyncio.wait({turn, ctrl_c}, return_when=asyncio.FIRST_COMPLETED)
            if turn.done():
                ctrl_c.cancel()
                return turn.result(), False
            if stopping is None:
                stopping = asyncio.create_task(_stop(service, surface, turn))
                continue
            return await _abandon(turn), True
    finally:
        if stopping is not None:
            stopping.cancel()
        surface.close()


async def _stop(
    service: ConversationService, surface: TerminalSurface, turn: asyncio.Future[ReplyResult | None]
) -> None:
    """Stop the reply like its Stop button: what was written stays, marked stopped.

    A Ctrl-C that comes before the reply's first message has nothing to name yet; it is retried
    until there is one (or the turn is over).
    """
    while not turn.done():
        if surface.ref is not None and service.stop(surface.ref):
            return
        await asyncio.sleep(_STOP_RETRY)


async def _abandon(turn: asyncio.Future[ReplyResult | None]) -> ReplyResult | None:
    """The console is quitting: give a stopped turn a moment to finish, then cancel it."""
    try:
        return await asyncio.wait_for(asyncio.shield(turn), QUIT_GRACE)
    except TimeoutError:
        turn.cancel()
        await asyncio.wait({turn})
        return None


def _file_attachment(path: Path) -> Attachment:
    async def fetch(max_bytes: int) -> bytes:
        def read() -> bytes:
            with path.open("rb") as handle:
                return handle.read(max_bytes + 1)

        return await asyncio.to_thread(read)

    return Attachment(name=path.name, declared_type=None, size=path.stat().st_size, fetch=fetch)


def _safe_user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "you"
