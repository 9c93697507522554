"""Races and scale: exactly-once claims, concurrent writers, a 10,000-message thread."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, text, update

from bot.store import Store, StoreError, db
from bot.store.history import context_query
from bot.store.models import Message, ProcessedEvent
from bot.types import Author, ConversationKey, Outcome

# Fixtures shared by the store tests (pytest finds them as module attributes).

KEY = ConversationKey("discord", "G1", "C1", "T1")


async def test_many_concurrent_claims_exactly_one_wins(db_url: str) -> None:
    # Separate stores = separate engines and pools, as separate processes would have.
    stores = [await Store.open(db_url) for _ in range(3)]
    try:
        for event_id in ("race-1", "race-2"):
            results = await asyncio.gather(
                *(stores[n % 3].events.claim("slack", event_id, f"owner-{n}") for n in range(60))
            )
            assert results.count(True) == 1
    finally:
        for opened in stores:
            await opened.close()


async def test_concurrent_takeover_of_an_expired_claim_has_one_winner(store: Store) -> None:
    assert await store.events.claim("slack", "stale", "crashed")
    async with store.engine.begin() as conn:  # the claimer died ten minutes ago
        await conn.execute(
            update(ProcessedEvent).values(claimed_at=datetime.now(UTC) - timedelta(minutes=10))
        )
    results = await asyncio.gather(
        *(store.events.claim("slack", "stale", f"owner-{n}", lease_seconds=300) for n in range(30))
    )
    assert results.count(True) == 1


async def test_concurrent_get_or_create_makes_one_conversation(db_url: str) -> None:
    stores = [await Store.open(db_url) for _ in range(2)]
    try:
        rows = await asyncio.gather(*(stores[n % 2].conversations.find_or_create(KEY) for n in range(40)))
        assert len({row.id for row in rows}) == 1
    finally:
        for opened in stores:
            await opened.close()


async def test_fifty_concurrent_writers_never_see_database_locked(store: Store) -> None:
    conversations = [
        await store.conversations.find_or_create(ConversationKey("slack", "T", f"C{n % 5}", str(n)))
        for n in range(50)
    ]

    async def writer(n: int) -> None:
        conversation = conversations[n]
        for turn in range(3):
            author = Author(f"U{n}", "user")
            reply = await store.replies.begin(
                conversation.id, author, f"{n}-{turn}", model="m", surface_info={"n": n}
            )
            await store.replies.set_refs(reply, [f"ref-{n}-{turn}"])
            await store.replies.finish(reply, f"answer {n}-{turn}", Outcome.COMPLETE, author_id=f"U{n}")
            await store.conversations.set_channel_model(conversation.key, f"model-{n}")
            assert await store.events.claim("slack", f"ev-{n}-{turn}", "me")

    started = time.perf_counter()
    await asyncio.gather(*(writer(n) for n in range(50)))
    print(f"\n50 writers x 3 turns: {time.perf_counter() - started:.2f}s, {store.statements} statements")
    totals = await store.usage.totals()
    assert totals.requests == 150
    for conversation in conversations[:3]:
        assert len(await store.history.load(conversation.id, 100)) == 6


async def test_context_of_a_long_thread_is_bounded(store: Store) -> None:
    conversation = await store.conversations.find_or_create(KEY)
    neighbour = await store.conversations.find_or_create(ConversationKey("discord", "G1", "C1", "T2"))
    now = datetime.now(UTC)
    rows = [
        {
            "conversation_id": conversation.id if n % 10 else neighbour.id,
            "role": "user" if n % 2 else "assistant",
            "author_id": "U1",
            "author_name": "Ann",
            "text": f"message {n}",
            "status": "complete",
            "created_at": now,
        }
        for n in range(11_111)
    ]
    async with store.engine.begin() as conn:
        await conn.execute(insert(Message), rows)  # 10,000 in the thread, 1,111 next door

    started = time.perf_counter()
    context = await store.history.load(conversation.id, 50)
    elapsed = time.perf_counter() - started
    print(f"\nload_context(50) of a 10,000-message thread: {elapsed * 1000:.1f} ms")
    assert len(context) == 50
    assert [m.text for m in context] == [f"message {n}" for n in range(11_111) if n % 10][-50:]

    await store.conversations.reset(conversation.id)
    await store.history.add(conversation.id, Author("U1", "Ann"), "after reset")
    assert [m.text for m in await store.history.load(conversation.id, 50)] == ["after reset"]


async def test_context_query_uses_the_conversation_index(store: Store) -> None:
    if store.engine.dialect.name != "sqlite":
        return  # the plan check is SQLite's; PostgreSQL's planner may prefer a scan on tiny tables
    compiled = context_query(42, 50).compile(store.engine.sync_engine, compile_kwargs={"literal_binds": True})
    async with store.engine.connect() as conn:
        plan = [row[3] for row in (await conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))).all()]
    print("\n" + "\n".join(plan))
    assert any(
        "SEARCH messages USING INDEX ix_messages_conversation_id_id (conversation_id=? AND id>?)" in step
        for step in plan
    )
    assert not any("SCAN" in step or "TEMP B-TREE" in step for step in plan)  # no sort, no full scan


async def test_a_lock_held_elsewhere_is_waited_out_then_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retry safety net behind busy_timeout: short locks are survived, long ones are one clear error."""
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 50)
    path = tmp_path / "locked.db"
    opened = await Store.open(f"sqlite+aiosqlite:///{path}")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        release = asyncio.get_running_loop().call_later(0.25, other.execute, "COMMIT")
        conversation = await opened.conversations.find_or_create(KEY)  # waits out the 250 ms
        assert conversation.id == 1
        release.cancel()

        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError, match=r"^database: database is locked$"):
            await opened.history.add(conversation.id, Author("U1", "Ann"), "never stored")
        other.execute("ROLLBACK")
        assert await opened.history.load(conversation.id, 5) == []
    finally:
        other.close()
        await opened.close()
