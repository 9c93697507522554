"""``parley console`` on a terminal: a subprocess in a real pseudo-terminal, against the fake gateway.

Every check reads the screen (and its scrollback) that a terminal emulator makes of the output:
an answer is drawn in place while it streams and left in the scrollback once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_harness import parley
from tests.fakes.gateway import FakeGateway, Reply
from tests.pty_harness import Terminal

ANSWER = """# Plan

Here is the code:

```python
def total(items):
    return sum(item.price for item in items)
```

| name | price |
| --- | --- |
| tea | 3 |
| cake | 5 |

Done — that is all.
"""


@pytest.fixture
def console(env: dict[str, str], tmp_path: Path) -> Iterator[Terminal]:
    term = Terminal("console", "--thread", "tty", cwd=tmp_path, env=env, rows=40, cols=80)
    yield term
    term.close()


def ask(term: Terminal, question: str, prompts: int = 1) -> None:
    assert term.wait_for(lambda: term.at_prompt(prompts)), term.text()
    term.type(question)


def finished(term: Terminal, prompts: int = 2) -> list[str]:
    assert term.wait_for(lambda: term.at_prompt(prompts)), term.text()
    return term.lines()


def count(lines: list[str], pattern: str) -> int:
    return sum(bool(re.search(pattern, line)) for line in lines)


def test_an_answer_with_code_and_a_table_is_drawn_in_place_and_left_once(
    gateway: FakeGateway, console: Terminal
) -> None:
    gateway.script(Reply.paced(ANSWER, tokens_per_s=40))
    ask(console, "Show me the plan")
    lines = finished(console)

    # What stays is the answer once (the old console printed it whole again on every edit while
    # the code fence was open: eight copies of this code), laid out: no Markdown syntax, a
    # table, highlighted code.
    assert count(lines, r"^parley>$") == 1
    assert count(lines, r"Plan") == 1 and count(lines, r"# Plan") == 0
    assert count(lines, r"Here is the code:") == 1
    assert count(lines, r"def total\(items\):") == 1
    assert count(lines, r"return sum\(item\.price for item in items\)") == 1
    assert count(lines, r"```|\| --- \|") == 0
    assert count(lines, r"^\s*name\s+price\s*$") == 1
    assert count(lines, r"^\s*tea\s+3\s*$") == 1
    assert count(lines, r"^\s*cake\s+5\s*$") == 1
    assert count(lines, r"Done — that is all\.") == 1
    assert _colour_at(console, "def total") != "default"
    # And it streamed: the live region was redrawn in place as the answer grew.
    assert console.raw.count(b"\x1b[2K") > 10

    console.child.sendeof()  # Ctrl-D at the prompt
    assert console.wait_exit() == 0
    assert b"Traceback" not in console.raw


def test_an_answer_taller_than_the_screen_is_left_whole_and_in_order(
    gateway: FakeGateway, env: dict[str, str], tmp_path: Path
) -> None:
    rows = [f"row {i:02d} of the list" for i in range(60)]
    gateway.script(Reply.paced("\n".join(f"- {row}" for row in rows), tokens_per_s=150))
    term = Terminal("console", cwd=tmp_path, env=env, rows=16, cols=60)
    try:
        ask(term, "a long list")
        lines = finished(term)
    finally:
        term.close()
    found = [line.strip().removeprefix("•").strip() for line in lines if "of the list" in line]
    assert found == rows  # each once, in order: no redraw left a copy in the scrollback


def test_ctrl_c_stops_the_answer_and_a_second_ctrl_c_quits(
    gateway: FakeGateway, console: Terminal, env: dict[str, str], tmp_path: Path
) -> None:
    words = " ".join(f"word{i}" for i in range(300))
    gateway.script(Reply.paced(words, tokens_per_s=8))
    ask(console, "talk for a while")
    assert console.shows("word4"), console.text()

    console.ctrl_c()
    lines = finished(console)
    assert count(lines, r"\(Stopped\.\)") == 1
    assert count(lines, r"^word0 word1 word2 word3 word4") == 1  # what was written stays, once
    assert "word299" not in console.text()
    assert gateway.wait_until_sync(lambda: len(gateway.disconnects) == 1)

    console.ctrl_c()  # at the prompt: quit
    assert console.wait_exit() == 0
    assert b"Traceback" not in console.raw

    # The stopped answer was kept as written: the next turn of the thread sees it.
    later = parley("console", "--thread", "tty", cwd=tmp_path, env=env, stdin="and then?\n")
    assert later.returncode == 0, later.stderr
    said = [m for m in gateway.last.json["messages"] if m["role"] == "assistant"]
    assert len(said) == 1 and str(said[0]["content"]).startswith("word0 word1 word2 word3 word4")


def test_two_ctrl_c_in_a_row_mid_answer_quit_cleanly(gateway: FakeGateway, console: Terminal) -> None:
    gateway.script(Reply.paced(" ".join(f"word{i}" for i in range(300)), tokens_per_s=8))
    ask(console, "talk for a while")
    assert console.shows("word2"), console.text()
    console.ctrl_c()
    time.sleep(0.3)  # two signals at once would be one; a person's second press comes later
    console.ctrl_c()
    assert console.wait_exit() == 0
    assert b"Traceback" not in console.raw
    assert "word299" not in console.text()


@pytest.mark.parametrize(
    ("extra", "cols", "escapes"),
    [
        ({"NO_COLOR": "1"}, 80, rb"\x1b\[[0-9;]*(3[0-9]|4[0-9]|9[0-7])[;m]"),  # no colour at all
        ({"TERM": "dumb"}, 80, rb"\x1b"),  # no escape sequence at all
        ({}, 30, None),  # colour is fine, a table or a code panel is not
    ],
    ids=["NO_COLOR", "TERM=dumb", "30 columns"],
)
def test_a_terminal_that_cannot_show_markdown_gets_the_text_as_written_once(
    gateway: FakeGateway,
    env: dict[str, str],
    tmp_path: Path,
    extra: dict[str, str],
    cols: int,
    escapes: bytes | None,
) -> None:
    gateway.script(Reply.paced(ANSWER, tokens_per_s=40))
    term = Terminal("console", cwd=tmp_path, env={**env, **extra}, rows=60, cols=cols)
    try:
        ask(term, "Show me the plan")
        lines = finished(term)
        answer = term.raw[term.raw.index(b"Show me the plan") :]
        assert escapes is None or re.search(escapes, answer) is None, answer
        assert count(lines, r"^```python$") == 1
        assert count(lines, r"return sum\(item\.price") == 1
        assert count(lines, r"^\| tea \| 3 \|$") == 1
        assert count(lines, r"Done — that is all\.") == 1
    finally:
        term.close()


def _colour_at(term: Terminal, text: str) -> str:
    """The foreground colour the screen shows at the first character of ``text``."""
    buffer = term.screen.buffer
    for y in range(term.screen.lines):
        row = "".join(buffer[y][x].data for x in range(term.screen.columns))
        if text in row:
            return str(buffer[y][row.index(text)].fg)
    raise AssertionError(f"{text!r} is not on the screen")
