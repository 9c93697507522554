"""MCP servers through the real SDK: a stdio server Parley starts and a streamable-HTTP one on
127.0.0.1; listing, calling, the allow-list, a server that dies and is restarted, servers that
cannot be reached, Stop and timeouts during a slow tool, and stopping with Parley."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.providers.base import ToolCall
from bot.settings import load_settings
from bot.tools import ToolBox, ToolContext, build_toolbox
from bot.tools.output import UNTRUSTED_NOTE
from bot.types import Author, ConversationKey
from tests.fakes.mcp_server import McpHttpServer

SERVER = Path(__file__).resolve().parent / "fakes" / "mcp_server.py"
CTX = ToolContext(ConversationKey("slack", "T1", "C1", "171.1"), Author("U1", "Ada"))
STDIO = {"command": sys.executable, "args": [str(SERVER)], "env": {"DOCS_TOKEN": "docs-token-0451"}}
# What the SDK passes on from Parley's environment besides a server's own env (and what Python
# itself adds at start-up).
SAFE_DEFAULTS = {"HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LC_CTYPE"}


def toml(servers: dict[str, dict[str, Any]]) -> str:
    lines = []
    for name, table in servers.items():
        lines.append(f"[mcp.{name}]")
        for key, value in table.items():
            if isinstance(value, dict):
                inner = ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items())
                lines.append(f"{key} = {{ {inner} }}")
            else:
                lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Callable[..., ToolBox]]:
    opened: list[ToolBox] = []

    def build(servers: dict[str, dict[str, Any]], restart: bool = True, **env: str) -> ToolBox:
        (tmp_path / "parley.toml").write_text(toml(servers))
        settings = load_settings(
            {"APICORE_API_KEY": "parley-key-9f8e7d", "PARLEY_TOOLS": "none", **env}, cwd=tmp_path
        )
        tools = build_toolbox(settings, None, restart=restart)
        opened.append(tools)
        return tools

    yield build
    for tools in opened:
        await tools.aclose()


def call(name: str, arguments: dict[str, Any] | None = None) -> ToolCall:
    return ToolCall(f"call_{name}", name, json.dumps(arguments or {}))


async def test_a_stdio_server_is_started_listed_and_called(
    make: Callable[..., ToolBox], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APICORE_API_KEY", "parley-key-9f8e7d")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-not-for-tools")
    tools = make({"docs": STDIO})
    await tools.start()
    (status,) = tools.servers()
    assert (status.name, status.transport, status.up, status.error) == ("docs", "stdio", True, "")

    specs = {spec.name: spec for spec in tools.specs()}
    assert set(specs) == {
        "docs__search", "docs__slow", "docs__picture", "docs__broken", "docs__environment",
        "docs__pid", "docs__crash", "docs__lookup_page",
    }  # fmt: skip
    search = specs["docs__search"]
    assert search.description == "Search the team's documents and return the best matches."
    assert search.parameters["required"] == ["query"]
    assert search.parameters["properties"]["limit"] == {"default": 3, "title": "Limit", "type": "integer"}
    assert [i.source for i in tools.listing()] == ["docs"] * 8
    assert tools.status(call("docs__search")) == "Asking docs: search"

    found = await tools.run(call("docs__search", {"query": "tides", "limit": 2}), CTX)
    assert not found.is_error
    assert found.result.content.startswith('<tool_output source="docs: search">')
    assert (
        "1. A document about tides (result 1 of 2)\n2. A document about tides (result 2 of 2)"
        in found.result.content
    )

    dotted = await tools.run(call("docs__lookup_page", {"title": "Rota"}), CTX)
    assert "The page Rota says hello." in dotted.result.content

    picture = await tools.run(call("docs__picture"), CTX)
    assert "Here is the chart.\n\n[an image (image/png), 34 KB: not shown]" in picture.result.content

    # The server sees its own env and the SDK's safe defaults, never Parley's secrets.
    seen = (await tools.run(call("docs__environment"), CTX)).result.content.split("\n\n", 1)[1]
    names = set(seen.removesuffix("\n</tool_output>").split())
    assert "DOCS_TOKEN" in names and "PATH" in names
    assert names - {"DOCS_TOKEN"} <= SAFE_DEFAULTS


async def test_a_tool_error_from_the_server_is_an_error_result_kept_as_data(
    make: Callable[..., ToolBox],
) -> None:
    tools = make({"docs": STDIO})
    await tools.start()
    outcome = await tools.run(call("docs__broken"), CTX)
    assert outcome.is_error
    assert UNTRUSTED_NOTE in outcome.result.content  # the server's words stay delimited
    assert "the index is being rebuilt" in outcome.result.content
    wrong = await tools.run(call("docs__search", {"limit": 1}), CTX)
    assert wrong.is_error and "'query' is a required property" in wrong.result.content


async def test_the_allow_list_limits_what_is_offered(make: Callable[..., ToolBox]) -> None:
    tools = make({"docs": {**STDIO, "tools": ["search", "lookup.page"]}})
    await tools.start()
    assert [s.name for s in tools.specs()] == ["docs__search", "docs__lookup_page"]
    denied = await tools.run(call("docs__environment"), CTX)
    assert denied.is_error and denied.result.content.startswith("There is no tool named 'docs__environment'.")
    assert tools.servers()[0].tools == 2


async def test_a_streamable_http_server_with_headers(make: Callable[..., ToolBox]) -> None:
    async with McpHttpServer() as server:
        tools = make({"tracker": {"url": server.url, "headers": {"Authorization": "Bearer trk-5150"}}})
        await tools.start()
        (status,) = tools.servers()
        assert (status.transport, status.up) == ("http", True)
        outcome = await tools.run(call("tracker__search", {"query": "login bug", "limit": 1}), CTX)
        assert "1. A document about login bug (result 1 of 1)" in outcome.result.content
        assert server.headers and all(h.get("authorization") == "Bearer trk-5150" for h in server.headers)
        await tools.aclose()


async def test_a_stdio_server_that_dies_is_restarted(make: Callable[..., ToolBox]) -> None:
    tools = make({"docs": STDIO})
    await tools.start()
    first_pid = (await tools.run(call("docs__pid"), CTX)).result.content

    crashed = await tools.run(call("docs__crash"), CTX)
    assert crashed.is_error
    assert crashed.result.content == "The docs server stopped while answering; Parley is restarting it."
    # Its tools stay on offer while it restarts; a call meanwhile gets a sentence, not a hang.
    assert "docs__search" in {s.name for s in tools.specs()}
    meanwhile = await tools.run(call("docs__search", {"query": "x"}), CTX)
    assert meanwhile.is_error and meanwhile.result.content.startswith("The docs server is not running")

    source = tools._servers[0]
    assert await source.server.wait_up(30)  # type: ignore[attr-defined]
    again = await tools.run(call("docs__pid"), CTX)
    assert not again.is_error and again.result.content != first_pid


async def test_unreachable_servers_are_reported_and_skipped(make: Callable[..., ToolBox]) -> None:
    tools = make(
        {
            "gone": {"url": "http://127.0.0.1:9/mcp"},
            "nocmd": {"command": "/nonexistent/mcp-server"},
            "docs": STDIO,
        },
        restart=False,
        PARLEY_MCP_CONNECT_TIMEOUT="10",
    )
    await tools.start()
    status = {s.name: s for s in tools.servers()}
    assert status["docs"].up and not status["gone"].up and not status["nocmd"].up
    assert "ConnectError" in status["gone"].error
    assert status["nocmd"].error == "command not found (/nonexistent/mcp-server)"
    assert {s.name.split("__")[0] for s in tools.specs()} == {"docs"}


async def test_stop_cancels_a_slow_tool_and_the_server_goes_on(make: Callable[..., ToolBox]) -> None:
    tools = make({"docs": STDIO})
    await tools.start()
    task = asyncio.create_task(tools.run(call("docs__slow", {"seconds": 30}), CTX))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    after = await tools.run(call("docs__search", {"query": "still here"}), CTX)
    assert not after.is_error


async def test_a_slow_tool_times_out(make: Callable[..., ToolBox]) -> None:
    tools = make({"docs": STDIO}, PARLEY_TOOL_TIMEOUT="0.5")
    await tools.start()
    outcome = await tools.run(call("docs__slow", {"seconds": 10}), CTX)
    assert outcome.result.content == "docs__slow did not finish within 0.5 s, so it was stopped."


async def test_a_stdio_server_stops_with_parley(make: Callable[..., ToolBox]) -> None:
    tools = make({"docs": STDIO})
    await tools.start()
    pid = int((await tools.run(call("docs__pid"), CTX)).result.content.split("\n\n")[1].split("\n")[0])
    await tools.aclose()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_calls_of_one_step_run_at_once(make: Callable[..., ToolBox]) -> None:
    tools = make({"docs": STDIO})
    await tools.start()
    loop = asyncio.get_running_loop()
    began = loop.time()
    outcomes = await asyncio.gather(*(tools.run(call("docs__slow", {"seconds": 0.8}), CTX) for _ in range(3)))
    assert [o.is_error for o in outcomes] == [False, False, False]
    assert loop.time() - began < 2.0  # not 3 x 0.8 s one after another
