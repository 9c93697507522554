"""A discrete-event simulation of the renderer's pacing rules, for tuning them in seconds.

``python -m bench.pacesim --budget 45/60 --replies 1 --seconds 7`` runs replies of a steady token
stream against the real :mod:`bot.render.budget` windows and :func:`bot.render.plan.priority`
on a virtual clock, each action taking ``rtt`` seconds, and prints, per answer length, the
staleness (mean age of the oldest unseen character), the edits per reply, the longest wait
between two updates of a reply while it had unseen text, and the pacing efficiency against
:mod:`bench.ideal`. It models edits only (every reply's message already exists, as in the
ideal), no splitting and no platform: the full bench (``python -m bench``) is the measurement;
this is where rules are compared quickly, on answers from a few seconds to minutes.
"""

from __future__ import annotations

import argparse
import heapq
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.ideal import Limit, growth, ideal
from bench.metrics import mean_age
from bot.render.budget import BudgetBook, Window, free_at
from bot.render.plan import priority
from bot.render.surface import Budget

CHARS_PER_TOKEN = 6.5  # the bench's answer: 2,600 characters in 400 tokens


@dataclass(slots=True, eq=False)
class SimReply:
    """One reply: its token timeline, what it shows, and its action in flight."""

    start: float  # first token
    tokens: int
    rate: float
    shown: int = 0  # characters visible
    shown_at: list[tuple[float, int]] = field(default_factory=list)
    in_flight: bool = False
    last_shown: float = 0.0
    longest_wait: float = 0.0

    @property
    def end(self) -> float:
        return self.start + (self.tokens - 1) / self.rate

    def produced(self, now: float) -> int:
        if now < self.start:
            return 0
        k = min(self.tokens, int((now - self.start) * self.rate + 1e-9) + 1)
        return int(k * CHARS_PER_TOKEN)

    @property
    def total(self) -> int:
        return int(self.tokens * CHARS_PER_TOKEN)

    def final(self, now: float) -> bool:
        return now >= self.end - 1e-9

    def done(self) -> bool:
        return self.shown >= self.total

    def wants(self, now: float) -> bool:
        return not self.in_flight and self.produced(now) > self.shown

    def timeline(self) -> list[tuple[float, int]]:
        return [(self.start + k / self.rate, int((k + 1) * CHARS_PER_TOKEN)) for k in range(self.tokens)]


@dataclass(slots=True)
class FixedBucket:
    """A platform bucket as Discord announces it: ``limit`` requests in a fixed window of ``per``
    seconds that opens at the first request after the previous one closed."""

    limit: int
    per: float
    end: float = -math.inf
    count: int = 0
    refused: int = 0

    def hit(self, now: float) -> tuple[int, float]:
        """(remaining, reset_after) the answer to a request arriving at ``now`` announces."""
        if now >= self.end:
            self.end, self.count = now + self.per, 0
        if self.count >= self.limit:
            self.refused += 1
        else:
            self.count += 1
        return self.limit - self.count, self.end - now


@dataclass(slots=True)
class SimResult:
    seconds: float
    replies: int
    staleness_s: float
    edits: float
    longest_wait: float
    efficiency: float | None
    final_wait: float  # the longest time from a reply's last token to its final text (s)


@dataclass(slots=True)
class _Sim:
    """The state of one simulation: the windows, what is due when, what the bucket said."""

    windows: tuple[Window, ...]
    replies: Sequence[SimReply]
    rtt: float
    bucket: FixedBucket | None
    events: list[tuple[float, int, int]] = field(default_factory=list)  # (time, 0 token | 1 answer, reply)
    said: dict[int, tuple[int, float]] = field(default_factory=dict)  # reply -> its answer's count

    def answered(self, now: float, i: int) -> None:
        for w in self.windows:
            w.release(now)
        if i in self.said:
            remaining, reset_after = self.said.pop(i)
            self.windows[0].observe(now, remaining, reset_after)
        self.replies[i].in_flight = False

    def round(self, now: float) -> float:
        """Give free slots to the replies with something to show, most needy first; returns when
        the next one could act (inf: only an answer can change that)."""
        waiting = [r for r in self.replies if r.wants(now)]
        waiting.sort(
            key=lambda r: priority(
                md_len=r.produced(now), visible_md=r.shown, final=r.final(now), waited=now - r.last_shown
            ),
            reverse=True,
        )
        timer = math.inf
        for r in waiting:
            t = free_at(self.windows, now, urgent=r.final(now) or r.shown == 0)
            if t > now:
                timer = min(timer, t)
            else:
                self.send(now, r)
        return timer

    def send(self, now: float, r: SimReply) -> None:
        for w in self.windows:
            w.acquire(now)
        r.in_flight = True
        shown_at = now + self.rtt / 2
        if r.shown:
            r.longest_wait = max(r.longest_wait, shown_at - r.last_shown)
        r.shown = r.produced(now)
        r.shown_at.append((shown_at, r.shown))
        r.last_shown = shown_at
        i = list(self.replies).index(r)
        if self.bucket is not None:
            self.said[i] = self.bucket.hit(now + self.rtt / 2)
        heapq.heappush(self.events, (now + self.rtt, 1, i))


