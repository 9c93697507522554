import asyncio

from bot.queue import TurnQueue


async def test_turns_in_one_conversation_run_in_order_and_others_in_parallel():
    queue = TurnQueue()
    events: list[str] = []

    async def turn(key: str, name: str, delay: float) -> None:
        async with queue.turn(key):
            events.append(f"start {name}")
            await asyncio.sleep(delay)
            events.append(f"end {name}")

    first = asyncio.create_task(turn("a", "a1", 0.05))
    await asyncio.sleep(0)
    second = asyncio.create_task(turn("a", "a2", 0.0))
    other = asyncio.create_task(turn("b", "b1", 0.0))
    await asyncio.sleep(0.01)
    assert queue.waiting == 1
    await asyncio.gather(first, second, other)
    assert events.index("end a1") < events.index("start a2")
    assert events.index("end b1") < events.index("end a1")
    assert queue.waiting == 0
    assert queue._locks == {}
