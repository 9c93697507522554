"""The gateway client's transport: aiohttp's (httpx-aiohttp) on the direct path, where the
streamed tokens cost the least CPU (issue 19), httpx's own when the environment names a proxy
(httpx honours HTTP(S)_PROXY only with its own transport)."""

from __future__ import annotations

import httpx
import pytest
from httpx_aiohttp import AiohttpTransport
from pydantic import SecretStr

from bot.providers import ChatRequest, Gateway, Turn
from bot.providers.base import TextDelta
from bot.settings import Settings
from tests.fakes.gateway import FakeGateway, Reply

REQUEST = ChatRequest(model="gemini-2.5-flash", system="", turns=[Turn.text("user", "hi")])


async def answer(gateway: Gateway) -> str:
    events = [event async for event in gateway.stream(REQUEST)]
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_the_gateway_streams_through_aiohttp_directly() -> None:
    async with FakeGateway() as gw:
        gw.script(Reply(text="direct"))
        async with gw.client() as gateway:
            assert isinstance(gateway._client._transport, AiohttpTransport)
            assert await answer(gateway) == "direct"
    assert [r.path for r in gw.requests] == ["/v1/chat/completions"]


async def test_the_gateway_streams_through_a_proxy_the_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The fake gateway stands in for the proxy: a host that does not resolve is reached only
    # through it, and the request it records is addressed to that host.
    async with FakeGateway(api_key=None) as proxy:
        proxy.script(Reply(text="via the proxy"))
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        settings = Settings(apicore_base_url="http://gateway.invalid", apicore_api_key=SecretStr("k"))
        async with Gateway(settings) as gateway:
            assert isinstance(gateway._client._transport, httpx.AsyncHTTPTransport)
            assert await answer(gateway) == "via the proxy"
    (asked,) = proxy.requests
    assert asked.path == "/v1/chat/completions" and asked.header("Host") == "gateway.invalid"
