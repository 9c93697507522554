"""Discord's rate limits as Parley declares them, and the throttle for the adapter's own calls.

Discord counts message creates and edits per channel (a thread is a channel): 5 each per 5 s,
shared by every message in it, and every bot request against a global 50 per second. The
renderer's posts and edits are declared at those 5 per 5 s and sent by Parley itself
(``reply_rest.py``): every answer's ``X-RateLimit-*`` headers then tell the renderer how many
requests the bucket has left and when it refills, and it paces the channel by that count
(``bot.render.budget.Window.observe``). Before a channel's first answer the renderer counts on
its own, holding each slot from send to answer and only then starting its window (plus a margin).
discord.py never sees these requests, so it never makes a reply sleep on an empty bucket (it
would: the caller of a request whose answer says ``Remaining: 0`` sleeps until the reset).

- one create and one edit in flight per channel at a time, so each answer's count is exact
  when the next request on that bucket is planned;
- the global 50/s is split: the renderer's posts and edits may use 30 a second, the adapter's
  other calls (thread creation, typing, history reads, through discord.py) 16, through
  :class:`RestThrottle`.

Interaction responses and webhook follow-ups do not count against the global limit.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot.render.surface import Budget

# How long a request keeps counting after its answer arrived, beyond the window: the platform
# counts it on arrival, somewhere between our send and its answer.
MARGIN = 0.1
# Wide enough to serialise, short enough not to slow a channel down (plus the pacer's margin).
_SERIAL_WINDOW = 0.01


@dataclass(frozen=True, slots=True)
class DiscordBudgets:
    """What Parley allows itself, as (requests, seconds). Tests scale these with the fake's limits."""

    create: tuple[int, float] = (5, 5.0)
    edit: tuple[int, float] = (5, 5.0)
    global_: tuple[int, float] = (34, 1.0)
    other: tuple[int, float] = (16, 1.0)

    @staticmethod
    def create_key(channel_id: int) -> str:
        """The budget key of the channel's create bucket (what its answers' headers are about)."""
        return f"discord:channel:{channel_id}:create"

    @staticmethod
    def edit_key(channel_id: int) -> str:
        return f"discord:channel:{channel_id}:edit"

    def post_budgets(self, channel_id: int) -> tuple[Budget, ...]:
        return (
            Budget(self.create_key(channel_id), *self.create),
            Budget(f"discord:channel:{channel_id}:create:serial", 1, _SERIAL_WINDOW),
            Budget("discord:global", *self.global_),
        )

    def edit_budgets(self, channel_id: int) -> tuple[Budget, ...]:
        return (
            Budget(self.edit_key(channel_id), *self.edit),
            Budget(f"discord:channel:{channel_id}:edit:serial", 1, _SERIAL_WINDOW),
            Budget("discord:global", *self.global_),
        )


class RestThrottle:
    """At most ``capacity`` requests in any ``window`` seconds, for the calls the renderer does not make.

    Like the renderer's budgets, a request holds its slot from send to answer and counts for
    ``window + margin`` after that. Waiters are served in arrival order.
    """

    def __init__(
        self,
        capacity: int,
        window: float,
        *,
        margin: float = MARGIN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1 or window <= 0:
            raise ValueError("RestThrottle needs capacity >= 1 and window > 0")
        self.capacity = capacity
        self._span = window + margin
        self._clock = clock
        self._ends: deque[float] = deque()
        self._in_flight = 0
        self._turn = asyncio.Lock()  # FIFO: one acquirer waits for a slot at a time
        self._released = asyncio.Event()
        self.waited = 0.0  # seconds callers spent waiting, for tests and metrics

    def _used(self, now: float) -> int:
        while self._ends and self._ends[0] <= now:
            self._ends.popleft()
        return len(self._ends) + self._in_flight

    async def acquire(self) -> None:
        start = self._clock()
        async with self._turn:
            while True:
                now = self._clock()
                used = self._used(now)
                if used < self.capacity:
                    self._in_flight += 1
                    break
                k = used - self.capacity  # this many must expire first; in-flight ones sort last
                if k < len(self._ends):
                    await asyncio.sleep(self._ends[k] - now)
                else:
                    self._released.clear()
                    await self._released.wait()
        self.waited += self._clock() - start

    def try_acquire(self) -> bool:
        """Take a slot only if one is free now and nobody is waiting (for best-effort calls)."""
        if self._turn.locked() or self._used(self._clock()) >= self.capacity:
            return False
        self._in_flight += 1
        return True

    def charge(self, count: int = 1) -> None:
        """Count ``count`` requests made outside the throttle just now (discord.py's own calls)."""
        end = self._clock() + self._span
        self._ends.extend([end] * count)

    def release(self) -> None:
        self._in_flight -= 1
        self._ends.append(self._clock() + self._span)
        self._released.set()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()
