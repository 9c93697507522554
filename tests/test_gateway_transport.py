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


class _Spy(httpx.AsyncBaseTransport):
    """Passes every request on, noting the timeouts httpx hands the transport with it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.timeouts: dict[str, dict[str, float | None]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.timeouts[request.url.path] = request.extensions["timeout"]
        return await self.inner.handle_async_request(request)


async def test_a_streamed_answer_has_no_transport_read_timeout_only_the_providers_deadline() -> None:
    # aiohttp re-arms its read timer at every chunk: a streamed token would pay for a timer the
    # provider's own deadline (first token, then idle) already covers. Short calls keep it.
    async with FakeGateway() as gw:
        gw.script(Reply(text="timed by the provider"))
        async with gw.client() as gateway:
            spy = _Spy(gateway._client._transport)
            gateway._client._transport = spy
            assert await answer(gateway) == "timed by the provider"
            await gateway.list_models()
    stream, models = spy.timeouts["/v1/chat/completions"], spy.timeouts["/v1/models"]
    policy = gateway.policy
    assert stream["read"] is None
    assert stream["connect"] == policy.connect_timeout == models["connect"]
    assert models["read"] == max(policy.first_token_timeout, policy.idle_timeout)
