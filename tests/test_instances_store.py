"""The store's side of several instances: heartbeats, the turns' queue and its lease, adoption
of a dead process's turns, and admission counted over every instance. On SQLite and, with
``PARLEY_TEST_POSTGRES_URL``, on PostgreSQL."""

from __future__ import annotations

import asyncio

from sqlalchemy import update

from bot.store import Store
from bot.store.leases import Lease, TurnCounts
from bot.store.models import Instance, ProcessedEvent
from bot.types import ConversationKey

KEY = ConversationKey("slack", "T1", "C1", "100.1")
OTHER = ConversationKey("slack", "T1", "C1", "200.1")


async def _silence(store: Store, process: str, seconds: float) -> None:
    """Make ``process``'s last heartbeat ``seconds`` old, as if it had died then."""
    from datetime import timedelta

    from bot.store.models import utcnow

    async with store.engine.begin() as conn:
        await conn.execute(
            update(Instance)
            .where(Instance.process == process)
            .values(seen_at=utcnow() - timedelta(seconds=seconds))
        )


async def test_heartbeats_tell_live_processes_from_silent_ones(store: Store) -> None:
    assert await store.instances.beat("p1", name="pod-1", host="h", pid=1, platforms=["slack"]) is False
    assert await store.instances.beat("p1", name="pod-1", host="h", pid=1, platforms=["slack", "discord"])
    await store.instances.beat("p2", name=None, host="h", pid=2, platforms=[])
    alive = {row.process: row for row in await store.instances.alive(within=30)}
    assert set(alive) == {"p1", "p2"}
    assert alive["p1"].platforms == {"slack", "discord"} and alive["p1"].name == "pod-1"

    await _silence(store, "p2", 60)
    assert [row.process for row in await store.instances.alive(within=30)] == ["p1"]
    assert await store.instances.forget(older_than=45) == 1
    await store.instances.leave("p1")
    assert await store.instances.alive(within=30) == []


async def test_turns_of_one_conversation_run_one_at_a_time_in_claim_order(store: Store) -> None:
    for process in ("a", "b"):
        await store.instances.beat(process, name=None, host="h", pid=0, platforms=["slack"])
    first = (await store.turns.claim(KEY, "e1", "a", author="U1", is_bot=False, take=False)).entry
    second = (await store.turns.claim(KEY, "e2", "b", author="U2", is_bot=False, take=False)).entry
    elsewhere = (await store.turns.claim(OTHER, "e3", "b", author="U1", is_bot=False, take=False)).entry
    assert first and second and elsewhere
    assert not (await store.turns.claim(KEY, "e1", "b", author="U1", is_bot=False, take=False)).claimed

    # The later turn waits whoever asks first; another conversation is not held up.
    assert await store.turns.take(second, "b") is Lease.WAIT
    assert await store.turns.take(elsewhere, "b") is Lease.TAKEN
    assert await store.turns.take(first, "a") is Lease.TAKEN
    assert await store.turns.take(second, "b") is Lease.WAIT  # the first is running
    assert await store.turns.take(first, "b") is Lease.LOST  # not b's
    await store.turns.finish(first)
    assert await store.turns.take(second, "b") is Lease.TAKEN
    assert [t.event_id for t in await store.turns.open_turns(KEY)] == ["e2"]


async def test_concurrent_takes_give_the_lease_to_one_turn(store: Store) -> None:
    await store.instances.beat("a", name=None, host="h", pid=0, platforms=["slack"])
    entries = [
        (await store.turns.claim(KEY, f"e{i}", "a", author="U1", is_bot=False, take=False)).entry
        for i in range(6)
    ]
    results = await asyncio.gather(*(store.turns.take(e, "a") for e in reversed(entries) if e))
    assert results.count(Lease.TAKEN) == 1
    assert results[-1] is Lease.TAKEN  # the oldest


async def test_a_dead_process_s_waiting_turns_are_adopted_and_its_begun_one_dropped(store: Store) -> None:
    for process in ("dead", "live"):
        await store.instances.beat(process, name=None, host="h", pid=0, platforms=["slack"])
    running = (await store.turns.claim(KEY, "e1", "dead", author="U1", is_bot=False, take=False)).entry
    waiting = (
        await store.turns.claim(
            KEY, "e2", "dead", author="U1", is_bot=False, origin={"event": {"ts": "2"}}, take=False
        )
    ).entry
    other_platform = (
        await store.turns.claim(
            ConversationKey("discord", "G", "C", "T"), "m1", "dead", author="U", is_bot=False
        )
    ).entry
    assert running and waiting and other_platform
    assert await store.turns.take(running, "dead") is Lease.TAKEN
    await store.events.done("slack", "e1")  # its reply had begun (Replies.begin marks the claim done)

    assert (await store.turns.adopt("live", ["slack"], silent_for=30)).revive == ()  # still alive
    await _silence(store, "dead", 60)
    adopted = await store.turns.adopt("live", ["slack"], silent_for=30)
    assert [t.event_id for t in adopted.revive] == ["e2"]
    assert adopted.revive[0].origin == {"event": {"ts": "2"}} and adopted.revive[0].revived == 1
    assert adopted.moved == {str(KEY)}
    # The begun turn is done (recovery closes its reply); the waiting one is live's, still in line.
    assert await store.turns.take(adopted.revive[0], "live") is Lease.TAKEN
    async with store.engine.connect() as conn:
        owner = (
            (await conn.execute(ProcessedEvent.__table__.select().where(ProcessedEvent.event_id == "e2")))
            .one()
            .owner
        )
    assert owner == "live"  # a redelivery does not take the claim back
    # Discord's turn waits for an instance that runs Discord.
    assert [t.event_id for t in (await store.turns.adopt("live", ["discord"], silent_for=30)).revive] == [
        "m1"
    ]


