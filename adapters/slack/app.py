"""The Slack adapter: a slack-bolt ``AsyncApp`` in Socket Mode or behind Parley's HTTP server.

Socket Mode when ``SLACK_APP_TOKEN`` is set; otherwise Slack posts events and interactions to
``POST /slack/events`` on Parley's own aiohttp server, where Bolt checks each request's signature
and age before anything else happens. The Web API root is ``SLACK_API_URL`` in both modes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.agent import Agent
from adapters.slack.commands import Interactions
from adapters.slack.events import MessageEvents
from adapters.slack.feedback import FeedbackActions
from adapters.slack.surface import SlackBudgets
from adapters.slack.workspace import Workspace
from bot.context import AdapterContext
from bot.errors import UserFacingError
from bot.settings import SettingsError

log = logging.getLogger("parley.slack")

EVENTS_PATH = "/slack/events"


class SlackAdapter:
    name = "slack"

    def __init__(
        self,
        ctx: AdapterContext,
        *,
        budgets: SlackBudgets | None = None,
        stream_max_age: float | None = None,
        ping_interval: float = 10.0,
        drain_timeout: float = 10.0,
        connect_timeout: float = 30.0,
    ) -> None:
        settings = ctx.settings
        if settings.slack_bot_token is None:
            raise SettingsError(["SLACK_BOT_TOKEN: not set"])
        self._app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else None
        secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
        if self._app_token is None and not secret:
            raise SettingsError(
                [
                    "SLACK_SIGNING_SECRET: needed for Slack's HTTP mode (or set SLACK_APP_TOKEN to use "
                    "Socket Mode)"
                ]
            )
        self.mode = "socket" if self._app_token else "http"
        self.client = AsyncWebClient(
            token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
        )
        self.ws = Workspace(ctx, self.client, budgets=budgets, stream_max_age=stream_max_age)
        bolt_log = logging.getLogger("parley.slack.bolt")
        if _quiet_token_warning not in bolt_log.filters:
            bolt_log.addFilter(_quiet_token_warning)
        self.app = AsyncApp(
            client=self.client,
            signing_secret=secret or "",
            # Socket Mode requests come over the authenticated websocket, unsigned.
            request_verification_enabled=self.mode == "http",
            logger=bolt_log,
        )
        self.app.error(self._on_error)
        self.agent = Agent(self.ws)
        self.agent.register(self.app)
        self.events = MessageEvents(self.ws, self.agent)
        self.events.register(self.app)
        # Several instances: a message another one took and left waiting is rebuilt here.
        ctx.revive_with("slack", self.events.rebuild)
        self.interactions = Interactions(self.ws)
        self.interactions.register(self.app)
        self.feedback = FeedbackActions(self.ws)
        self.feedback.register(self.app)
        self._ping_interval = ping_interval
        self._drain_timeout = drain_timeout
        self._connect_timeout = connect_timeout
        self._socket: AsyncSocketModeHandler | None = None
        self._authed = False
        self._intake_open = True
        if self.mode == "http":
            ctx.add_route("POST", EVENTS_PATH, self.handle_http)

    # -- the Adapter protocol -------------------------------------------------------------------

    async def start(self) -> None:
        identity = await self.ws.identity()
        self._authed = True
        if self.mode == "socket":
            self._socket = await self._connect_socket()
        # Replies a crashed Parley left streaming get their "interrupted" note now.
        self.ws.spawn(self._recover(), "slack recovery")
        log.info(
            "Slack: %s mode as %s in %s (scopes: %s)",
            self.mode,
            identity.user_id,
            identity.team_id,
            ",".join(sorted(identity.scopes)) or "unknown",
        )

    async def _connect_socket(self) -> AsyncSocketModeHandler:
        assert self._app_token is not None
        # slack_sdk retries a failing connection forever; asking for the websocket URL first
        # turns a wrong app token into one clear error instead of a silent loop.
        try:
            url = (await self.client.apps_connections_open(app_token=self._app_token))["url"]
        except SlackApiError as exc:
            error = exc.response.get("error") or exc.response.status_code
            raise UserFacingError(f"SLACK_APP_TOKEN: Slack refused Socket Mode ({error})") from None
        except (OSError, TimeoutError) as exc:
            api = self.ws.settings.slack_api_url
            raise UserFacingError(
                f"cannot reach Slack at {api} ({type(exc).__name__}): check SLACK_API_URL"
            ) from None
        handler = AsyncSocketModeHandler(
            self.app,
            self._app_token,
            logger=logging.getLogger("parley.slack.socket"),
            ping_interval=self._ping_interval,
        )
        handler.client.wss_uri = url  # the URL just issued serves the first connection
        try:
            async with asyncio.timeout(self._connect_timeout):
                await _typed(handler.connect_async)()
        except TimeoutError:
            await _typed(handler.close_async)()
            raise UserFacingError(
                f"Slack Socket Mode: no connection within {self._connect_timeout:.0f} s ({url.split('?')[0]})"
            ) from None
        return handler

    async def _recover(self) -> None:
        await self.ws.ctx.recover("slack", self.ws.surface_for)

    async def stop_intake(self) -> None:
        """Take no new events; replies in flight go on (the core drains them next)."""
        self._intake_open = False
        if self._socket is not None:
            await _typed(self._socket.close_async)()
            self._socket = None

    async def stop(self) -> None:
        await self.stop_intake()
        self._authed = False
        await self.ws.drain(self._drain_timeout)
        await self.ws.aclose()

    @property
    def connected(self) -> bool:
        if self.mode == "http":
            return self._authed
        client = self._socket.client if self._socket is not None else None
        session = getattr(client, "current_session", None)
        return bool(
            client is not None
            and not client.closed
            and not client.stale
            and session is not None
            and not session.closed
        )

    # -- HTTP mode --------------------------------------------------------------------------------

    async def handle_http(self, request: web.Request) -> web.Response:
        """``POST /slack/events``: Bolt verifies the signature, acks, and runs the listeners."""
        if not self._intake_open:
            # Shutting down: without an ack Slack retries, reaching another instance or this one
            # after its restart, so the event is not lost.
            return web.Response(status=503, text="shutting down")
        try:
            bolt_request = await to_bolt_request(request)
        except Exception as exc:
            # Bolt reads ids out of the body before anything else; a body it chokes on (a number
            # where an id should be…) is refused here, before any work, signed or not.
            log.warning("Slack request refused: Bolt could not read it (%s)", type(exc).__name__)
            return web.Response(status=400, text="bad request")
        if not _well_formed(bolt_request.body):
            log.warning("Slack request refused: not the shape of a Slack payload")
            return web.Response(status=400, text="bad request")
        response = await self.app.async_dispatch(bolt_request)
        return await to_aiohttp_response(response)

    async def _on_error(self, error: Exception, body: dict[str, Any]) -> None:
        log.error("Slack listener failed on %s", body.get("type") or "a request", exc_info=error)


def _well_formed(body: Any) -> bool:
    """The shape Bolt's own middleware takes for granted (it fails on ``"event": null``)."""
    if not isinstance(body, dict):
        return False
    event = body.get("event")
    if "event" in body and not (isinstance(event, dict) and isinstance(event.get("type"), str)):
        return False
    return all(isinstance(body.get(key, ""), str) for key in ("type", "team_id", "event_id"))


def _typed(method: Any) -> Callable[[], Awaitable[None]]:
    """One of slack_sdk's untyped Socket Mode calls, with the type it has."""
    return cast(Callable[[], Awaitable[None]], method)


def _quiet_token_warning(record: logging.LogRecord) -> bool:
    # Bolt also reads SLACK_BOT_TOKEN from the environment and warns that the client's token wins:
    # both are the same token here.
    return not record.getMessage().startswith("As you gave `client` as well")
