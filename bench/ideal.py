"""The ideal schedule: the least staleness any scheduler could reach within the same budgets.

Staleness
---------
For one reply, ``G(t)`` is the length of the text the gateway has produced by time ``t`` and
``V(t)`` the length of the text visible on the platform (both measured on the answer with
trailing whitespace stripped, so a token's trailing space or newline never counts as unseen).
Staleness is ``∫ (G(t) − V(t)) dt`` from the first token until the whole answer is visible: the
area between the two curves, in characters × seconds. A scheduler makes ``V`` jump to
``G(s)`` at each edit time ``s``; pacing efficiency is ideal staleness / actual staleness.

The model of the ideal scheduler
--------------------------------
- It knows the token timeline in advance (it is an offline reference, not a policy) and owns a
  message that already exists, so every action is an edit that shows everything produced so
  far, takes effect instantly (no network time) and never has to split the reply into parts.
  Posts are not modelled: where posts and edits share a budget (Discord's global one), the
  ideal has the whole budget for edits, which makes Parley's efficiency look lower, never higher.
- It must end with an edit showing the whole answer no earlier than the last token arrives.
- A budget is ``c`` edits in any sliding window of ``w`` seconds (what the platform, or Parley's
  declaration of it, allows). Budgets with windows under 50 ms are left out: Parley uses them
  only to keep one request per channel in flight.
- A budget used by one reply is that reply's own. A budget shared by ``N`` replies of the
  scenario is handled in one of two ways:

  * *one window*: when all the shared replies' tokens fall within less than ``w`` seconds, the
    budget is exactly "at most ``c`` edits in total". The ideal splits the ``c`` edits among the
    replies by greedy marginal gain, each reply placing its share optimally. A reply's best
    staleness with ``k`` edits is convex in ``k`` (Monge segment costs, below), so the greedy
    split is the optimal one; for several such budgets each edit must fit in all of them.
  * *rate share*: otherwise (windows short next to a reply, e.g. Discord's 50 per second) the
    reply gets an equal share of the rate, as its own budget of ``k = max(1, ⌊c/N⌋)`` edits per
    ``w·k·N/c`` seconds. That is a reasonable ideal, not a bound: the shares are jointly
    feasible only if the replies interleave their edits, which a central scheduler can do.

Finding the schedule for one reply
----------------------------------
Edit times only matter through which token each shows, so a schedule is a list of token
indices ending with the last. The cost of showing token ``i`` until the edit at token ``j`` is
``seg(i, j) = ∫ G − L_i (t_j − t_i)`` over ``[t_i, t_j]``, which satisfies the quadrangle (Monge)
inequality because ``L`` grows; so

- **at most k edits** (one window): exact dynamic programming, one layer per edit, each layer by
  divide and conquer over the monotone best predecessor (O(k · n log n));
- **sliding windows**: the best schedule of the *linearised* timeline (``G`` growing at the
  reply's mean rate) is a small convex program over the gaps between edits — minimise
  ``Σ gap²`` subject to the gaps summing to the reply's length and every ``c`` consecutive gaps
  spanning at least ``w`` — solved for every feasible number of edits by Hildreth's dual
  coordinate ascent (exact in the limit; stopped when no multiplier moves by 1e-10). The best
  few are then polished on the real timeline by coordinate descent (each edit moved to the best
  token time, or the earliest time its windows allow, between its neighbours). The fake gateway
  streams at a constant rate, so the linearised optimum is the real one up to a token's jitter.
  Checked against an exact dynamic program over token times (feasible for ``c`` ≤ 2): within
  1.1% on 400-token timelines (``c`` = 1) and 0.4% on 110-token ones (``c`` = 2); on tiny,
  irregular timelines (a dozen tokens of very different sizes) it can be 10–30% off, which is
  why the bench streams a regular answer.

The *steady* variant (``pacing_eff_steady`` in the JSON) replaces every budget by one edit per
``w/c`` seconds: a scheduler that never bursts. It is not a bound (Parley may beat it by
spending a budget's spare room on first and final texts); it tells how far the smoothing itself
is from the best evenly paced schedule.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise

# Windows shorter than this only serialise requests; they never shape a schedule.
MIN_WINDOW = 0.05
_POLISH_CANDIDATES = 3  # numbers of edits whose linearised optimum is polished on the real timeline
_MAX_EDITS = 64


@dataclass(frozen=True, slots=True)
class Growth:
    """How much of a reply's text exists over time: ``lengths[k]`` from ``times[k]`` on.

    Built with :func:`growth`; lengths strictly increase and times never decrease.
    """

    times: tuple[float, ...]
    lengths: tuple[int, ...]
    prefix: tuple[float, ...]  # ∫ G from times[0] to times[k]

    @property
    def start(self) -> float:
        return self.times[0]

    @property
    def end(self) -> float:
        return self.times[-1]

    @property
    def total(self) -> int:
        return self.lengths[-1]

    def value(self, t: float) -> int:
        k = bisect_right(self.times, t) - 1
        return self.lengths[k] if k >= 0 else 0

    def integral(self, t: float) -> float:
        """∫ G from the first token to ``t`` (G stays at the total after the last token)."""
        k = bisect_right(self.times, t) - 1
        if k < 0:
            return 0.0
        return self.prefix[k] + self.lengths[k] * (t - self.times[k])

    def seg(self, s: float, u: float) -> float:
        """Staleness over ``[s, u]`` when the edit at ``s`` is the last one before ``u``."""
        return self.integral(u) - self.integral(s) - self.value(s) * (u - s)

    def cost(self, edits: Sequence[float]) -> float:
        """Staleness of a schedule (sorted edit times, the last showing the whole text)."""
        if not edits:
            return math.inf
        total = self.integral(edits[0])
        for s, u in pairwise(edits):
            total += self.seg(s, u)
        return total


def growth(points: Iterable[tuple[float, int]]) -> Growth:
    """A :class:`Growth` from (time, text length so far) points in time order."""
    times: list[float] = []
    lengths: list[int] = []
    for t, n in points:
        if lengths and n <= lengths[-1]:
            continue  # nothing new became visible-worthy (e.g. a whitespace-only token)
        if times and t <= times[-1]:
            lengths[-1] = n  # same instant: only the latest length matters
            continue
        times.append(t)
        lengths.append(n)
    if not times:
        raise ValueError("a reply without text has no staleness")
    prefix = [0.0]
    for k in range(1, len(times)):
        prefix.append(prefix[-1] + lengths[k - 1] * (times[k] - times[k - 1]))
    return Growth(tuple(times), tuple(lengths), tuple(prefix))


def staleness(g: Growth, visible: Sequence[tuple[float, int]]) -> float:
    """∫ max(0, G − V) from the first token until V reaches the whole text.

    ``visible`` is (time, visible length) in time order. If the text never becomes whole, the
    area up to the last visible change is returned (an underestimate the caller flags).
    """
    produced = [(t, 0, n) for t, n in zip(g.times, g.lengths, strict=True)]
    events = sorted(produced + [(t, 1, n) for t, n in visible])
    gv = vv = 0
    area = 0.0
    last = -math.inf
    for t, kind, n in events:
        if gv > vv:  # G is 0 before the first token, so nothing counts before it
            area += (gv - vv) * (t - last)
        last = t
        if kind == 0:
            gv = n
        else:
            vv = n
            if vv >= g.total and t >= g.end:
                break
    return area


# -- one window: at most k edits --------------------------------------------------------------


def best_by_count(g: Growth, max_edits: int) -> list[float]:
    """``out[k-1]`` = least staleness with at most ``k`` edits, the last at the last token (exact)."""
    t, L, P = g.times, g.lengths, g.prefix
    n = len(t)

    def seg(i: int, j: int) -> float:
        return P[j] - P[i] - L[i] * (t[j] - t[i])

    layer = list(P)  # one edit, at token j: the area under G up to there
    out = [layer[-1]]
    for _ in range(1, min(max_edits, n)):
        nxt = [math.inf] * n

        # Divide and conquer: the best predecessor of j never moves left as j grows (Monge).
        stack = [(1, n - 1, 0, n - 2)]
        while stack:
            lo, hi, olo, ohi = stack.pop()
            if lo > hi:
                continue
            mid = (lo + hi) // 2
            best, arg = math.inf, olo
            for i in range(olo, min(mid - 1, ohi) + 1):
                v = layer[i] + seg(i, mid)
                if v < best:
                    best, arg = v, i
            nxt[mid] = best
            stack.append((lo, mid - 1, olo, arg))
            stack.append((mid + 1, hi, arg, ohi))
        layer = nxt
        out.append(min(out[-1], layer[-1]))
    while len(out) < max_edits:
        out.append(out[-1])  # more edits than tokens cannot help
    return out


def split_count(curves: Sequence[Sequence[float]], caps: Sequence[tuple[int, Sequence[int]]]) -> list[int]:
    """Edits per reply that minimise total staleness: every reply gets its final edit, then each
    further edit goes to the reply it helps most while every budget it draws on has room.

    ``curves[r][k-1]`` is reply r's staleness with k edits; ``caps`` lists (capacity, replies
    drawing on it).
    """
    count = [1] * len(curves)
    left = {i: cap - len(members) for i, (cap, members) in enumerate(caps)}
    keys_of: dict[int, list[int]] = {}
    for i, (_, members) in enumerate(caps):
        for r in members:
            keys_of.setdefault(r, []).append(i)
    if any(v < 0 for v in left.values()):
        raise ValueError("a one-window budget smaller than the number of replies sharing it")
    heap = [(-(c[0] - c[1]) if len(c) > 1 else 0.0, r) for r, c in enumerate(curves)]
    heapq.heapify(heap)
    while heap:
        gain, r = heapq.heappop(heap)
        if gain >= 0:
            break
        if any(left[i] <= 0 for i in keys_of.get(r, [])):
            continue  # a budget of this reply is spent: it gets no more
        for i in keys_of.get(r, []):
            left[i] -= 1
        count[r] += 1
        c = curves[r]
        k = count[r]
        if k < len(c):
            heapq.heappush(heap, (-(c[k - 1] - c[k]), r))
    return count


# -- sliding windows ----------------------------------------------------------------------------


def _max_edits(length: float, windows: Sequence[tuple[int, float]]) -> int:
    """The most edits that fit in ``[0, length]`` with the last at ``length``."""
    best = _MAX_EDITS
    for c, w in windows:
        # The chain s_1, s_{1+c}, s_{1+2c}… needs (⌈m/c⌉ − 1)·w ≤ length.
        best = min(best, c * (int(length // w) + 1))
    return max(1, best)


@lru_cache(maxsize=4096)
def _fluid_gaps(length: float, m: int, windows: tuple[tuple[int, float], ...]) -> tuple[float, ...]:
    """Gaps (first edit after the first token, then between edits) minimising Σ gap² subject to
    Σ gaps = length and every ``c`` consecutive gaps after the first summing to at least ``w``.

    Hildreth's method: cyclic exact maximisation of the dual, one multiplier at a time.
    """
    constraints: list[tuple[int, int, float, float]] = [(0, m, 1.0, length), (0, m, -1.0, -length)]
    constraints += [(i, i + 1, 1.0, 0.0) for i in range(m)]
    for c, w in windows:
        constraints += [(j, j + c, 1.0, w) for j in range(1, m - c + 1)]
    gaps = [0.0] * m
    lam = [0.0] * len(constraints)
    for _ in range(50_000):
        moved = 0.0
        for k, (lo, hi, sign, bound) in enumerate(constraints):
            value = sign * sum(gaps[lo:hi])
            new = lam[k] + (bound - value) / (hi - lo)
            if new < 0.0:
                new = 0.0
            d = new - lam[k]
            if d:
                lam[k] = new
                moved = max(moved, abs(d))
                step = sign * d
                for i in range(lo, hi):
                    gaps[i] += step
        if moved < 1e-10:
            break
    return tuple(max(0.0, x) for x in gaps)


def _repair(edits: list[float], windows: Sequence[tuple[int, float]]) -> list[float]:
    """Push edits later just enough to meet every window exactly (the solver stops a hair short)."""
    out = list(edits)
    for j in range(len(out)):
        for c, w in windows:
            if j >= c and out[j] < out[j - c] + w:
                out[j] = out[j - c] + w
        if j and out[j] < out[j - 1]:
            out[j] = out[j - 1]
    return out


def _polish(g: Growth, edits: list[float], windows: Sequence[tuple[int, float]]) -> list[float]:
    """Coordinate descent on the real timeline; the final edit stays at the last token."""
    edits = list(edits)
    m = len(edits)
    times, lengths, prefix = g.times, g.lengths, g.prefix
    for _ in range(50):
        improved = False
        for j in range(m - 1):
            lo = edits[j - 1] if j else g.start
            hi = edits[j + 1]
            for c, w in windows:
                if j - c >= 0:
                    lo = max(lo, edits[j - c] + w)
                if j + c < m:
                    hi = min(hi, edits[j + c] - w)
            if lo > hi:
                continue
            # seg(prev, x) + seg(x, next) = head(x) + ∫G(next) − ∫G(x) − G(x)·(next − x)
            nxt = edits[j + 1]
            i_next = g.integral(nxt)
            if j:
                prev = edits[j - 1]
                i_prev, v_prev = g.integral(prev), g.value(prev)
            else:
                prev, i_prev, v_prev = g.start, 0.0, 0

            best_x = edits[j]
            best = math.inf
            picks = [(best_x, g.integral(best_x), g.value(best_x)), (lo, g.integral(lo), g.value(lo))]
            a, b = bisect_right(times, lo), bisect_right(times, hi)
            picks += zip(times[a:b], prefix[a:b], lengths[a:b], strict=True)
            for x, ix, vx in picks:
                v = ix - i_prev - v_prev * (x - prev) + i_next - ix - vx * (nxt - x)
                if v < best - 1e-9:
                    best_x, best = x, v

            if best_x != edits[j]:
                edits[j] = best_x
                improved = True
        if not improved:
            break
    return edits


def best_with_windows(g: Growth, windows: Sequence[tuple[int, float]]) -> tuple[float, list[float]]:
    """Near-optimal staleness (and schedule) under sliding-window budgets; see the module doc."""
    windows = tuple(sorted({(c, w) for c, w in windows if w >= MIN_WINDOW}))
    length = g.end - g.start
    if length <= 0:
        return 0.0, [g.end]
    top = _max_edits(length, windows)
    fluid: list[tuple[float, int, tuple[float, ...]]] = []
    for m in range(1, top + 1):
        binding = tuple((c, w) for c, w in windows if c < m)
        gaps = _fluid_gaps(round(length, 4), m, binding)
        fluid.append((sum(x * x for x in gaps), m, gaps))
    fluid.sort()
    best_cost, best_edits = math.inf, [g.end]
    for _, _, gaps in fluid[:_POLISH_CANDIDATES]:
        edits = []
        t = g.start
        for x in gaps:
            t += x
            edits.append(t)
        edits[-1] = g.end
        edits = _repair(edits, windows)
        edits = _polish(g, edits, windows)
        cost = g.cost(edits)
        if cost < best_cost:
            best_cost, best_edits = cost, edits
    return best_cost, best_edits


# -- a scenario ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limit:
    """A budget as the ideal sees it: ``capacity`` edits per sliding ``window`` seconds."""

    key: str
    capacity: int
    window: float


@dataclass(slots=True)
class IdealResult:
    per_reply: list[float]
    edits: list[int]  # edits per reply in the ideal schedule
    shared: dict[str, str] = field(default_factory=dict)  # key -> "own" | "one window" | "rate share"

    def shared_summary(self) -> dict[str, int]:
        """How many budget keys the ideal treated each way."""
        out: dict[str, int] = {}
        for how in self.shared.values():
            out[how] = out.get(how, 0) + 1
        return out


def ideal(replies: Sequence[tuple[Growth, Sequence[Limit]]]) -> IdealResult:
    """Ideal staleness of each reply of a scenario, given the edit budgets each reply draws on."""
    users: dict[str, list[int]] = {}
    limits: dict[str, Limit] = {}
    for r, (_, budgets) in enumerate(replies):
        for b in budgets:
            if b.window < MIN_WINDOW:
                continue
            users.setdefault(b.key, []).append(r)
            known = limits.get(b.key)
            if known is None or (b.capacity / b.window) < (known.capacity / known.window):
                limits[b.key] = b
    how: dict[str, str] = {}
    for key, members in users.items():
        lim = limits[key]
        if len(members) == 1:
            span = replies[members[0]][0].end - replies[members[0]][0].start
        else:
            span = max(replies[r][0].end for r in members) - min(replies[r][0].start for r in members)
        if span < lim.window and lim.capacity >= len(members):
            how[key] = "one window"
        else:
            how[key] = "own" if len(members) == 1 else "rate share"

    per_reply = [0.0] * len(replies)
    edits = [0] * len(replies)
    joint: list[int] = []
    for r, (g, budgets) in enumerate(replies):
        keys = [b.key for b in budgets if b.key in how]
        if keys and all(how[k] == "one window" for k in keys):
            joint.append(r)
            continue
        windows: list[tuple[int, float]] = []
        for k in keys:
            lim, n = limits[k], len(users[k])
            if n == 1:
                windows.append((lim.capacity, lim.window))
            else:
                share = max(1, lim.capacity // n)
                windows.append((share, lim.window * share * n / lim.capacity))
        cost, schedule = best_with_windows(g, windows)
        per_reply[r] = cost
        edits[r] = len(schedule)
    if joint:
        index = {r: i for i, r in enumerate(joint)}
        cap_keys = sorted({b.key for r in joint for b in replies[r][1] if b.key in how})
        top = max(limits[k].capacity for k in cap_keys)
        curves = [best_by_count(replies[r][0], top) for r in joint]
        caps = [(limits[k].capacity, [index[r] for r in users[k] if r in index]) for k in cap_keys]
        counts = split_count(curves, caps)
        for i, r in enumerate(joint):
            per_reply[r] = curves[i][counts[i] - 1]
            edits[r] = counts[i]
    return IdealResult(per_reply, edits, how)
