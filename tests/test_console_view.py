"""The console's terminal pieces on their own: which view a terminal gets, what an append-only
terminal is given, the tail of a tall answer, and what one and two Ctrl-Cs do to a turn."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from rich.text import Text

from adapters.console import app
from adapters.console.surface import PipedSurface, TerminalSurface, save_upload
from adapters.console.view import AppendView, Mode, Tail, choose_mode, settled
from bot.types import Author, ConversationKey, IncomingMessage, Outcome, ReplyResult


@pytest.mark.parametrize(
    ("env", "width", "mode"),
    [
        ({"TERM": "xterm-256color"}, 80, Mode.MARKDOWN),
        ({}, 80, Mode.MARKDOWN),
        ({"TERM": "xterm", "NO_COLOR": "1"}, 120, Mode.PLAIN),
        ({"TERM": "xterm", "NO_COLOR": ""}, 120, Mode.MARKDOWN),  # set but empty: no-color.org
        ({"TERM": "xterm"}, 39, Mode.PLAIN),
        ({"TERM": "dumb"}, 120, Mode.APPEND),
        ({"TERM": "dumb", "NO_COLOR": "1"}, 20, Mode.APPEND),
    ],
)
def test_choose_mode(env: dict[str, str], width: int, mode: Mode) -> None:
    assert choose_mode(env, width) is mode


def test_settled_is_what_two_snapshots_agree_on_in_whole_lines() -> None:
    assert settled("", "…") == ""
    assert settled("…", "Hello") == ""
    assert settled("Hello\nthe", "Hello\nthere") == "Hello\n"
    # The renderer closes an open fence at the end of each snapshot; that line never settles.
    before = "Code:\n```py\na = 1\n```"
    after = "Code:\n```py\na = 1\nb = 2\n```"
    assert settled(before, after) == "Code:\n```py\na = 1\n"


@given(st.text(alphabet="ab\n`", max_size=30), st.text(alphabet="ab\n`", max_size=30))
def test_settled_is_a_common_prefix_in_whole_lines(previous: str, current: str) -> None:
    agreed = settled(previous, current)
    assert previous.startswith(agreed) and current.startswith(agreed)
    assert agreed == "" or agreed.endswith("\n")
    common = os.path.commonprefix([previous, current])  # noqa: RUF071 - characters are meant
    assert "\n" not in common[len(agreed) :]  # and no whole line more


def _snapshots(final: str) -> list[str]:
    """What a renderer sends while ``final`` streams in word by word: an open fence closed."""
    words = final.split(" ")
    shown = ["…"]
    for i in range(1, len(words)):
        text = " ".join(words[:i])
        if text.count("```") % 2:
            text += "\n```"
        shown.append(text)
    return shown


def test_an_append_only_terminal_gets_every_line_once() -> None:
    final = "Here:\n\n```py\nx = 1\ny = 2\nz = 3\n```\n\nand a last line with words"
    out = io.StringIO()
    view = AppendView(out)
    for snapshot in _snapshots(final):
        view.show(snapshot)
    printed_while_streaming = out.getvalue()
    view.finish(final)
    assert printed_while_streaming.startswith("parley> Here:\n\n```py\nx = 1\n")
    assert out.getvalue() == f"parley> {final}\n\n"


def test_a_printed_line_that_changes_after_all_puts_the_final_text_on_a_fresh_line() -> None:
    out = io.StringIO()
    view = AppendView(out)
    view.show("answer\n_Reading a_")
    view.show("answer\n_Reading b_")  # "answer\n" settled and printed
    view.finish("answered")
    assert out.getvalue() == "parley> answer\n\nanswered\n\n"


def test_tail_shows_the_end_of_what_does_not_fit_on_the_screen() -> None:
    out = io.StringIO()
    console = Console(file=out, width=40, height=10, force_terminal=False, color_system=None)
    console.print(Tail(Text("\n".join(f"line {i}" for i in range(30)))))
    assert out.getvalue().splitlines() == [f"line {i}" for i in range(22, 30)]  # height - 2


class _Interrupts:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[None] = asyncio.Queue()

    async def next(self) -> None:
        await self.queue.get()


class _Service:
    """A turn that runs until it is stopped (or, if ``deaf``, until it is cancelled)."""

    def __init__(self, *, deaf: bool) -> None:
        self.deaf = deaf
        self.stops: list[str] = []
        self.stopped = asyncio.Event()

    async def handle(self, message: IncomingMessage) -> ReplyResult | None:
        await self.stopped.wait()
        return ReplyResult(Outcome.STOPPED, "partial", "partial\n\n_(Stopped.)_", "m")

    def stop(self, ref: str) -> bool:
        self.stops.append(ref)
        if not self.deaf:
            self.stopped.set()
        return not self.deaf


def _message(surface: TerminalSurface) -> IncomingMessage:
    return IncomingMessage(
        ConversationKey("console", "", "console", "t"), "e1", Author("u", "u"), "hi", surface
    )


async def _run(service: _Service, surface: TerminalSurface, interrupts: _Interrupts) -> Any:
    return await app._answer(cast(Any, service), _message(surface), surface, cast(Any, interrupts))


async def test_a_ctrl_c_before_the_first_message_stops_the_reply_once_it_has_one() -> None:
    service, surface, interrupts = _Service(deaf=False), TerminalSurface(AppendViewFactory()), _Interrupts()
    running = asyncio.create_task(_run(service, surface, interrupts))
    interrupts.queue.put_nowait(None)
    await asyncio.sleep(0.2)
    assert service.stops == []  # nothing posted yet: nothing to name
    surface.ref = "console:1"
    result, quit = await asyncio.wait_for(running, 2)
    assert service.stops == ["console:1"] and not quit
    assert result.outcome is Outcome.STOPPED


async def test_a_second_ctrl_c_quits_and_a_turn_that_will_not_stop_is_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(app, "QUIT_GRACE", 0.1)
    service, surface, interrupts = _Service(deaf=True), TerminalSurface(AppendViewFactory()), _Interrupts()
    surface.ref = "console:1"
    running = asyncio.create_task(_run(service, surface, interrupts))
    interrupts.queue.put_nowait(None)
    await asyncio.sleep(0.1)
    interrupts.queue.put_nowait(None)
    assert await asyncio.wait_for(running, 2) == (None, True)
    assert service.stops and set(service.stops) == {"console:1"}


class AppendViewFactory:
    def __call__(self) -> AppendView:
        return AppendView(io.StringIO())


def test_an_uploaded_file_is_saved_in_the_working_directory_and_never_replaces_one(tmp_path: Path) -> None:
    (tmp_path / "cat.png").write_bytes(b"old")
    assert save_upload(tmp_path, "cat.png", b"new") == "cat-2.png"
    assert save_upload(tmp_path, "cat.png", b"newer") == "cat-3.png"
    assert (tmp_path / "cat.png").read_bytes() == b"old"
    assert (tmp_path / "cat-3.png").read_bytes() == b"newer"
    # Only the base name counts, made safe: nothing lands outside the directory or hidden.
    assert save_upload(tmp_path, "../../etc/passwd", b"x") == "passwd"
    assert save_upload(tmp_path, "..\\..\\evil.png", b"x") == "evil.png"
    assert save_upload(tmp_path, ".bashrc", b"x") == "bashrc"
    assert save_upload(tmp_path, "a picture?.png", b"x") == "a_picture_.png"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a_picture_.png",
        "bashrc",
        "cat-2.png",
        "cat-3.png",
        "cat.png",
        "evil.png",
        "passwd",
    ]


async def test_both_surfaces_upload_into_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    assert await PipedSurface(out).upload("image.png", b"\x89PNG", "image/png") == "image.png"
    assert (
        await TerminalSurface(AppendViewFactory()).upload("image.png", b"\x89PNG", "image/png")
        == "image-2.png"
    )
    assert out.getvalue() == ""  # the pipe's stdout holds replies only
    assert (tmp_path / "image-2.png").read_bytes() == b"\x89PNG"
