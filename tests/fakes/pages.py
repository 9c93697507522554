"""A loopback web server for ``read_url`` and picture URLs: an article wrapped in navigation
boilerplate, redirects, a slow page, a huge page, a PDF, a text file, a PNG, and a record of
every request it received (so a test can show that a refused fetch never reached it).

    async with PageServer() as pages:
        pages.url                       # http://127.0.0.1:<port>
        pages.paths                     # the paths requested, in order

Routes: ``/article`` (HTML), ``/redirect?to=URL`` (302), ``/slow?seconds=S``, ``/huge`` (streams
``huge_bytes`` without a declared length), ``/report.pdf``, ``/notes.txt``, ``/picture.png``
(``picture`` bytes, settable), ``/blob.bin`` (bytes of no known kind), ``/missing`` (404),
``/secret`` (what an attacker would want: must never be requested), ``/files/{name}`` (what a
test put in ``pages.files[name] = (bytes, content_type)``: documents, odd pages).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Self

from aiohttp import web

from .loopback import LoopbackServer

ARTICLE_TITLE = "Tidal power in the Severn estuary"
ARTICLE_SENTENCES = (
    "The Severn estuary has the second highest tidal range in the world, at up to fourteen metres.",
    "Engineers have proposed barrages and lagoons there for more than a century.",
    "A lagoon at Swansea Bay was designed to run for one hundred and twenty years.",
    "Critics point to the cost per megawatt hour and to the effect on wading birds.",
)
# Boilerplate every page of the site repeats: none of it may reach the model.
NAV_WORDS = ("Subscribe to our newsletter", "Accept all cookies", "Privacy policy", "Careers at Estuary News")
TEXT_BODY = "Plain notes: the meeting moved to Thursday at ten.\nBring the budget sheet.\n"
PDF_SENTENCE = "The PDF says the harbour opens in May."


def article_html() -> str:
    paragraphs = "\n".join(
        f"<p>{sentence} {'Further detail follows in the next section of this report. ' * 3}</p>"
        for sentence in ARTICLE_SENTENCES
    )
    links = "".join(f'<li><a href="/section/{i}">Section {i}</a></li>' for i in range(1, 13))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{ARTICLE_TITLE} | Estuary News</title>
<script>window.analytics = {{track: function () {{}}}};</script></head>
<body>
<header><nav class="menu"><ul>{links}</ul><a href="/subscribe">{NAV_WORDS[0]}</a></nav></header>
<div class="cookie-banner" id="cookies"><p>{NAV_WORDS[1]} to get the best experience.</p>
<button>OK</button></div>
<main><article>
<h1>{ARTICLE_TITLE}</h1>
<p class="byline">By Rhiannon Price, 3 March 2026</p>
{paragraphs}
</article></main>
<aside class="sidebar"><h3>Most read</h3><ul>{links}</ul></aside>
<footer><ul><li><a href="/privacy">{NAV_WORDS[2]}</a></li><li><a href="/jobs">{NAV_WORDS[3]}</a></li>
</ul><p>© 2026 Estuary News Ltd</p></footer>
</body></html>
"""


def tiny_png() -> bytes:
    """A valid 1x1 PNG, made without an imaging library."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x10\x80\xf0")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@dataclass
class PageRequest:
    path: str
    query: str
    host: str
    headers: dict[str, str]
    t_received: float


class PageServer(LoopbackServer):
    thread_name = "fake-pages"

    def __init__(self, *, huge_bytes: int = 6 * 1024 * 1024, pdf: bytes | None = None) -> None:
        self.huge_bytes = huge_bytes
        self.pdf = pdf
        self.picture = tiny_png()
        self.files: dict[str, tuple[bytes, str]] = {}
        self.requests: list[PageRequest] = []
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.port = 0

    @property
    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    async def start(self) -> Self:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/article", self._article)
        app.router.add_get("/redirect", self._redirect)
        app.router.add_get("/slow", self._slow)
        app.router.add_get("/huge", self._huge)
        app.router.add_get("/report.pdf", self._pdf)
        app.router.add_get("/notes.txt", self._text)
        app.router.add_get("/picture.png", self._picture)
        app.router.add_get("/blob.bin", self._blob)
        app.router.add_get("/secret", self._secret)
        app.router.add_get("/files/{name}", self._file)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _record(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        headers = dict(request.headers)
        self.requests.append(
            PageRequest(request.path, request.query_string, request.host, headers, time.monotonic())
        )
        return await handler(request)

    async def _article(self, request: web.Request) -> web.Response:
        return web.Response(text=article_html(), content_type="text/html", charset="utf-8")

    async def _redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def _slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(min(float(request.query.get("seconds", "5")), 30.0))
        return web.Response(text="<html><body><p>Finally.</p></body></html>", content_type="text/html")

    async def _huge(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        line = b"all work and no play makes a very long page\n" * 1000
        sent = 0
        while sent < self.huge_bytes:
            await response.write(line)
            sent += len(line)
        await response.write_eof()
        return response

    async def _pdf(self, request: web.Request) -> web.Response:
        if self.pdf is None:
            from tests.files_helpers import pdf

            self.pdf = pdf([PDF_SENTENCE, "Page two: the ferry timetable."])
        return web.Response(body=self.pdf, content_type="application/pdf")

    async def _text(self, request: web.Request) -> web.Response:
        return web.Response(text=TEXT_BODY, content_type="text/plain")

    async def _picture(self, request: web.Request) -> web.Response:
        return web.Response(body=self.picture, content_type="image/png")

    async def _blob(self, request: web.Request) -> web.Response:
        return web.Response(body=bytes(range(256)) * 8, content_type="application/octet-stream")

    async def _file(self, request: web.Request) -> web.Response:
        found = self.files.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        data, content_type = found
        return web.Response(body=data, headers={"Content-Type": content_type})

    async def _secret(self, request: web.Request) -> web.Response:
        return web.Response(text="internal secret", content_type="text/plain")
