"""The adapter seam: adapters register themselves as entry points, the core never imports them.

``pyproject.toml`` lists them under ``[project.entry-points."parley.adapters"]``. Each entry
point names a factory ``(context) -> Adapter | None`` (an :class:`~bot.context.AdapterContext`)
that returns None when its platform's credentials are not set; ``parley.console`` names the
console's entry function.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bot.context import AdapterContext


class Adapter(Protocol):
    name: str

    async def start(self) -> None:
        """Connect to the platform; return once connected (raise with a clear message if not)."""
        ...

    async def stop_intake(self) -> None:
        """Take no new events (shutdown begins); replies in flight go on."""
        ...

    async def stop(self) -> None:
        """Disconnect; called after the core has finished or interrupted every reply."""
        ...

    @property
    def connected(self) -> bool: ...


AdapterFactory = Callable[["AdapterContext"], "Adapter | None"]


def adapter_factories() -> dict[str, AdapterFactory]:
    return {ep.name: ep.load() for ep in entry_points(group="parley.adapters")}


def console_main() -> Callable[..., Any]:
    (ep,) = entry_points(group="parley.console", name="console")
    loaded: Callable[..., Any] = ep.load()
    return loaded


def doctor_checks() -> list[Callable[..., Any]]:
    """Platform checks adapters offer to ``parley doctor`` (entry point group ``parley.doctor``)."""
    return [ep.load() for ep in entry_points(group="parley.doctor")]