def simulate(
    budgets: Sequence[Budget],
    replies: Sequence[SimReply],
    *,
    rtt: float = 0.02,
    margin: float = 0.1,
    book: BudgetBook | None = None,
    warm: int = 0,
    bucket: FixedBucket | None = None,
) -> list[SimReply]:
    """Run ``replies`` (sharing ``budgets``) to the end; returns them with what they showed.

    ``warm`` actions were made 5 s before the first token (the bench's warm-up question).
    """
    book = BudgetBook(margin=margin) if book is None else book
    sim = _Sim(book.resolve(budgets), replies, rtt, bucket)
    for _ in range(warm):
        for w in sim.windows:
            w.acquire(-5.0)
            w.release(-5.0 + rtt)
    for i, r in enumerate(replies):
        for k in range(r.tokens):
            heapq.heappush(sim.events, (r.start + k / r.rate, 0, i))
    timer = math.inf
    while sim.events or timer < math.inf:
        if sim.events and sim.events[0][0] <= timer:
            now, kind, i = heapq.heappop(sim.events)
            if kind == 1:
                sim.answered(now, i)
        else:
            now = timer
        timer = sim.round(now)
    return list(replies)


def run(
    budget: Budget,
    n: int,
    seconds: float,
    *,
    rate: float = 60.0,
    stagger: float = 0.0,
    warm: int = 2,
    book: BudgetBook | None = None,
    platform: Budget | None = None,
    bucket: FixedBucket | None = None,
) -> SimResult:
    """``n`` replies of ``seconds`` each on one budget; efficiency against ``platform`` (default:
    ``budget`` itself)."""
    limit = platform or budget
    tokens = max(2, int(seconds * rate))
    replies = [SimReply(start=i * stagger, tokens=tokens, rate=rate) for i in range(n)]
    simulate([budget], replies, warm=warm, book=book, bucket=bucket)
    ages = []
    pairs = []
    for r in replies:
        g = growth(r.timeline())
        ages.append(mean_age(g, r.shown_at))
        pairs.append((g, [Limit(limit.key, limit.capacity, limit.window)]))
    eff = None
    try:
        best = ideal(pairs).per_reply
        from bench.ideal import staleness

        actual = [staleness(g, r.shown_at) for (g, _), r in zip(pairs, replies, strict=True)]
        eff = sum(best) / sum(actual) if sum(actual) > 0 else None
    except ValueError:
        pass
    return SimResult(
        seconds,
        n,
        statistics.mean(ages),
        statistics.mean(len(r.shown_at) for r in replies),
        max(r.longest_wait for r in replies),
        eff,
        max(r.shown_at[-1][0] - r.end for r in replies),
    )


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.pacesim", description=__doc__)
    p.add_argument("--budget", default="45/60", help="capacity/window seconds (default 45/60)")
    p.add_argument("--replies", type=int, action="append", help="replies at once (repeatable)")
    p.add_argument("--seconds", type=float, action="append", help="answer length (repeatable)")
    p.add_argument("--rate", type=float, default=60.0)
    args = p.parse_args()
    cap, window = args.budget.split("/")
    budget = Budget("sim", int(cap), float(window))
    print("replies  seconds  staleness_s  edits/reply  longest_wait_s  efficiency")
    for n in args.replies or [1, 10]:
        for s in args.seconds or [3.0, 7.0, 20.0, 67.0, 180.0]:
            r = run(budget, n, s, rate=args.rate)
            eff = "–" if r.efficiency is None else f"{r.efficiency:.2f}"
            row = f"{n:7d}  {s:7.0f}  {r.staleness_s:11.3f}  {r.edits:11.1f}  {r.longest_wait:14.2f}"
            print(f"{row}  {eff:>10}")


if __name__ == "__main__":
    main()
