"""How soon a turn reaches the gateway, and how few write transactions it takes.

The gateway request goes out while the placeholder is posted and the reply row written: a post
held back (by the platform's budget, or a slow platform) no longer holds back the model, and text
that came first is shown in the first post. A turn writes in three transactions (claim the event
with its conversation; the question, the reply row and the event done; the finished reply), so a
burst of questions waits less for SQLite's one write lock. And the claims that make a turn
exactly-once are forgotten on a schedule once no platform redelivers, so their table stays bounded.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from httpx_aiohttp import AiohttpTransport
from pydantic import SecretStr
from sqlalchemy import event, func, select, update

from bot.providers import Gateway
from bot.render import Budget, Pacer
from bot.service import ConversationService
from bot.settings import Settings
from bot.store import Store
from bot.store.models import Conversation, Message, ProcessedEvent
from bot.types import Author, ConversationKey, IncomingMessage, Outcome
from tests.fakes.gateway import FakeGateway, Reply
from tests.fakes.surface import RecordingSurface

KEY = ConversationKey("test", "W", "C", "T")
ANN = Author("U1", "Ann")
ANSWER = "the model answered while the post was held back"


def held() -> RecordingSurface:
    """A platform whose posts wait (on the timeline, pending) until ``surface.hold`` is set; its
    messages are m:1, m:2…"""
    return RecordingSurface(name="m", hold=asyncio.Event())


def called(surface: RecordingSurface) -> list[float]:
    """When each post was asked for, taken or not."""
    return [c.t0 for c in surface.timeline.actions("post", ok=False)]


@dataclass
class Turns:
    store: Store
    gw: FakeGateway
    service: ConversationService
    pacer: Pacer
    serial: int = 0

    def message(self, surface: RecordingSurface, text: str = "what happened?") -> IncomingMessage:
        self.serial += 1
        return IncomingMessage(
            KEY, f"ev{self.serial}", ANN, text, surface, platform_message_id=f"p{self.serial}"
        )


@pytest.fixture
async def turns(tmp_path: Path) -> AsyncIterator[Turns]:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}")
    pacer = Pacer()
    async with FakeGateway(default=Reply(text=ANSWER)) as gw:
        settings = Settings(apicore_base_url=gw.url, apicore_api_key=SecretStr(gw.api_key or ""))
        async with Gateway(settings) as gateway:
            service = ConversationService(settings, store, gateway, pacer, instance_id="here")
            try:
                yield Turns(store, gw, service, pacer)
            finally:
                await service.aclose()
                await pacer.aclose()
                await store.close()


async def wait_for(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def rows(store: Store, role: str) -> list[Any]:
    async with store.engine.connect() as conn:
        query = select(Message.text, Message.status, Message.reply_refs).where(Message.role == role)
        return list((await conn.execute(query.order_by(Message.id))).all())


async def row_when(store: Store, condition: Callable[[Any], bool], within: float = 5.0) -> Any:
    """The reply row, once ``condition`` holds for it (None while there is none)."""
    deadline = time.monotonic() + within
    while True:
        found = await rows(store, "assistant")
        row = found[0] if found else None
        if condition(row):
            return row
        assert time.monotonic() < deadline, f"reply row is {row}"
        await asyncio.sleep(0.02)


# --- the gateway request does not wait for the placeholder ------------------------------------


async def test_the_gateway_is_asked_while_the_placeholder_post_is_held(turns: Turns) -> None:
    surface = held()
    handled = asyncio.create_task(turns.service.handle(turns.message(surface)))
    await wait_for(lambda: len(turns.gw.stream_requests) == 1)
    # The model has the question while the platform still holds the first post.
    assert surface.posting == 1 and surface.posts == []
    surface.hold.set()  # type: ignore[union-attr]
    result = await asyncio.wait_for(handled, 10)
    assert result is not None and result.outcome is Outcome.COMPLETE
    assert result.shown == ANSWER
    assert [(r.text, r.status, r.reply_refs) for r in await rows(turns.store, "assistant")] == [
        (ANSWER, "complete", ["m:1"])
    ]


async def test_text_that_came_before_the_first_post_is_shown_in_it(turns: Turns) -> None:
    # A shared channel out of posts (Discord: a few creates per 5 s): one post every 3 s here,
    # and one was just made, so the reply's first post must wait about that long.
    budget = (Budget("channel-posts", 1, 3.0),)
    earlier = RecordingSurface(post_budgets=budget)
    await turns.pacer.reply(earlier).finish("an earlier message in the channel")
    surface = RecordingSurface(post_budgets=budget)
    result = await asyncio.wait_for(turns.service.handle(turns.message(surface)), 10)
    assert result is not None and result.outcome is Outcome.COMPLETE
    (request,) = turns.gw.stream_requests
    first = surface.posts[0]
    assert request.t_received < first.t1 - 1.5  # the model did not wait for the budget
    assert first.text == ANSWER  # the answer, not the "…" placeholder
    assert len(surface.posts) == 1


async def test_a_row_written_before_its_first_post_learns_where_the_post_is(turns: Turns) -> None:
    # Recovery edits a crashed reply through the refs stored in its row: once the first message
    # is up, its ref must be stored while the reply is still streaming.
    turns.gw.default = Reply.paced(" ".join(f"w{i}" for i in range(40)), tokens_per_s=20)
    surface = held()
    handled = asyncio.create_task(turns.service.handle(turns.message(surface)))
    await wait_for(lambda: len(turns.gw.stream_requests) == 1)
    streaming = await row_when(turns.store, lambda r: r is not None)
    assert (streaming.status, streaming.reply_refs) == ("streaming", None)  # the post is held
    surface.hold.set()  # type: ignore[union-attr]
    row = await row_when(turns.store, lambda r: r is not None and r.reply_refs == ["m:1"])
    assert row.status == "streaming"  # stored mid-reply, not only at the end
    result = await asyncio.wait_for(handled, 10)
    assert result is not None and result.outcome is Outcome.COMPLETE


# --- write transactions per turn ---------------------------------------------------------------


def count_write_transactions(store: Store, statements: list[float] | None = None) -> list[float]:
    """When each write transaction began (SQLite writers BEGIN IMMEDIATE: see bot/store/db.py);
    ``statements`` collects when every other statement ran."""
    began: list[float] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        head = statement.strip().upper()
        if head.startswith("BEGIN IMMEDIATE"):
            began.append(time.monotonic())
        elif statements is not None and not head.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            statements.append(time.monotonic())

    event.listen(store.engine.sync_engine, "before_cursor_execute", on_execute)
    return began


async def test_a_turn_takes_few_write_transactions_and_only_the_claim_before_the_placeholder(
    turns: Turns,
) -> None:
    ran: list[float] = []
    began = count_write_transactions(turns.store, ran)
    for n, conversation_is_new in enumerate((True, False)):
        start, first = len(began), len(ran)
        surface = RecordingSurface()
        result = await turns.service.handle(turns.message(surface, f"question {n}"))
        assert result is not None and result.outcome is Outcome.COMPLETE, conversation_is_new
        # The claim; creating the conversation (only the first time); question + reply row +
        # event done; the finished reply.
        assert len(began) - start == (4 if conversation_is_new else 3)
        # The placeholder waits for the claim alone; the rest runs alongside it and the request.
        assert len([t for t in began[start:] if t < called(surface)[0]]) == 1
        # ...and that claim is one statement (at most the conversation's read slips in too).
        assert len([t for t in ran[first:] if t < called(surface)[0]]) <= 2
    users = await rows(turns.store, "user")
    assert [(u.text, u.status) for u in users] == [("question 0", "complete"), ("question 1", "complete")]
    assert [(r.text, r.status) for r in await rows(turns.store, "assistant")] == [(ANSWER, "complete")] * 2
    async with turns.store.engine.connect() as conn:
        done = (await conn.execute(select(ProcessedEvent.event_id, ProcessedEvent.status))).all()
        conversations = (await conn.execute(select(Conversation.id))).all()
    assert sorted(done) == [("ev1", "done"), ("ev2", "done")]
    assert len(conversations) == 1


async def test_a_redelivered_event_is_answered_once(turns: Turns) -> None:
    surface = RecordingSurface()
    msg = turns.message(surface)
    first, again = await asyncio.gather(turns.service.handle(msg), turns.service.handle(msg))
    assert [r is None for r in (first, again)].count(True) == 1
    assert len(turns.gw.stream_requests) == 1
    assert len(await rows(turns.store, "user")) == 1


# --- the store's combined writes, on every backend ---------------------------------------------


async def test_an_expired_claim_is_taken_over_once(store: Store) -> None:
    assert await store.events.claim("test", "E1", "crashed")
    async with store.engine.begin() as conn:  # its owner died ten minutes ago
        await conn.execute(
            update(ProcessedEvent).values(claimed_at=datetime.now(UTC) - timedelta(minutes=10))
        )
    results = await asyncio.gather(*(store.events.claim("test", "E1", f"o{n}") for n in range(10)))
    assert results.count(True) == 1
    await store.events.done("test", "E1")
    assert not await store.events.claim("test", "E1", "late", lease_seconds=0)


async def test_concurrent_turns_share_one_conversation(db_url: str) -> None:
    stores = [await Store.open(db_url) for _ in range(2)]
    try:
        results = await asyncio.gather(*(stores[n % 2].conversations.find_or_create(KEY) for n in range(20)))
        assert len({r.id for r in results}) == 1
    finally:
        for opened in stores:
            await opened.close()


async def test_begin_reply_stores_question_reply_and_done_together(store: Store) -> None:
    assert await store.events.claim("test", "E1", "a")
    conversation = await store.conversations.find_or_create(KEY)
    before = store.statements
    reply_id = await store.replies.begin(
        conversation.id,
        ANN,
        "the question",
        model="m",
        surface_info={"refs": ["r1"]},
        platform_id="p1",
        event=("test", "E1"),
    )
    assert store.statements - before == 4  # question, conversation's updated_at, reply, event
    (question, reply) = await store.history.load(conversation.id, 10)
    assert (question.role, question.text, question.platform_message_id) == ("user", "the question", "p1")
    assert (reply.id, reply.role, reply.status) == (reply_id, "assistant", Outcome.STREAMING)
    (streaming,) = await store.replies.streaming(platform="test")
    assert streaming.id == reply_id and streaming.reply_refs == ()
    assert streaming.surface == {"refs": ["r1"]}
    assert not await store.events.claim("test", "E1", "b", lease_seconds=0)  # done
    await store.replies.finish(
        reply_id, "answer", Outcome.COMPLETE, refs=["r1", "r2"], surface_info={"refs": ["r1", "r2"]}
    )
    assert await store.replies.streaming(platform="test") == []
    async with store.engine.connect() as conn:
        row = (
            await conn.execute(select(Message.reply_refs, Message.surface).where(Message.id == reply_id))
        ).one()
    assert (row.reply_refs, row.surface) == (["r1", "r2"], {"refs": ["r1", "r2"]})


# --- claims are forgotten once no platform redelivers -----------------------------------------


async def claims(store: Store) -> dict[str, str]:
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(ProcessedEvent.event_id, ProcessedEvent.status))).all()
    return dict(rows)


async def age_claim(store: Store, event_id: str, by: timedelta) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(
            update(ProcessedEvent)
            .where(ProcessedEvent.event_id == event_id)
            .values(claimed_at=datetime.now(UTC) - by)
        )


def sweeping_service(turns: Turns, **kwargs: Any) -> ConversationService:
    """A second service on the same store and gateway whose sweep runs every 50 ms."""
    settings = turns.service.settings.model_copy(update={"parley_recover_interval": 0.05})
    return ConversationService(settings, turns.store, turns.service.providers, turns.pacer, **kwargs)


async def test_the_claims_table_stays_bounded_while_events_keep_arriving(turns: Turns) -> None:
    # A claim whose turn never finished (its owner died before the reply row) is not forgotten.
    assert await turns.store.events.claim("test", "held", "another-process")
    await age_claim(turns.store, "held", timedelta(days=2))
    service = sweeping_service(turns, instance_id="here", event_retention=timedelta(seconds=0.5))
    await service.recover("test", lambda reply: None)  # an adapter connected: the sweep runs
    sizes: list[int] = []
    try:
        for n in range(100):
            result = await service.handle(turns.message(RecordingSurface(), f"question {n}"))
            assert result is not None and result.outcome is Outcome.COMPLETE
            async with turns.store.engine.connect() as conn:
                sizes.append(
                    (await conn.execute(select(func.count()).select_from(ProcessedEvent))).scalar_one()
                )
            await asyncio.sleep(0.02)
        left = await claims(turns.store)
    finally:
        await service.aclose()
    # Every turn added a claim; the sweep kept forgetting the ones past the retention (half a
    # second here, pruned every half second: about a second of events at most).
    print(f"\nclaims table over 100 events: {sizes}")
    assert max(sizes) <= 45
    assert sum(1 for before, after in itertools.pairwise(sizes) if after < before) >= 2
    assert left["held"] == "claimed"
    assert all(status == "done" for event_id, status in left.items() if event_id != "held")
    assert len(turns.gw.stream_requests) == 100


async def test_done_claims_are_forgotten_a_day_after_they_were_taken(turns: Turns) -> None:
    for event_id in ("yesterday", "this-morning", "still-held"):
        assert await turns.store.events.claim("test", event_id, "someone")
    for event_id in ("yesterday", "this-morning"):
        await turns.store.events.done("test", event_id)
    await age_claim(turns.store, "yesterday", timedelta(hours=25))
    await age_claim(turns.store, "this-morning", timedelta(hours=23))
    await age_claim(turns.store, "still-held", timedelta(hours=25))
    service = sweeping_service(turns, instance_id="here")
    try:
        await service.recover("test", lambda reply: None)
        deadline = time.monotonic() + 5
        while "yesterday" in await claims(turns.store):
            assert time.monotonic() < deadline, "the sweep never pruned"
            await asyncio.sleep(0.02)
    finally:
        await service.aclose()
    assert await claims(turns.store) == {"this-morning": "done", "still-held": "claimed"}
    # A redelivery of a remembered event is still ignored.
    assert not await turns.store.events.claim("test", "this-morning", "late")


# --- the gateway's connection cap ----------------------------------------------------------------


async def test_gateway_max_connections_is_a_validated_setting(tmp_path: Path) -> None:
    from bot.settings import SettingsError, load_settings

    assert load_settings({}, cwd=tmp_path).parley_gateway_max_connections == 1000
    with pytest.raises(SettingsError, match="PARLEY_GATEWAY_MAX_CONNECTIONS"):
        load_settings({"PARLEY_GATEWAY_MAX_CONNECTIONS": "0"}, cwd=tmp_path)
    settings = load_settings({"PARLEY_GATEWAY_MAX_CONNECTIONS": "7"}, cwd=tmp_path)
    async with Gateway(settings) as gateway:
        transport = gateway._client._transport
        assert isinstance(transport, AiohttpTransport)
        session = transport.get_client()  # the session its first request opens
        try:
            assert session.connector is not None and session.connector.limit == 7
        finally:
            await session.close()
