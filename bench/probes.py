"""What the process itself costs while a scenario runs: event-loop lag, CPU time and memory."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

_PROC = psutil.Process()


def rss() -> int:
    """Resident set size now, in bytes."""
    return int(_PROC.memory_info().rss)


def peak_rss() -> int:
    """The kernel's high-water mark of the resident set (VmHWM), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return rss()


def reset_peak() -> bool:
    """Start a new high-water mark from the current resident set (Linux ``clear_refs``)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


@dataclass(slots=True)
class LoopLag:
    """A task that sleeps ``interval`` seconds over and over and records how late it wakes.

    The lateness is what any other callback (a token, an edit's answer, a heartbeat) waits on a
    busy loop, so its p99 is the loop's responsiveness.
    """

    interval: float = 0.01
    samples: list[float] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            self.samples.append(max(0.0, loop.time() - due))

    def start(self) -> None:
        self.samples.clear()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="bench-loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def p99_ms(self) -> float | None:
        p = percentile(self.samples, 99)
        return None if p is None else p * 1000

    def max_ms(self) -> float | None:
        return max(self.samples) * 1000 if self.samples else None


@dataclass(slots=True)
class Meter:
    """CPU seconds (user + system, all threads of this process) and memory over a stretch of work."""

    cpu0: float = 0.0
    cpu: float = 0.0
    rss0: int = 0
    peak: int = 0
    wall0: float = 0.0
    wall: float = 0.0
    peak_reset: bool = False

    def start(self) -> None:
        self.rss0 = rss()
        self.peak_reset = reset_peak()
        self.cpu0 = time.process_time()
        self.wall0 = time.perf_counter()

    def stop(self) -> None:
        self.cpu = time.process_time() - self.cpu0
        self.wall = time.perf_counter() - self.wall0
        self.peak = max(peak_rss(), rss()) if self.peak_reset else rss()
