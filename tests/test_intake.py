"""The step before the queue, on its own: what counts as "stop", and when a message joins a burst."""

from __future__ import annotations

import asyncio

from bot.intake import Bursts, says_stop
from bot.types import Attachment, Author, ContextMessage, ConversationKey, IncomingMessage
from tests.fakes.surface import RecordingSurface

KEY = ConversationKey("slack", "T1", "C1", "1.0")


def message(text: str, *, user: str = "U1", key: ConversationKey = KEY, pid: str = "") -> IncomingMessage:
    return IncomingMessage(
        key=key,
        event_id=pid or text,
        author=Author(user, user),
        text=text,
        surface=RecordingSurface(),
        platform_message_id=pid or text,
    )


def test_only_a_plain_stop_is_a_stop() -> None:
    for text in ("stop", "Stop!", " stop it ", "please stop", "STOP NOW.", "stop it please"):
        assert says_stop(text), text
    for text in ("stop the build when it fails", "don't stop", "stopwatch", "", "how do I stop it?x"):
        assert not says_stop(text), text


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_burst_gathers_within_the_window_of_its_newest_message() -> None:
    clock = Clock()
    bursts = Bursts(1.0, clock=clock)
    first = message("hey", pid="m1")
    burst = bursts.start(first)
    clock.now += 0.8
    assert bursts.join(message("quick question", pid="m2")) is burst
    clock.now += 0.9  # 1.7 s after the first, 0.9 after the newest: still in
    assert bursts.join(message("the question", pid="m3")) is burst
    assert bursts.join(message("someone else", user="U2")) is None  # another person
    assert bursts.join(message("elsewhere", key=ConversationKey("slack", "T1", "C2", ""))) is None
    clock.now += 1.5  # past the window: gather() waits no longer
    turn = await asyncio.wait_for(bursts.gather(burst), 1)
    assert turn.text == "the question" and turn.surface is first.surface and turn.key == first.key
    assert [(c.text, c.platform_id) for c in turn.context] == [("hey", "m1"), ("quick question", "m2")]
    assert bursts.join(message("later", pid="m4")) is None  # closed once its turn began


async def test_earlier_files_and_thread_context_travel_with_the_turn() -> None:
    bursts = Bursts(5.0)
    note = ContextMessage(Author("U3", "Cy"), "earlier in the thread", platform_id="t0")

    async def fetch(limit: int) -> bytes:
        return b""

    pdf = Attachment("a.pdf", "application/pdf", 3, fetch)
    first = message("see the file", pid="m1")
    first.context = [note]
    first.attachments = [pdf]
    burst = bursts.start(first)
    assert bursts.join(message("what does it say?", pid="m2")) is burst
    bursts.close(burst)
    turn = burst.turn_message()
    assert [c.text for c in turn.context] == ["earlier in the thread", "see the file"]
    assert turn.context[1].attachments == [pdf] and turn.attachments == ()


async def test_without_a_window_nothing_waits_or_joins() -> None:
    bursts = Bursts(0.0)
    burst = bursts.start(message("one"))
    assert bursts.join(message("two")) is None
    assert (await asyncio.wait_for(bursts.gather(burst), 0.5)).text == "one"
