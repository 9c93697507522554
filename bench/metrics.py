"""From what the fakes recorded to what a user felt: per-reply figures and their distributions.

All times are ``time.monotonic()`` in one process (the fakes, the gateway and the bench record
with it), so a gateway token and the platform state that first shows it are comparable.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.ideal import Growth, Limit, growth, staleness
from bench.probes import percentile

# One platform message: its states in order, as (time, text a reader sees).
States = Sequence[tuple[float, str]]


@dataclass(slots=True)
class Trace:
    """One reply as recorded: the question's time, the gateway's stream, the platform's messages."""

    label: str
    asked_at: float
    tokens: Sequence[tuple[float, str]]  # the gateway's timeline: (time, text so far)
    messages: Sequence[States]  # the reply's messages in reading order
    declared: Sequence[Limit]  # the edit budgets Parley declares for this reply
    platform: Sequence[Limit]  # the edit limits the (fake) platform enforces
    request_at: float | None = None  # the gateway received the request
    post_keys: frozenset[str] = frozenset()  # declared budget keys that posts draw on too


@dataclass(slots=True)
class ReplyFigures:
    label: str
    placeholder: float | None  # question → first state of the first message (s)
    first_text: float | None  # question → first state showing answer text (s)
    request: float | None  # question → gateway got the request (s)
    token_latency: list[float]  # per token: produced → first visible state containing it (s)
    final: float | None  # last token → whole answer visible (s)
    staleness: float  # char·s
    age: float  # mean age of the oldest unseen character, s (see :func:`mean_age`)
    complete: bool  # the whole answer became visible, exactly
    growth: Growth
    edits: int  # platform states after the first, all messages


def coverage(answer: str, texts: Sequence[str]) -> int:
    """How many characters of ``answer`` the messages show, read in order.

    Each message holds a slice of the answer; a platform may trim whitespace at a message's
    edges, so whitespace between parts is skipped. A state that stops matching ends the count.
    """
    pos = 0
    for i, raw in enumerate(texts):
        text = raw.rstrip()
        if i:
            text = text.lstrip()
            while pos < len(answer) and answer[pos].isspace():
                pos += 1
        if answer.startswith(text, pos):
            pos += len(text)
            continue
        pos += _common(text, answer[pos : pos + len(text)])
        break
    return pos


