"""One configured MCP server: its connection, kept alive in one task, restarted when it dies.

The SDK's transports and :class:`~mcp.ClientSession` are anyio context managers whose task
groups must be entered and left by the same task, so each server has one supervising task that
owns them: it connects, lists the tools, then waits until Parley stops or the connection is
lost, and leaves every context there. Calls from other tasks only send requests on the open
session. A server that cannot be reached is reported (:meth:`McpServer.status`) and retried
with a bounded backoff; meanwhile its calls get an error result and the bot answers on.

A stdio server gets only its configured ``env``, over the SDK's small safe default (``PATH``,
``HOME``, the user's name, shell and terminal), never Parley's own environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from typing import Any, TextIO

import anyio
import httpx2
import mcp_types
from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.message import SessionMessage

from bot.logs import mask
from bot.options import McpServerOptions
from bot.tools.base import ServerStatus

log = logging.getLogger("parley.tools")

CLIENT_INFO = mcp_types.Implementation(name="parley", version="0.1")
BACKOFF_FIRST = 0.5  # seconds before the first restart
BACKOFF_CAP = 30.0
STABLE_AFTER = 30.0  # a connection that lasted this long starts the backoff afresh
_STOP_GRACE = 8.0  # for a stdio server to exit (the SDK waits 2 s, then TERM, 2 s, then KILL)
_LIST_PAGES = 20  # tools/list pages read, at most


class CallFailed(Exception):
    """A call the server could not answer. ``from_server``: the text is the server's own (data)."""

    def __init__(self, text: str, *, from_server: bool = False) -> None:
        super().__init__(text)
        self.text = text
        self.from_server = from_server


class _Lost(Exception):
    """The connection ended while the server was in use."""


