"""Building the :class:`~bot.tools.registry.ToolBox` from the settings."""

from __future__ import annotations

import httpx

from bot.logs import RedactSecrets, secrets_of
from bot.settings import Settings
from bot.tools.base import ServerStatus, Tool, ToolSource
from bot.tools.images import GenerateImage, ImageMaker
from bot.tools.read_url import ReadUrl
from bot.tools.registry import ToolBox, ToolInfo

USER_AGENT = "Mozilla/5.0 (compatible; Parley/0.1; read_url)"


def build_toolbox(settings: Settings, images: ImageMaker | None, *, restart: bool = True) -> ToolBox:
    """The built-ins ``PARLEY_TOOLS`` names and a source per ``[mcp.NAME]`` table.

    ``images`` is the gateway (``generate_image`` calls it; None where no picture is made, as in
    ``parley tools``). ``restart=False`` tries each MCP
    server once and leaves it down if it fails (``parley tools``). The MCP SDK (about 27 MB
    and 1.7 s to import) is loaded only when a server is configured.
    """
    # One client for every outside fetch: it never carries a credential, and follows no
    # redirect itself (each hop is checked first).
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(settings.parley_fetch_timeout),
        follow_redirects=False,
        headers={"user-agent": USER_AGENT},
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=8),
    )
    built: dict[str, Tool] = {
        "read_url": ReadUrl(
            client,
            allow_hosts=settings.parley_fetch_allow_hosts,
            max_bytes=settings.parley_fetch_max_bytes,
            time_limit=settings.parley_fetch_timeout,
            max_chars=settings.parley_tool_result_chars,
        ),
        "generate_image": GenerateImage(
            images,
            client,
            model=settings.parley_image_model,
            default_size=settings.parley_image_size,
            timeout=settings.parley_image_timeout,
            allow_hosts=settings.parley_fetch_allow_hosts,
            fetch_timeout=settings.parley_fetch_timeout,
        ),
    }
    return ToolBox(
        [built[name] for name in settings.parley_tools],
        _mcp_sources(settings, restart=restart),
        timeout=settings.parley_tool_timeout,
        result_chars=settings.parley_tool_result_chars,
        redact=RedactSecrets(secrets_of(settings)).redact,
        closers=[client.aclose],
    )


def _mcp_sources(settings: Settings, *, restart: bool) -> list[ToolSource]:
    if not settings.parley_mcp:
        return []
    from bot.tools.mcp_server import McpServer
    from bot.tools.mcp_tools import McpSource

    return [
        McpSource(
            McpServer(name, options, connect_timeout=settings.parley_mcp_connect_timeout, restart=restart)
        )
        for name, options in settings.parley_mcp.items()
    ]


async def probe(settings: Settings) -> tuple[tuple[ToolInfo, ...], tuple[ServerStatus, ...]]:
    """Every tool offered and each MCP server's state, trying each server once (``parley tools``,
    ``parley doctor``); the servers are stopped again before this returns."""
    toolbox = build_toolbox(settings, None, restart=False)
    try:
        await toolbox.start()
        return toolbox.listing(), toolbox.servers()
    finally:
        await toolbox.aclose()
