"""The real slack_sdk / slack_bolt pointed at a :class:`FakeSlack`, for tests of the fake itself and
of code built on Bolt (Parley's own adapter builds these from its settings instead)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from .server import FakeSlack


def web_client(fs: FakeSlack, **kwargs: Any) -> AsyncWebClient:
    """An ``AsyncWebClient`` with the bot token, talking to the fake's Web API."""
    from slack_sdk.web.async_client import AsyncWebClient

    return AsyncWebClient(token=fs.bot_token, base_url=fs.api_url, **kwargs)


def bolt_app(fs: FakeSlack, **kwargs: Any) -> AsyncApp:
    """A Bolt app whose client talks to the fake and which checks the fake's signatures."""
    from slack_bolt.async_app import AsyncApp

    return AsyncApp(client=web_client(fs), signing_secret=fs.signing_secret, **kwargs)


async def socket_handler(fs: FakeSlack, app: AsyncApp, ping_interval: float = 10) -> AsyncSocketModeHandler:
    """Connect ``app`` over Socket Mode and return once the fake has the connection."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    handler = AsyncSocketModeHandler(app, fs.app_token, ping_interval=ping_interval)
    connects = fs.socket_connect_count
    await handler.connect_async()  # type: ignore[no-untyped-call]
    await fs.wait_for_connect_count(connects + 1)
    return handler


@asynccontextmanager
async def socket_mode(fs: FakeSlack, app: AsyncApp) -> AsyncIterator[AsyncSocketModeHandler]:
    """``app`` connected over Socket Mode for the block, disconnected afterwards."""
    handler = await socket_handler(fs, app)
    try:
        yield handler
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve an aiohttp app (e.g. Bolt's ``app.web_app()``) on 127.0.0.1; (runner, base URL)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"
