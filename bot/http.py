"""Parley's HTTP server for ``parley run``: health, metrics, and routes adapters mount (Slack events)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from bot.plugins import Adapter
from bot.runtime import Runtime

log = logging.getLogger("parley.http")

PING_TIMEOUT = 3.0  # seconds; the container's HEALTHCHECK waits 4


class HttpServer:
    def __init__(self, runtime: Runtime, adapters: Sequence[Adapter]) -> None:
        self.runtime = runtime
        self.adapters = adapters
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=2 * 1024 * 1024)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        for method, path, handler in self.runtime.http_routes:
            app.router.add_route(method, path, handler)
        return app

    async def start(self, host: str, port: int) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise RuntimeError(
                f"PARLEY_HTTP_PORT: cannot listen on {host}:{port} ({exc.strerror or exc})"
            ) from None
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port
        log.info("HTTP server on http://%s:%s", host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        checks: dict[str, Any] = {}
        healthy = True
        try:
            # A database that accepts connections and never answers must still make this a
            # quick 503: orchestrators give up on a health probe after a few seconds.
            await asyncio.wait_for(self.runtime.store.ping(), PING_TIMEOUT)
            checks["database"] = "ok"
        except TimeoutError:
            checks["database"] = f"unreachable: no answer within {PING_TIMEOUT:.0f} s"
            healthy = False
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
            healthy = False
        for adapter in self.adapters:
            connected = adapter.connected
            checks[adapter.name] = "connected" if connected else "disconnected"
            healthy = healthy and connected
        service = self.runtime.service
        instance = {"instance": self.runtime.settings.parley_instance_id or service.instance_id}
        instance["process"] = service.instance_id
        body = {"status": "ok" if healthy else "unavailable", **instance, **checks}
        return web.json_response(body, status=200 if healthy else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        body, content_type = self.runtime.metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})