async def test_handed_back_turns_are_adopted_by_the_next_live_process(store: Store) -> None:
    for process in ("stopping", "live"):
        await store.instances.beat(process, name=None, host="h", pid=0, platforms=["slack"])
    entry = (await store.turns.claim(KEY, "e1", "stopping", author="U1", is_bot=False, take=False)).entry
    assert entry is not None
    assert [t.event_id for t in await store.turns.hand_back("stopping")] == ["e1"]
    assert await store.turns.take(entry, "stopping") is Lease.LOST
    assert [t.event_id for t in (await store.turns.adopt("live", ["slack"], silent_for=30)).revive] == ["e1"]


async def test_a_turn_revived_too_often_is_given_up(store: Store) -> None:
    await store.instances.beat("live", name=None, host="h", pid=0, platforms=["slack"])
    assert (await store.turns.claim(KEY, "e1", "gone-0", author="U1", is_bot=False, take=False)).entry
    for n in range(3):
        adopted = await store.turns.adopt("live", ["slack"], silent_for=30)
        assert len(adopted.revive) == 1
        async with store.engine.begin() as conn:  # and that process died too
            from bot.store.models import TurnRow

            await conn.execute(update(TurnRow).values(owner=f"gone-{n + 1}"))
    adopted = await store.turns.adopt("live", ["slack"], silent_for=30)
    assert adopted.revive == () and [t.event_id for t in adopted.given_up] == ["e1"]
    assert await store.turns.open_turns(KEY) == []


async def test_admission_counts_every_instance_s_turns(store: Store) -> None:
    seen: list[TurnCounts] = []

    def decide(counts: TurnCounts) -> str | None:
        seen.append(counts)
        return "user_busy" if counts.user_open >= 2 else None

    for i, owner in enumerate(("a", "b", "a")):
        claim = await store.turns.claim(KEY, f"e{i}", owner, author="U1", is_bot=False, decide=decide)
        assert claim.claimed
    assert claim.refusal == "user_busy" and claim.entry is None
    assert seen[-1] == TurnCounts(
        user_open=2, user_last_minute=2, channel_open=2, all_open=2, bot_last_minute=0
    )
    finished = (
        await store.turns.claim(OTHER, "x", "b", author="U1", is_bot=True, decide=lambda c: None)
    ).entry
    assert finished is not None
    await store.turns.finish(finished)
    await store.turns.claim(OTHER, "y", "b", author="U1", is_bot=True, decide=decide)
    # The finished one still counts for the last minute, not as open.
    assert seen[-1] == TurnCounts(
        user_open=2, user_last_minute=3, channel_open=2, all_open=2, bot_last_minute=1
    )
    assert await store.turns.prune(older_than=0) == 1


async def test_a_claim_takes_the_lease_at_once_when_nothing_is_ahead(store: Store) -> None:
    await store.instances.beat("a", name=None, host="h", pid=0, platforms=["slack"])
    first = await store.turns.claim(KEY, "e1", "a", author="U1", is_bot=False)
    second = await store.turns.claim(KEY, "e2", "a", author="U1", is_bot=False)
    elsewhere = await store.turns.claim(OTHER, "e3", "a", author="U1", is_bot=False)
    assert (first.running, second.running, elsewhere.running) == (True, False, True)
    assert first.entry is not None and second.entry is not None
    await store.turns.finish(first.entry)
    assert await store.turns.take(second.entry, "a") is Lease.TAKEN


async def test_a_claim_taken_over_after_its_lease_queues_its_turn_again(store: Store) -> None:
    from datetime import timedelta

    from bot.store.models import utcnow

    await store.instances.beat("live", name=None, host="h", pid=0, platforms=["slack"])
    first = (await store.turns.claim(KEY, "e1", "gone", author="U1", is_bot=False, take=False)).entry
    assert first is not None
    await store.turns.finish(first)  # e.g. given up; its claim was never done
    async with store.engine.begin() as conn:  # the claim's lease runs out
        await conn.execute(update(ProcessedEvent).values(claimed_at=utcnow() - timedelta(minutes=10)))
    again = await store.turns.claim(KEY, "e1", "live", author="U1", is_bot=False)
    assert again.claimed and again.running  # a late redelivery answers it after all
    assert [t.event_id for t in await store.turns.open_turns(KEY)] == ["e1"]