def _common(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def visible_curve(answer: str, messages: Sequence[States]) -> list[tuple[float, int]]:
    """(time, characters of the answer visible) after every state change of any message."""
    events = sorted((t, i, text) for i, states in enumerate(messages) for t, text in states)
    shown: dict[int, str] = {}
    curve: list[tuple[float, int]] = []
    for t, i, text in events:
        shown[i] = text
        texts = [shown[k] for k in sorted(shown)]
        curve.append((t, coverage(answer, texts)))
    return curve


def figures(trace: Trace) -> ReplyFigures:
    answer = trace.tokens[-1][1] if trace.tokens else ""
    needs = [(t, len(text.rstrip())) for t, text in trace.tokens]
    curve = visible_curve(answer, trace.messages)
    first_state = min((states[0][0] for states in trace.messages if states), default=None)
    first_text = next((t for t, n in curve if n > 0), None)

    latency: list[float] = []
    best = 0  # most of the answer any state so far has shown
    best_at: float | None = None  # the state that first showed that much
    events = iter(curve)
    for t_tok, need in needs:
        while best < need:
            nxt = next(events, None)
            if nxt is None:
                break
            if nxt[1] > best:
                best, best_at = nxt[1], nxt[0]
        if best >= need and best_at is not None:
            latency.append(max(0.0, best_at - t_tok))

    total = len(answer.rstrip())
    whole_at = next((t for t, n in curve if n >= total), None)
    g = growth(needs) if needs and total else None
    return ReplyFigures(
        label=trace.label,
        placeholder=None if first_state is None else first_state - trace.asked_at,
        first_text=None if first_text is None else first_text - trace.asked_at,
        request=None if trace.request_at is None else trace.request_at - trace.asked_at,
        token_latency=latency,
        final=None if whole_at is None or not needs else whole_at - needs[-1][0],
        staleness=staleness(g, curve) if g is not None else 0.0,
        age=mean_age(g, curve) if g is not None else 0.0,
        complete=whole_at is not None and curve[-1][1] >= total,
        growth=g if g is not None else growth([(0.0, 1)]),
        edits=sum(max(0, len(s) - 1) for s in trace.messages),
    )


def mean_age(g: Growth, visible: Sequence[tuple[float, int]]) -> float:
    """The mean age of the oldest unseen character over the reply's life, in seconds.

    At each moment ``t`` from the first token until the whole answer is visible, the oldest
    character not yet visible is the one just after what the platform shows (``V(t)``); its age
    is ``t`` minus the moment the gateway produced it, and 0 when everything produced so far is
    visible. The figure is the time average of that age (an exact integral: between two events
    the age grows linearly). It reads as "how far behind the model the reader is", in seconds,
    whatever the token rate. ``visible`` is (time, visible length) in time order; a reply that
    never became whole is averaged up to its last visible change.
    """
    produced_at = [(t, 0, n) for t, n in zip(g.times, g.lengths, strict=True)]
    events = sorted(produced_at + [(t, 1, n) for t, n in visible])
    shown = 0
    produced = 0
    area = 0.0
    last = g.start
    end = g.start
    for t, kind, n in events:
        if t > last and produced > shown:
            born = g.times[bisect_right(g.lengths, shown)]  # the oldest unseen character's birth
            area += (t - last) * ((t + last) / 2 - born)
        if t > last:
            last = t
        if kind == 0:
            produced = n
        else:
            shown = n
        end = t
        if kind == 1 and shown >= g.total and t >= g.end:
            break
    span = end - g.start
    return area / span if span > 0 else 0.0


def action_times(trace: Trace, key: str) -> list[float]:
    """When the platform applied each action of the reply that draws on budget ``key``: every
    edit, and every post (a message's first state) if posts draw on it too."""
    first = 0 if key in trace.post_keys else 1
    return [t for states in trace.messages for t, _ in states[first:]]


def had_room(trace: Trace, everyone: Sequence[Trace], margin: float = 0.1) -> bool:
    """Whether every edit budget of ``trace`` had a free slot when its last token arrived.

    Actions of all the traced replies count against a budget key they share; a slot counts for
    the window plus Parley's margin after the platform applied the action.
    """
    if not trace.tokens:
        return False
    end = trace.tokens[-1][0]
    for limit in trace.declared:
        users = [t for t in everyone if any(b.key == limit.key for b in t.declared)]
        since = end - limit.window - margin
        used = sum(1 for t in users for e in action_times(t, limit.key) if since < e <= end)
        if used >= limit.capacity:
            return False
    return True


def dist(values: Sequence[float | None], scale: float = 1000.0) -> dict[str, float | None]:
    """p50 / p99 / max of a distribution, in milliseconds by default."""
    clean = [v * scale for v in values if v is not None]
    if not clean:
        return {"p50": None, "p99": None, "max": None, "n": 0}
    return {
        "p50": round(percentile(clean, 50) or 0.0, 1),
        "p99": round(percentile(clean, 99) or 0.0, 1),
        "max": round(max(clean), 1),
        "n": len(clean),
    }


def summarise(replies: Sequence[ReplyFigures], traces: Sequence[Trace]) -> dict[str, Any]:
    tokens = [x for r in replies for x in r.token_latency]
    room = [r.final for r, t in zip(replies, traces, strict=True) if had_room(t, traces)]
    return {
        "placeholder_ms": dist([r.placeholder for r in replies]),
        "first_text_ms": dist([r.first_text for r in replies]),
        "request_ms": dist([r.request for r in replies]),
        "token_visible_ms": dist(tokens),
        "final_ms": dist([r.final for r in replies]),
        "final_room_ms": dist(room),
        "complete": sum(r.complete for r in replies),
        "edits_per_reply": round(sum(r.edits for r in replies) / max(1, len(replies)), 1),
        "staleness_s": round(sum(r.age for r in replies) / max(1, len(replies)), 3),
        "staleness_s_max": round(max((r.age for r in replies), default=0.0), 3),
    }
