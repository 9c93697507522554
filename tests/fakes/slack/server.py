"""The :class:`FakeSlack` server: Web API, Socket Mode, HTTP event delivery, files, timelines.

Its layers, bottom up: :mod:`.workspace` (state and settings), :mod:`.sending` (delivering
events to one or several app instances), :mod:`.acting` (what users post and open),
:mod:`.interacting` (clicks, shortcuts, modals); this module adds the HTTP server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any, Self, TypeVar

import aiohttp
from aiohttp import web

from ..loopback import LoopbackServer
from .delivery import SocketHub
from .files_api import upload_endpoint
from .interacting import Interacting
from .views import OpenedView
from .web_api import WebApi
from .workspace import FileDownload, ResponseUrlPost

T = TypeVar("T")


class FakeSlack(Interacting, LoopbackServer):
    """A loopback Slack. See the package docstring for usage."""

    thread_name = "fake-slack"

    def __init__(self, **options: Any) -> None:
        """``options`` are the workspace's (:class:`.workspace.Workspace`: tokens, scopes, ack and retry
        timings, ``events_url``…), named and defaulted there only."""
        super().__init__(**options)
        self.triggers: dict[str, tuple[float, str]] = {}
        self.exchanged_triggers: set[str] = set()
        self.views: dict[str, OpenedView] = {}
        self._response_seq = 0
        self.hub = SocketHub(self)
        self.web_api = WebApi(self)
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> Self:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self.web_api.handle)
        app.router.add_get("/socket", self.hub.handle)
        app.router.add_get("/files-pri/{path:.+}", self._download)
        app.router.add_get("/signin", self._signin)
        app.router.add_post("/response-url/{rid}", self._response_url_endpoint)
        app.router.add_post("/upload/v1/{ticket}", self._upload)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.http = aiohttp.ClientSession()
        self._loop = asyncio.get_running_loop()
        return self

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.hub.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if hasattr(self, "http"):
            await self.http.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run one of the fake's coroutines on its loop from another thread (``in_thread`` mode)."""
        if self._loop is None:
            raise RuntimeError("fake not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # ------------------------------------------------------------------ HTTP endpoints

    async def _download(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        head = path.split("/", 1)[0]
        fid = head.split("-", 1)[1] if "-" in head else ""
        f = self.files.get(fid)
        auth = request.headers.get("Authorization", "")
        authorized = (
            auth == f"Bearer {self.bot_token}" and "files:read" in self.scopes and not self.auth_error
        )
        status = (
            404 if f is None else 200 if authorized else 302 if self.file_auth_failure == "redirect" else 403
        )
        self.file_downloads.append(FileDownload(self.now(), path, authorized, status))
        if f is None:
            return web.Response(status=404, text="Not Found")
        if fid in self.file_redirects:
            raise web.HTTPFound(self.file_redirects[fid])
        if not authorized:
            if status == 302:
                raise web.HTTPFound(f"/signin?redir=%2Ffiles-pri%2F{path}")
            return web.Response(status=403, text="Forbidden")
        filename = path.rsplit("/", 1)[-1]
        return web.Response(
            body=f.content,
            content_type=f.mimetype,
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    async def _signin(self, request: web.Request) -> web.Response:
        html = (
            "<!DOCTYPE html><html><head><title>Sign in | Slack</title></head>"
            "<body>Sign in to Slack</body></html>"
        )
        return web.Response(text=html, content_type="text/html")

    async def _response_url_endpoint(self, request: web.Request) -> web.Response:
        try:
            payload = await request.json()
        except (ValueError, json.JSONDecodeError):
            payload = {"raw": await request.text()}
        self.responses.append(ResponseUrlPost(self.now(), str(request.url), payload))
        return web.json_response({"ok": True})

    async def _upload(self, request: web.Request) -> web.Response:
        return await upload_endpoint(self, request)
