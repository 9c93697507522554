"""One in-process reply surface for tests and the benchmark: it records what the core does to it.

:class:`RecordingSurface` implements the reply protocols of ``bot/render/surface.py`` —
``ReplySurface`` (``limits``, ``render``, ``post``, ``edit``, ``set_status``), ``Recoverable``
(``describe``, ``read``), ``Deletable`` (``delete``) — and ``upload`` for pictures. Every post,
edit and delete becomes a :class:`Call` on a :class:`Timeline` (shared by several surfaces when
the test passes one in), with the time it was sent and answered and its outcome::

    tl = Timeline()
    surface = RecordingSurface(tl, edit_budgets=[Budget("edits", 5, 1.0)], latency=0.01)
    ...                                   # let the core reply through it
    surface.shown[ref]                    # Shown(text, live): what the "user" sees now
    surface.final                         # the finished reply's text, parts joined
    [c.text for c in tl.of(ref)]          # every state the message went through

Knobs, all optional: ``max_chars`` and the ``post_budgets`` / ``edit_budgets`` it declares,
``render`` (Markdown → platform text), ``latency`` (seconds each call takes), ``fault`` (a
function of the :class:`Call` returning an exception to raise: a 429 as ``RateLimited``, a
refusal as ``SurfaceError``), ``fail_next(action, error, times)`` for the common case, ``hold``
(an ``asyncio.Event``: posts are on the timeline, pending, until it is set), ``read_error``
(``read`` raises it). For the benchmark, ``keep_history=False`` keeps only what is shown now
and the first times, so a surface costs nothing that grows with the number of edits.

:class:`PlainSurface` is the other end: the protocol alone, for the fallbacks when a platform
lacks a capability.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.render.surface import PROVISIONAL, Budget, RateLimited, Shown, SurfaceLimits

Fault = Callable[["Call"], BaseException | None]


@dataclass
class Call:
    """One call the core made: filled in as it goes (``t1`` and ``outcome`` when answered)."""

    surface: str
    action: str  # "post" | "edit" | "delete"
    ref: str
    text: str
    live: bool
    budgets: tuple[Budget, ...]
    t0: float  # sent
    t1: float = float("inf")  # answered
    outcome: str = "pending"  # "ok" | "429" | "error"


@dataclass
class Timeline:
    """Calls in the order they were sent, across every surface that shares it."""

    calls: list[Call] = field(default_factory=list)
    clock: Callable[[], float] = time.monotonic

    def of(self, ref: str) -> list[Call]:
        return [c for c in self.calls if c.ref == ref]

    def actions(self, action: str, *, ok: bool = True) -> list[Call]:
        """Calls of one kind (``post``, ``edit``, ``delete``), only the accepted ones by default."""
        return [c for c in self.calls if c.action == action and (not ok or c.outcome == "ok")]


@dataclass(frozen=True)
class Uploaded:
    """A file added to the reply (the ``Uploads`` capability: a generated picture)."""

    t: float
    name: str
    media_type: str
    data: bytes


class RecordingSurface:
    """A reply surface that records everything; see the module docstring."""

    _ids = itertools.count(1)

    def __init__(
        self,
        timeline: Timeline | None = None,
        *,
        name: str | None = None,
        max_chars: int = 2000,
        post_budgets: Sequence[Budget] = (),
        edit_budgets: Sequence[Budget] = (),
        render: Callable[[str], str] | None = None,
        latency: float = 0.0,
        fault: Fault | None = None,
        hold: asyncio.Event | None = None,
        keep_history: bool = True,
    ) -> None:
        self.timeline = timeline if timeline is not None else Timeline()
        self.name = name or f"s{next(self._ids)}"
        self.limits = SurfaceLimits(max_chars, tuple(post_budgets), tuple(edit_budgets))
        self._render = render or (lambda markdown: markdown)
        self.latency = latency
        self.fault = fault
        self.hold = hold
        self.keep_history = keep_history
        self.read_error: BaseException | None = None
        self._failures: list[tuple[str, BaseException]] = []

        self.shown: dict[str, Shown] = {}  # ref -> what users see now
        self.order: list[str] = []  # refs in posting order
        self.deleted: list[str] = []
        self.statuses: list[tuple[float, str | None]] = []
        self.uploads: list[Uploaded] = []
        self.started = time.monotonic()
        self.first_post_at: float | None = None
        self.first_text_at: float | None = None
        self.last_shown_at: float | None = None  # the last post or edit that landed
        self.in_flight = 0
        self.max_in_flight = 0
        self.posting = 0  # posts under way (held ones included)
        self._posts = 0

    # ------------------------------------------------------------------ the protocols

    @property
    def limits(self) -> SurfaceLimits:
        return self._limits

    @limits.setter
    def limits(self, value: SurfaceLimits) -> None:
        self._limits = value

    def render(self, markdown: str) -> str:
        return self._render(markdown)

    async def post(self, text: str, *, live: bool) -> str:
        self.posting += 1
        try:
            call = await self._call("post", "", text, live, self._limits.post_budgets)
        finally:
            self.posting -= 1
        self._posts += 1
        ref = call.ref = f"{self.name}:{self._posts}"
        self.order.append(ref)
        self._show(ref, text, live)
        return ref

    async def edit(self, ref: str, text: str, *, live: bool) -> None:
        await self._call("edit", ref, text, live, self._limits.edit_budgets)
        self._show(ref, text, live)

    async def delete(self, ref: str) -> None:
        await self._call("delete", ref, "", False, ())
        self.shown.pop(ref, None)
        self.deleted.append(ref)

    async def set_status(self, status: str | None) -> None:
        self.statuses.append((time.monotonic(), status))

    async def upload(self, name: str, data: bytes, media_type: str) -> str:
        self.uploads.append(Uploaded(time.monotonic(), name, media_type, data))
        return f"{self.name}:file{len(self.uploads)}"

    def describe(self) -> dict[str, Any]:
        return {"surface": self.name}

    async def read(self, ref: str) -> Shown | None:
        if self.read_error is not None:
            raise self.read_error
        return self.shown.get(ref)

    # ------------------------------------------------------------------ failures

    def fail_next(self, action: str, error: BaseException, times: int = 1) -> None:
        """The next ``times`` calls of ``action`` (``post``, ``edit``, ``delete``) raise ``error``."""
        self._failures += [(action, error)] * times

    def _failure(self, call: Call) -> BaseException | None:
        for i, (action, error) in enumerate(self._failures):
            if action == call.action:
                del self._failures[i]
                return error
        return self.fault(call) if self.fault is not None else None

    # ------------------------------------------------------------------ reading it back

    @property
    def messages(self) -> list[str]:
        """The texts of the live (not deleted) messages, in posting order."""
        return [self.shown[r].text for r in self.order if r in self.shown]

    @property
    def text(self) -> str:
        """Every message's text joined: a reply split into parts reads as one."""
        return "".join(self.messages)

    @property
    def final(self) -> str | None:
        """The reply's text once no message is live any more (None while it still streams)."""
        shown = [self.shown[r] for r in self.order if r in self.shown]
        if not shown or any(s.live for s in shown):
            return None
        return "".join(s.text for s in shown)

    @property
    def posts(self) -> list[Call]:
        return [c for c in self.timeline.actions("post") if c.surface == self.name]

    @property
    def edits(self) -> list[Call]:
        return [c for c in self.timeline.actions("edit") if c.surface == self.name]

    # ------------------------------------------------------------------ plumbing

    def _show(self, ref: str, text: str, live: bool) -> None:
        self.shown[ref] = Shown(text, live)
        now = time.monotonic()
        if self.first_post_at is None:
            self.first_post_at = now
        if self.first_text_at is None and text not in PROVISIONAL:
            self.first_text_at = now
        self.last_shown_at = now

    async def _call(self, action: str, ref: str, text: str, live: bool, budgets: tuple[Budget, ...]) -> Call:
        call = Call(self.name, action, ref, text, live, budgets, self.timeline.clock())
        if self.keep_history:
            self.timeline.calls.append(call)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            assert len(text) <= self._limits.max_chars, f"{len(text)} characters: over the platform limit"
            if action == "post" and self.hold is not None:
                await self.hold.wait()  # asked for (t0) but not yet taken by the platform
            if self.latency:
                await asyncio.sleep(self.latency)
            error = self._failure(call)
            if error is not None:
                call.outcome = "429" if isinstance(error, RateLimited) else "error"
                raise error
            call.outcome = "ok"
            return call
        finally:
            call.t1 = self.timeline.clock()
            self.in_flight -= 1


class PlainSurface:
    """A surface with ``ReplySurface`` alone and none of the optional capabilities (no
    ``upload``, ``delete``, ``read``): for what the core does when a platform lacks one. It
    takes every call and keeps nothing; subclass it to add the one capability a test needs."""

    limits = SurfaceLimits(2000)

    def render(self, markdown: str) -> str:
        return markdown

    async def post(self, text: str, *, live: bool) -> str:
        return "m1"

    async def edit(self, ref: str, text: str, *, live: bool) -> None:
        return None

    async def set_status(self, status: str | None) -> None:
        return None
