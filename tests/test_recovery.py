"""Crash recovery in the core: which replies count as orphaned, and what happens to each
message when the platform can, cannot, or will not say what it shows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.notes import INTERRUPTED
from bot.providers.base import Provider
from bot.render import Pacer, RateLimited, SurfaceError
from bot.render.surface import Recoverable, Shown
from bot.service import ConversationService
from bot.settings import Settings
from bot.store import Store, StreamingReply
from bot.store.models import Message
from bot.types import Author, ConversationKey, Outcome
from tests.fakes.surface import Call, RecordingSurface

KEY = ConversationKey("test", "W", "C", "T")


class NoProviders:
    def provider_for(self, model: str) -> Provider:
        raise AssertionError("recovery never asks the model")


def _no_posts(call: Call) -> BaseException | None:
    return AssertionError("recovery never posts") if call.action == "post" else None


def platform(shows: dict[str, Shown] | None = None) -> RecordingSurface:
    """A platform whose messages recovery reads (``shows``: what each one shows) and edits."""
    surface = RecordingSurface(max_chars=200, fault=_no_posts)
    surface.shown.update(shows or {})
    return surface


def edits(surface: RecordingSurface) -> list[tuple[str, str, bool]]:
    return [(c.ref, c.text, c.live) for c in surface.edits]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}")
    try:
        yield opened
    finally:
        await opened.close()


_services: list[ConversationService] = []


def service(store: Store, **settings: Any) -> ConversationService:
    svc = ConversationService(Settings(**settings), store, NoProviders(), Pacer(), instance_id="this-process")
    _services.append(svc)
    return svc


@pytest.fixture(autouse=True)
async def _close_services() -> AsyncIterator[None]:
    yield
    while _services:
        await _services.pop().aclose()  # the recovery sweep


async def orphan(store: Store, refs: list[str], info: dict[str, Any] | None = None) -> int:
    conversation = await store.conversations.find_or_create(KEY)
    info = {"refs": refs, "process": "dead-process", **(info or {})}
    return await store.replies.begin(conversation.id, Author("U1", "Ann"), "q", model="m", surface_info=info)


async def status(store: Store, reply_id: int) -> tuple[Outcome, str]:
    from sqlalchemy import select

    async with store.engine.connect() as conn:
        row = (await conn.execute(select(Message.status, Message.text).where(Message.id == reply_id))).one()
    return Outcome(row.status), row.text


async def test_the_last_message_keeps_its_text_and_gets_the_note(store: Store) -> None:
    reply = await orphan(store, ["m1", "m2"])
    surface = platform({"m1": Shown("part one\n", False), "m2": Shown("part two, half", True)})
    assert isinstance(surface, Recoverable)
    assert await service(store).recover("test", lambda r: surface) == 1
    assert edits(surface) == [("m2", f"part two, half\n\n{INTERRUPTED}", False)]  # m1 was finished
    assert await status(store, reply) == (Outcome.INTERRUPTED, "part one\npart two, half")


async def test_a_reply_cut_off_while_a_tool_ran_loses_its_status_line(store: Store) -> None:
    reply = await orphan(store, ["m1"])
    surface = platform({"m1": Shown("Let me read it.\n\n_Reading example.com/news…_", True)})
    assert await service(store).recover("test", lambda r: surface) == 1
    assert edits(surface) == [("m1", f"Let me read it.\n\n{INTERRUPTED}", False)]
    assert await status(store, reply) == (Outcome.INTERRUPTED, "Let me read it.")


async def test_a_placeholder_or_an_unreadable_message_becomes_the_note(store: Store) -> None:
    first = await orphan(store, ["m1"])
    second = await orphan(store, ["m2"])
    surface = platform({"m1": Shown("…", True)})  # m2 cannot be read
    assert await service(store).recover("test", lambda r: surface) == 2
    assert edits(surface) == [("m1", INTERRUPTED, False), ("m2", INTERRUPTED, False)]
    assert await status(store, first) == (Outcome.INTERRUPTED, "")
    assert await status(store, second) == (Outcome.INTERRUPTED, "")


async def test_a_reply_finished_on_the_platform_is_left_as_it_is(store: Store) -> None:
    # The process died after the final edit but before storing it: the text is whole.
    reply = await orphan(store, ["m1"])
    surface = platform({"m1": Shown("the whole answer", False)})
    await service(store).recover("test", lambda r: surface)
    assert edits(surface) == []
    assert await status(store, reply) == (Outcome.INTERRUPTED, "the whole answer")


async def test_rate_limits_and_network_errors_leave_it_for_the_next_sweep(store: Store) -> None:
    reply = await orphan(store, ["m1"])
    surface = platform({"m1": Shown("half", True)})
    surface.read_error = RateLimited(60)
    svc = service(store)
    assert await svc.recover("test", lambda r: surface) == 0
    surface.read_error = None
    surface.fail_next("edit", OSError("connection reset"))
    assert await svc.recovery.run_pass("test") == 0
    assert (await status(store, reply))[0] is Outcome.STREAMING
    assert await svc.recovery.run_pass("test") == 1
    assert await status(store, reply) == (Outcome.INTERRUPTED, "half")
    await svc.aclose()


async def test_a_message_the_platform_refuses_to_edit_is_still_closed_in_the_store(store: Store) -> None:
    reply = await orphan(store, ["m1"])
    surface = platform({"m1": Shown("half", True)})
    surface.fail_next("edit", SurfaceError("message_not_found"))
    assert await service(store).recover("test", lambda r: surface) == 1
    assert (await status(store, reply))[0] is Outcome.INTERRUPTED


async def test_which_replies_are_orphaned(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    svc = service(store, parley_instance_id="pod-1", parley_reply_timeout=60)
    mine = await orphan(store, ["a"], {"process": "this-process"})
    dead = await orphan(store, ["b"])
    sibling = await orphan(store, ["c"], {"instance": "pod-2"})
    predecessor = await orphan(store, ["d"], {"instance": "pod-1"})
    rows = {r.id: r for r in await store.replies.streaming(platform="test")}

    def aged(reply: StreamingReply) -> StreamingReply:
        from dataclasses import replace

        return replace(reply, created_at=reply.created_at - timedelta(seconds=91))

    # SQLite: one process per database, so any other process's reply is orphaned; never our own.
    assert [svc.recovery.orphaned(rows[i]) for i in (mine, dead, sibling, predecessor)] == [
        False,
        True,
        True,
        True,
    ]
    # A shared database: only a predecessor of the same PARLEY_INSTANCE_ID, or past the timeout.
    monkeypatch.setattr(Store, "shared", property(lambda self: True))
    assert [svc.recovery.orphaned(rows[i]) for i in (mine, dead, sibling, predecessor)] == [
        False,
        False,
        False,
        True,
    ]
    assert all(svc.recovery.orphaned(aged(rows[i])) for i in (mine, dead, sibling, predecessor))
    # Other platforms' replies are not this adapter's to close.
    assert await svc.recover("elsewhere", lambda r: platform()) == 0
    await svc.aclose()
