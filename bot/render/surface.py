"""The reply interface each adapter implements, and the limits it declares.

The renderer is the only caller. An adapter does no pacing and no splitting: it declares its
platform's budgets and length limit here, and the renderer keeps within them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

# What a reply shows before the model's first word, and while it only thinks. Surfaces compare
# against these (a message showing one is not an answer yet): defined here, once.
PLACEHOLDER = "…"
THINKING_PLACEHOLDER = "_thinking…_"
PROVISIONAL = frozenset({PLACEHOLDER, THINKING_PLACEHOLDER})


@dataclass(frozen=True, slots=True)
class Budget:
    """At most ``capacity`` actions in any ``window`` seconds, shared by every reply using ``key``."""

    key: str
    capacity: int
    window: float


@dataclass(frozen=True, slots=True)
class SurfaceLimits:
    max_chars: int  # of rendered platform text per message
    post_budgets: tuple[Budget, ...] = ()
    edit_budgets: tuple[Budget, ...] = ()


class SurfaceError(Exception):
    """The platform refused a post or edit (and retrying the same call will not help)."""


class RateLimited(SurfaceError):
    """The platform answered 429; the budget keys touched should pause ``retry_after`` seconds."""

    def __init__(self, retry_after: float, message: str = "rate limited") -> None:
        super().__init__(message)
        self.retry_after = retry_after


@runtime_checkable
class ReplySurface(Protocol):
    """Where one reply is written. ``ref`` is the platform's id of a posted message.

    ``live`` is True while the reply is still streaming: an adapter may show a Stop control on
    live messages and must remove it when a message is edited with ``live=False``.
    """

    @property
    def limits(self) -> SurfaceLimits:
        """Read before every action: a surface may return other budgets once its calls change
        (the split length is taken once, when a reply starts)."""
        ...

    def render(self, markdown: str) -> str:
        """Standard Markdown → what the platform shows. Must be pure and cheap."""
        ...

    async def post(self, text: str, *, live: bool) -> str: ...

    async def edit(self, ref: str, text: str, *, live: bool) -> None: ...

    async def set_status(self, status: str | None) -> None:
        """Typing indicator / "thinking…" status; None clears it. Best effort, never raises."""
        ...


# Optional capabilities. A surface that has them is used for more; one that lacks them still works.


@dataclass(frozen=True, slots=True)
class Shown:
    """What a posted message shows now, read back from the platform."""

    text: str  # the platform text, as ``render()`` made it
    live: bool  # still carries the Stop control (its reply never finished)


@runtime_checkable
class Recoverable(ReplySurface, Protocol):
    """A surface that can be rebuilt in a later process, to close replies a crash left open.

    ``describe()`` is stored with the reply when it starts (plain JSON); after a crash the adapter
    builds a surface from it again and the core edits the reply's messages through it.
    """

    def describe(self) -> dict[str, Any]: ...

    async def read(self, ref: str) -> Shown | None:
        """What message ``ref`` shows now; None if it is gone or cannot be read."""
        ...


@dataclass(frozen=True, slots=True)
class Announced:
    """What the platform's answer to a post or edit said about the budget it drew on: Discord's
    ``X-RateLimit-*`` headers (``remaining`` requests until the bucket refills in ``reset_after``
    seconds, to ``limit``). ``key`` is the :class:`Budget` key it is about."""

    key: str
    remaining: int
    reset_after: float
    limit: int | None = None


@runtime_checkable
class Announces(Protocol):
    """A surface whose platform announces its own count of a budget with every answer.

    The renderer then paces that key by the platform's figure (exact, and aware of a bucket
    refilling all at once) instead of its own sliding window; see ``budget.Window.observe``.
    """

    def announced(self) -> Announced | None:
        """What the answer to this surface's latest post or edit announced (None: nothing).

        Read once per action, right after it returns or raises; a reply has one action in
        flight at a time, so "latest" is that action's.
        """
        ...


@runtime_checkable
class Deletable(Protocol):
    """A surface that can delete its own messages (a part re-posted after its edits kept failing)."""

    async def delete(self, ref: str) -> None: ...


@runtime_checkable
class Uploads(Protocol):
    """A surface that can add a file to its reply (a picture a tool made, for instance).

    Slack uploads it into the reply's thread (``files.getUploadURLExternal``, then
    ``files.completeUploadExternal``), Discord sends it as an attachment, the console saves a PNG
    in the working directory. Outside the renderer's pacing: the caller decides when.
    """

    async def upload(self, name: str, data: bytes, media_type: str) -> str:
        """Add ``data`` (``media_type``, e.g. ``image/png``) to the reply as file ``name``.

        Returns the platform's ref for the message or file, or the file's name where the platform
        gives none (the console). Raises :class:`SurfaceError` if the platform refused it.
        """
        ...