def describe(exc: BaseException) -> str:
    """One line for a failure to connect; an exception group is described by its first leaf."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, _Lost):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, FileNotFoundError):
        return f"command not found ({exc.filename or exc})"
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


class McpServer:
    """A server from an ``[mcp.NAME]`` table. ``restart=False`` tries once (``parley tools``)."""

    def __init__(
        self,
        name: str,
        options: McpServerOptions,
        *,
        connect_timeout: float,
        restart: bool = True,
        errlog: TextIO | None = None,
    ) -> None:
        self.name = name
        self.options = options
        self._connect_timeout = connect_timeout
        self._restart = restart
        self._errlog = errlog
        self._session: ClientSession | None = None
        self._listed: tuple[mcp_types.Tool, ...] = ()
        self._error = ""
        self._closing = False
        self._wake = asyncio.Event()  # stop, or the connection was lost
        self._lost_reason = ""
        self._tried = asyncio.Event()  # the first attempt ended (up or failed)
        self._up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._secrets = sorted(options.secrets(), key=len, reverse=True)

    def _mask(self, text: str) -> str:
        """``text`` without this server's credentials (an error may quote its URL or headers)."""
        return mask(text, self._secrets)

    # What the registry reads.
    @property
    def listed(self) -> tuple[mcp_types.Tool, ...]:
        """The server's tools as last listed (kept while it restarts), allow-list applied."""
        allowed = self.options.tools
        return tuple(t for t in self._listed if allowed is None or t.name in allowed)

    def status(self) -> ServerStatus:
        return ServerStatus(
            self.name, self.options.transport, self._session is not None, len(self.listed), self._error
        )

    # Lifecycle.
    async def start(self) -> None:
        """Start the supervising task; return once the first attempt has succeeded or failed."""
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name=f"mcp:{self.name}")
        await self._tried.wait()

    async def wait_up(self, within: float) -> bool:
        try:
            await asyncio.wait_for(self._up.wait(), within)
        except TimeoutError:
            return False
        return True

    async def aclose(self) -> None:
        self._closing = True
        self._wake.set()
        task, self._task = self._task, None
        if task is None:
            return
        if self._session is None:
            task.cancel()  # still connecting, or waiting to retry: nothing to wind down
        try:
            await asyncio.wait_for(asyncio.shield(task), _STOP_GRACE)
        except TimeoutError:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    # Calls.
    async def call(self, tool: str, arguments: dict[str, Any]) -> mcp_types.CallToolResult:
        session = self._session
        if session is None:
            why = f" ({self._error})" if self._error else ""
            raise CallFailed(f"The {self.name} server is not running{why}; Parley keeps trying to reach it.")
        try:
            return await session.call_tool(tool, arguments)
        except MCPError as exc:
            if exc.code == mcp_types.CONNECTION_CLOSED:
                self._lose("the connection closed during a call")
                again = "restarting" if self.options.transport == "stdio" else "reconnecting to"
                raise CallFailed(
                    f"The {self.name} server stopped while answering; Parley is {again} it."
                ) from None
            raise CallFailed(exc.message, from_server=True) from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._lose("the connection closed during a call")
            raise CallFailed(
                f"The {self.name} server's connection closed; Parley is starting it again."
            ) from None
        except (RuntimeError, ValueError) as exc:  # an answer that breaks the tool's own schema
            raise CallFailed(
                f"The {self.name} server's answer could not be used: {exc}", from_server=True
            ) from None

    # The supervising task.
    def _lose(self, reason: str) -> None:
        if self._session is not None and not self._wake.is_set():
            self._lost_reason = reason
            # Later calls are refused at once; the supervising task winds the session down.
            self._session = None
            self._wake.set()

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        delay = BACKOFF_FIRST
        while not self._closing:
            began = loop.time()
            try:
                await self._connect_and_serve()
            except Exception as exc:
                error = self._mask(describe(exc))
                # A one-off probe (parley tools, doctor) reports the failure itself; a server that
                # stays down is reported once, not at every retry.
                loud = self._restart and error != self._error
                log.log(logging.WARNING if loud else logging.DEBUG, "MCP server %s: %s", self.name, error)
                self._error = error
            finally:
                self._session = None
                self._up.clear()
                self._tried.set()
            if self._closing or not self._restart:
                return
            if loop.time() - began >= STABLE_AFTER:
                delay = BACKOFF_FIRST
            log.info("MCP server %s: starting again in %.1f s", self.name, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped(), delay)
            delay = min(delay * 2, BACKOFF_CAP)

    async def _stopped(self) -> None:
        while not self._closing:
            self._wake.clear()
            await self._wake.wait()

    async def _connect_and_serve(self) -> None:
        self._wake.clear()
        self._lost_reason = ""
        async with contextlib.AsyncExitStack() as stack:
            read, write = await self._open(stack)
            session = await stack.enter_async_context(ClientSession(read, write, client_info=CLIENT_INFO))
            with anyio.fail_after(self._connect_timeout):
                await session.initialize()
                listed = await _list_tools(session)
            self._listed, self._error = listed, ""
            self._session = session
            self._up.set()
            self._tried.set()
            log.info("MCP server %s: %d tools", self.name, len(self.listed))
            try:
                await self._wake.wait()
            finally:
                # Calls from here on are told the server is down, not sent into a closing session.
                self._session = None
                self._up.clear()
            if not self._closing:
                raise _Lost(f"stopped: {self._lost_reason or 'the connection ended'}")

    async def _open(self, stack: contextlib.AsyncExitStack) -> tuple[Any, Any]:
        options = self.options
        if options.url is not None:
            headers = {k: v.get_secret_value() for k, v in options.headers.items()}
            client = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=300.0))
            await stack.enter_async_context(client)
            return await stack.enter_async_context(streamable_http_client(options.url, http_client=client))
        params = StdioServerParameters(
            command=options.command or "",
            args=list(options.args),
            env={k: v.get_secret_value() for k, v in options.env.items()},
        )
        read, write = await stack.enter_async_context(stdio_client(params, errlog=self._errlog or sys.stderr))
        return await self._watch(stack, read), write

    async def _watch(self, stack: contextlib.AsyncExitStack, read: Any) -> Any:
        """Relay the server's messages so its exit is seen at once, not at the next call."""
        send, receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        group = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(group.cancel_scope.cancel)

        async def relay() -> None:
            with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                async with send:
                    async for item in read:
                        await send.send(item)
            self._lose("the server process exited")

        group.start_soon(relay)
        return receive


async def _list_tools(session: ClientSession) -> tuple[mcp_types.Tool, ...]:
    tools: list[mcp_types.Tool] = []
    params: mcp_types.PaginatedRequestParams | None = None
    for _ in range(_LIST_PAGES):
        page = await session.list_tools(params=params)
        tools.extend(page.tools)
        if not page.next_cursor:
            break
        params = mcp_types.PaginatedRequestParams(cursor=page.next_cursor)
    return tuple(tools)
