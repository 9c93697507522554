"""Budgets shared with other processes: the seam between the pacer and a shared store.

With several instances on one database, a platform's budget (Slack's ``chat.update`` per
workspace, Discord's global 50 a second) is spent by all of them. The pacer still plans with its
own :class:`~bot.render.budget.Window` per key, but before a post or edit goes out it asks a
:class:`SharedBudgets` for the slot. The shared state (``bot/store/budgets.py`` on PostgreSQL)
answers for every instance at once: granted, or refused with when to try again. Either way it
tells the windows what it knows (:meth:`Window.mirror`), so each instance plans with every
instance's actions in view: the reserve for first and final text, the spacing and the burst
guard then hold for the service as a whole, not per process.

On SQLite (one process) there is none, and the pacer takes no extra step.

Fairness across instances is approximate: each instance hands its slots to its neediest reply
first, and the shared state grants slots in the order the instances ask for them. An instance
asks only when its mirrored view shows a free slot, so instances with more replies waiting ask
more often and get more slots, about in proportion to their share of the work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.render.budget import Window

# Windows shorter than this serialise calls within one process (Discord's ``:serial`` keys, a
# hundredth of a second): across processes, at network latencies, they mean nothing. Not shared.
MIN_SHARED_WINDOW = 0.25


@dataclass(frozen=True, slots=True)
class Taken:
    """The shared state's answer for one action: ``ok`` to send it; if not, ``retry_at`` (on
    the pacer's clock) is when a slot should be free."""

    ok: bool
    grant: int = 0  # 0: nothing was booked (no shared window, or the shared state is unreachable)
    keys: tuple[tuple[str, float], ...] = ()  # (key, span) booked
    retry_at: float = 0.0


GRANTED_NOTHING = Taken(True)


class SharedBudgets(Protocol):
    """Budget keys counted for every process at once."""

    async def take(self, windows: Sequence[Window], *, urgent: bool) -> Taken:
        """Book one action on every shared window of ``windows``, or on none; never raises (a
        shared state out of reach grants, so replies go on at this process's own pace)."""
        ...

    def release(self, taken: Taken, now: float) -> None:
        """The action booked by ``taken`` has its answer (at ``now``): its windows start now."""
        ...


def shared_windows(windows: Sequence[Window]) -> list[Window]:
    """The windows worth sharing with other processes (see :data:`MIN_SHARED_WINDOW`)."""
    return [w for w in windows if w.window >= MIN_SHARED_WINDOW]
