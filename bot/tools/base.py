"""The values tools and the core exchange, and what one tool is.

The core drives tools only through :class:`~bot.tools.registry.ToolBox`; a tool itself is a small
object with a :class:`~bot.providers.base.ToolSpec`, a status line and an async ``run`` that
returns an :class:`Output` or raises :class:`ToolFailed` with a sentence for the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from bot.providers.base import ToolResultPart, ToolSpec
from bot.types import Author, ConversationKey


@dataclass(frozen=True, slots=True)
class ToolContext:
    """On whose behalf a call runs, and how long it may take.

    ``timeout`` (seconds) caps the call below the tool's own limit (``PARLEY_TOOL_TIMEOUT``, or
    ``PARLEY_IMAGE_TIMEOUT`` for pictures): the core passes what is left of the reply's time.
    """

    key: ConversationKey
    author: Author
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class OutFile:
    """A file a tool made for the user (a generated picture), to attach to the reply."""

    name: str
    media_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ToolUsage:
    """What a call spent at the gateway beyond the chat requests, for the core to record."""

    model: str
    images: int = 0


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """What one call gave: the result for the model, files for the user, usage to record."""

    result: ToolResultPart
    files: tuple[OutFile, ...] = ()
    usage: ToolUsage | None = None

    @property
    def is_error(self) -> bool:
        return self.result.is_error


@dataclass(frozen=True, slots=True)
class Output:
    """What a tool returns to the registry, which caps and delimits it for the model.

    ``source`` names where ``text`` came from (a URL, a server's tool) in the delimiter.
    ``is_error``: the tool itself reported a failure (an MCP result with ``isError``); its text is
    still the tool's data. ``trusted``: ``text`` is Parley's own words, not outside content, so
    it is not wrapped as data.
    """

    text: str
    source: str
    files: tuple[OutFile, ...] = ()
    usage: ToolUsage | None = None
    is_error: bool = False
    trusted: bool = False


class ToolFailed(Exception):
    """A tool could not do its job; ``sentence`` says why, in words the model can act on and
    that are safe to store (no secrets, no outside content)."""

    def __init__(self, sentence: str) -> None:
        super().__init__(sentence)
        self.sentence = sentence


class Tool(Protocol):
    """One callable tool. ``source`` is "built-in" or the MCP server's name; ``timeout`` is the
    tool's own limit in seconds (None: ``PARLEY_TOOL_TIMEOUT``)."""

    @property
    def spec(self) -> ToolSpec: ...

    @property
    def source(self) -> str: ...

    @property
    def timeout(self) -> float | None: ...

    def status(self, arguments: Mapping[str, Any]) -> str:
        """The live reply's status line while the call runs ("Reading example.com/…")."""
        ...

    async def run(self, arguments: dict[str, Any], ctx: ToolContext) -> Output: ...


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """How an MCP server is doing, for ``parley tools``, ``parley doctor`` and the logs."""

    name: str
    transport: Literal["stdio", "http"]
    up: bool
    tools: int  # tools offered from it (after the allow-list)
    error: str = ""  # why it is down; "" when up or not tried yet


class ToolSource(Protocol):
    """Tools that come and go with a server (an MCP server); the box asks for them each time."""

    def tools(self, taken: set[str]) -> list[Tool]:
        """The tools offered now, skipping (and adding to ``taken``) names already in use."""
        ...

    def status(self) -> ServerStatus: ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...
