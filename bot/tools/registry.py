"""The tool box the core drives: what is offered, a status line per call, and running a call.

:meth:`ToolBox.run` never raises (cancellation aside: Stop cancels a running tool). An unknown
tool, arguments that are not a JSON object or do not fit the tool's schema, a timeout and a
tool's failure each become an error result whose content says what went wrong, so the model
can correct itself and the turn goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.providers.base import ToolCall, ToolResultPart, ToolSpec
from bot.tools.base import ServerStatus, Tool, ToolContext, ToolFailed, ToolOutcome, ToolSource
from bot.tools.output import error_result, result_for

log = logging.getLogger("parley.tools")

_ECHO_CHARS = 200  # of the model's own malformed arguments, quoted back to it


@dataclass(frozen=True, slots=True)
class ToolInfo:
    """One line of ``parley tools``: the offered name, where it comes from, what it does."""

    name: str
    source: str  # "built-in" or the MCP server's name
    summary: str


def check_arguments(schema: Mapping[str, Any], arguments: dict[str, Any]) -> str | None:
    """Why ``arguments`` do not fit ``schema`` (one sentence), or None when they do.

    A schema jsonschema cannot use (a server's mistake) is not held against the call: then only
    its ``required`` names are checked, and the server judges the rest.
    """
    from jsonschema import exceptions, validators

    try:
        validator = validators.validator_for(schema, default=validators.Draft202012Validator)(schema)
        error = exceptions.best_match(validator.iter_errors(arguments))
    except Exception:
        required = schema.get("required")
        missing = [n for n in required if n not in arguments] if isinstance(required, list) else []
        return f"{missing[0]!r} is a required property" if missing else None
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path)
    message = error.message if len(error.message) <= _ECHO_CHARS else error.message[:_ECHO_CHARS] + "…"
    return f"{where}: {message}" if where else message


class ToolBox:
    """The built-in tools switched on by ``PARLEY_TOOLS`` and every MCP server's tools.

    Build it with :func:`bot.tools.build_toolbox`, ``await start()`` it (MCP servers connect;
    one that cannot is reported and retried, never fatal) and ``await aclose()`` it at shutdown.
    """

    def __init__(
        self,
        builtins: Sequence[Tool],
        servers: Sequence[ToolSource] = (),
        *,
        timeout: float,
        result_chars: int,
        redact: Callable[[str], str] = str,
        closers: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        self._builtins = tuple(builtins)
        self._servers = tuple(servers)
        self._timeout = timeout
        self._result_chars = result_chars
        self._redact = redact
        self._closers = tuple(closers)

    # What is offered.
    def tools(self) -> dict[str, Tool]:
        """Every tool offered now, by offered name: built-ins first, then each server's in turn.
        A server that is restarting keeps its tools on offer (their calls fail meanwhile)."""
        found: dict[str, Tool] = {tool.spec.name: tool for tool in self._builtins}
        taken = set(found)
        for server in self._servers:
            for tool in server.tools(taken):
                found[tool.spec.name] = tool
        return found

    def specs(self) -> tuple[ToolSpec, ...]:
        return tuple(tool.spec for tool in self.tools().values())

    def listing(self) -> tuple[ToolInfo, ...]:
        return tuple(
            ToolInfo(name, tool.source, _summary(tool.spec.description))
            for name, tool in self.tools().items()
        )

    def servers(self) -> tuple[ServerStatus, ...]:
        return tuple(server.status() for server in self._servers)

    def status(self, call: ToolCall) -> str:
        """The status line while ``call`` runs, e.g. "Reading example.com/news"."""
        tool = self.tools().get(call.name)
        if tool is None:
            return "Using a tool"
        try:
            return tool.status(call.parsed() or {})
        except Exception:
            log.debug("status line for %s failed", call.name, exc_info=True)
            return f"Using {call.name}"

    # Running calls.
    async def run(self, call: ToolCall, ctx: ToolContext) -> ToolOutcome:
        began = time.monotonic()
        tool = self.tools().get(call.name)
        outcome = await self._run(tool, call, ctx) if tool is not None else self._unknown(call)
        log.info(
            "tool %s for %s in %s: %s in %.2f s",
            call.name,
            ctx.author.id,
            ctx.key,
            "error" if outcome.is_error else "ok",
            time.monotonic() - began,
            extra={
                "tool": call.name,
                "tool_source": tool.source if tool else "",
                "tool_error": outcome.is_error,
            },
        )
        return outcome

    def _unknown(self, call: ToolCall) -> ToolOutcome:
        offered = ", ".join(self.tools()) or "none"
        return _failed(call, f"There is no tool named {call.name[:64]!r}. The tools offered are: {offered}.")

    async def _run(self, tool: Tool, call: ToolCall, ctx: ToolContext) -> ToolOutcome:
        arguments = call.parsed()
        if arguments is None:
            quoted = call.arguments[:_ECHO_CHARS] + ("…" if len(call.arguments) > _ECHO_CHARS else "")
            return _failed(call, f"The arguments for {call.name} must be a JSON object; got {quoted!r}.")
        problem = check_arguments(tool.spec.parameters, arguments)
        if problem is not None:
            return _failed(call, f"The arguments for {call.name} do not fit its schema: {problem}.")
        limit = min(t for t in (tool.timeout or self._timeout, ctx.timeout) if t is not None)
        try:
            async with asyncio.timeout(limit) as deadline:
                output = await tool.run(arguments, ctx)
        except ToolFailed as exc:
            return _failed(call, self._redact(exc.sentence))
        except TimeoutError:
            if not deadline.expired():  # a time limit of the tool's own
                log.warning("tool %s timed out inside", call.name, exc_info=True)
                return _failed(call, f"{call.name} timed out.")
            return _failed(call, f"{call.name} did not finish within {limit:g} s, so it was stopped.")
        except Exception as exc:
            log.exception("tool %s failed", call.name)
            return _failed(call, f"{call.name} failed unexpectedly ({type(exc).__name__}).")
        result = result_for(call, output, limit=self._result_chars, redact=self._redact)
        return ToolOutcome(result=result, files=output.files, usage=output.usage)

    # Lifecycle.
    async def start(self, *, within: float | None = None) -> None:
        """Connect every MCP server (at once); return when each is up or has failed once, or
        after ``within`` seconds: a slow server then joins when it is ready."""
        waits = [asyncio.ensure_future(server.start()) for server in self._servers]
        if not waits:
            return
        _, pending = await asyncio.wait(waits, timeout=within)
        for wait in pending:
            wait.cancel()  # only the waiting: the server's own task goes on

    async def aclose(self) -> None:
        await asyncio.gather(*(server.aclose() for server in self._servers), return_exceptions=True)
        for close in self._closers:
            await close()


def _failed(call: ToolCall, sentence: str) -> ToolOutcome:
    result: ToolResultPart = error_result(call, sentence)
    return ToolOutcome(result=result)


def _summary(description: str) -> str:
    line = description.strip().splitlines()[0] if description.strip() else ""
    return line if len(line) <= 100 else line[:99] + "…"
