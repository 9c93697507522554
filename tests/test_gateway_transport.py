"""The gateway client's transport: aiohttp's (httpx-aiohttp) on the direct path, where the
streamed tokens cost the least CPU (issue 19), httpx's own when the environment names a proxy
(httpx honours HTTP(S)_PROXY only with its own transport)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from httpx_aiohttp import AiohttpTransport
from pydantic import SecretStr

from bot.providers import ChatRequest, Gateway, Turn
from bot.providers.base import TextDelta
from bot.settings import Settings

REQUEST = ChatRequest(model="gemini-2.5-flash", system="", turns=[Turn.text("user", "hi")])


def sse_answer(text: str) -> bytes:
    """A whole streamed answer, chunked, as one HTTP/1.1 response."""
    events = [
        b'data: {"choices":[{"index":0,"delta":{"content":"%s"},"finish_reason":null}]}\n\n' % text.encode(),
        b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
        b"data: [DONE]\n\n",
    ]
    body = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    return head + body


@asynccontextmanager
async def answering(text: str, seen: list[bytes]) -> AsyncIterator[int]:
    """A loopback server answering every request with ``text``; records each request line."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        await reader.readexactly(length)
        seen.append(head.split(b"\r\n", 1)[0])
        writer.write(sse_answer(text))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_the_gateway_streams_through_aiohttp_directly() -> None:
    seen: list[bytes] = []
    async with answering("direct", seen) as port:
        settings = Settings(apicore_base_url=f"http://127.0.0.1:{port}", apicore_api_key=SecretStr("k"))
        async with Gateway(settings) as gateway:
            assert isinstance(gateway._client._transport, AiohttpTransport)
            events = [event async for event in gateway.stream(REQUEST)]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "direct"
    assert seen == [b"POST /v1/chat/completions HTTP/1.1"]


async def test_the_gateway_streams_through_a_proxy_the_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[bytes] = []
    async with answering("via the proxy", seen) as port:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        settings = Settings(apicore_base_url="http://gateway.invalid", apicore_api_key=SecretStr("k"))
        async with Gateway(settings) as gateway:
            events = [event async for event in gateway.stream(REQUEST)]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "via the proxy"
    # The proxy was asked for the gateway's absolute URL: the request went through it.
    assert seen == [b"POST http://gateway.invalid/v1/chat/completions HTTP/1.1"]
