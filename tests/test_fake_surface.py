"""The recording surface of the test kit: it satisfies the reply protocols and records truthfully."""

from __future__ import annotations

import asyncio

import pytest

from bot.render import Pacer
from bot.render.surface import Budget, Deletable, RateLimited, Recoverable, ReplySurface, Shown, SurfaceError
from tests.fakes.surface import RecordingSurface, Timeline


def test_it_is_every_kind_of_surface_the_core_knows() -> None:
    surface = RecordingSurface()
    assert isinstance(surface, ReplySurface)
    assert isinstance(surface, Recoverable)
    assert isinstance(surface, Deletable)


async def test_calls_are_recorded_with_times_outcomes_and_what_is_shown() -> None:
    tl = Timeline()
    a = RecordingSurface(tl, name="a", latency=0.01, edit_budgets=[Budget("e", 3, 1.0)])
    b = RecordingSurface(tl, name="b")
    ref = await a.post("…", live=True)
    await a.edit(ref, "Hello", live=True)
    await b.post("other", live=False)
    a.fail_next("edit", RateLimited(2.0))
    with pytest.raises(RateLimited):
        await a.edit(ref, "Hello wor", live=True)
    await a.edit(ref, "Hello world", live=False)
    assert [(c.surface, c.action, c.text, c.outcome) for c in tl.calls] == [
        ("a", "post", "…", "ok"),
        ("a", "edit", "Hello", "ok"),
        ("b", "post", "other", "ok"),
        ("a", "edit", "Hello wor", "429"),
        ("a", "edit", "Hello world", "ok"),
    ]
    assert all(c.t1 - c.t0 >= 0.009 for c in tl.of(ref))
    assert tl.of(ref)[1].budgets == (Budget("e", 3, 1.0),)
    assert a.shown[ref] == Shown("Hello world", False) and a.final == "Hello world"
    assert [c.text for c in a.edits] == ["Hello", "Hello world"]
    assert a.first_post_at is not None and a.first_text_at is not None and a.first_text_at > a.first_post_at


async def test_faults_holds_reads_deletes_statuses_and_uploads() -> None:
    hold = asyncio.Event()
    surface = RecordingSurface(
        hold=hold, fault=lambda call: SurfaceError("no") if "boom" in call.text else None
    )
    posting = asyncio.ensure_future(surface.post("…", live=True))
    await asyncio.sleep(0.02)
    (held,) = surface.timeline.calls
    assert surface.posting == 1 and held.outcome == "pending"  # asked for, not taken yet
    hold.set()
    ref = await posting
    with pytest.raises(SurfaceError):
        await surface.edit(ref, "boom", live=True)
    assert await surface.read(ref) == Shown("…", True) and surface.final is None
    surface.read_error = ConnectionError("down")
    with pytest.raises(ConnectionError):
        await surface.read(ref)
    await surface.delete(ref)
    surface.read_error = None
    assert await surface.read(ref) is None and surface.deleted == [ref]
    await surface.set_status("thinking")
    await surface.set_status(None)
    assert [s for _, s in surface.statuses] == ["thinking", None]
    assert await surface.upload("fox.png", b"\x89PNG", "image/png") and surface.uploads[0].data == b"\x89PNG"
    with pytest.raises(AssertionError):
        await surface.post("x" * 2001, live=False)  # over the declared limit: a renderer bug


async def test_without_history_it_keeps_only_what_is_shown() -> None:
    surface = RecordingSurface(keep_history=False)
    ref = await surface.post("…", live=True)
    for i in range(50):
        await surface.edit(ref, f"text {i}", live=True)
    assert surface.timeline.calls == [] and surface.text == "text 49"


async def test_the_real_renderer_writes_through_it() -> None:
    pacer = Pacer(margin=0.01, retry_backoff=0.01)
    surface = RecordingSurface(max_chars=40, edit_budgets=[Budget("e", 5, 0.2)])
    try:
        stream = pacer.reply(surface)
        await stream.start()
        answer = " ".join(f"word{i}" for i in range(20))
        for end in range(5, len(answer) + 5, 5):
            stream.update(answer[:end])
            await asyncio.sleep(0.005)
        await stream.finish(answer)
    finally:
        await pacer.aclose()
    assert surface.final == answer and len(surface.order) > 1  # split over several messages
    assert all(len(c.text) <= 40 for c in surface.timeline.calls)
