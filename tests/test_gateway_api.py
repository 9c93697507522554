"""The Gateway object: routing by model, per-model options, the account calls, and the fake
gateway's thread mode (as sync code and subprocess tests use it)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from bot.options import ModelOptions
from bot.providers import ChatRequest, Gateway, GatewayPolicy, Turn, build_request, errors
from bot.providers.anthropic import AnthropicProvider
from bot.providers.base import ToolSpec
from bot.providers.gateway import billing, list_models
from bot.providers.openai_chat import OpenAIChatProvider
from bot.settings import Settings, load_settings
from bot.types import Outcome
from tests.fakes.gateway import FakeGateway, Reply, collect

POLICY = GatewayPolicy(first_token_timeout=2.0, idle_timeout=1.0, max_retries=1, backoff_base=0.01)


@pytest.fixture
async def gw() -> AsyncIterator[FakeGateway]:
    async with FakeGateway(models=["gemini-2.5-flash", "claude-sonnet-4-5"], total_usage=1234) as fake:
        yield fake


def settings_for(gw: FakeGateway, **kw: object) -> Settings:
    values: dict[str, object] = {"apicore_base_url": gw.url, "apicore_api_key": gw.api_key, **kw}
    return Settings(**values)  # type: ignore[arg-type]


async def test_models_route_by_name_with_explicit_overrides(gw: FakeGateway) -> None:
    settings = settings_for(gw, parley_models={"my-claude-proxy": ModelOptions(format="openai")})
    async with Gateway(settings, policy=POLICY) as gateway:
        assert isinstance(gateway.provider_for("claude-sonnet-4-5"), AnthropicProvider)
        assert isinstance(gateway.provider_for("Claude-3-haiku"), AnthropicProvider)
        assert isinstance(gateway.provider_for("gemini-2.5-flash"), OpenAIChatProvider)
        assert isinstance(gateway.provider_for("my-claude-proxy"), OpenAIChatProvider)
        assert gateway.provider_for("gpt-4o").wire_format == "openai"
        # One shared client: both formats reach the same gateway root.
        for model, path in (
            ("claude-sonnet-4-5", "/v1/messages"),
            ("gemini-2.5-flash", "/v1/chat/completions"),
        ):
            out = await collect(gateway.stream(gateway.request(model, "sys", [Turn.text("user", model)])))
            assert out.text == f"You said: {model}"
            assert gw.last.path == path


def test_build_request_applies_per_model_options() -> None:
    settings = Settings(
        parley_max_tokens=2000,
        parley_models={
            "claude-opus-4": ModelOptions(max_tokens=8000, thinking_budget=4096, extra={"top_k": 5}),
            "gemini-2.5-pro": ModelOptions(temperature=0.4),
        },
    )
    turns = [Turn.text("user", "hi")]
    claude = build_request(settings, "claude-opus-4", "sys", turns)
    assert (claude.max_tokens, claude.thinking_budget, claude.extra, claude.temperature) == (
        8000,
        4096,
        {"top_k": 5},
        None,
    )
    gemini = build_request(settings, "gemini-2.5-pro", "sys", turns)
    assert (gemini.max_tokens, gemini.temperature, gemini.thinking_budget) == (2000, 0.4, None)
    assert gemini.system == "sys" and tuple(gemini.turns) == tuple(turns)
    assert (gemini.tools, gemini.tool_choice) == ((), "auto")
    spec = ToolSpec("read_url", "Read a page.", {"type": "object", "properties": {}})
    last_step = build_request(settings, "gemini-2.5-pro", "sys", turns, tools=[spec], tool_choice="none")
    assert (last_step.tools, last_step.tool_choice, last_step.temperature) == ((spec,), "none", 0.4)


async def test_list_models(gw: FakeGateway) -> None:
    async with Gateway(settings_for(gw), policy=POLICY) as gateway:
        assert await gateway.list_models() == ["gemini-2.5-flash", "claude-sonnet-4-5"]
    assert gw.last.path == "/v1/models"
    assert gw.last.header("authorization") == f"Bearer {gw.api_key}"


async def test_billing(gw: FakeGateway) -> None:
    async with Gateway(settings_for(gw), policy=POLICY) as gateway:
        billing = await gateway.billing()
    assert billing == {"hard_limit_usd": 100.0, "used_usd": 12.34, "remaining_usd": 87.66}
    assert {r.path for r in gw.requests} == {
        "/v1/dashboard/billing/subscription",
        "/v1/dashboard/billing/usage",
    }


async def test_account_calls_map_errors(gw: FakeGateway) -> None:
    async with Gateway(settings_for(gw, apicore_api_key="wrong"), policy=POLICY) as gateway:
        with pytest.raises(errors.AuthError):
            await gateway.list_models()
        with pytest.raises(errors.AuthError):
            await gateway.billing()
    gw.script_path("/v1/models", Reply.http_error(403, "用户额度不足"))
    gw.script_path("/v1/dashboard/billing/usage", Reply.http_error(503, shape="empty"))
    async with Gateway(settings_for(gw), policy=POLICY) as gateway:
        with pytest.raises(errors.QuotaError):
            await gateway.list_models()
        with pytest.raises(errors.OverloadedError):
            await gateway.billing()
    gw.script_path("/v1/models", Reply(status=200))  # a model list is what comes back unscripted
    async with Gateway(settings_for(gw), policy=POLICY) as gateway:
        assert await gateway.list_models()


async def test_account_calls_without_a_key_send_nothing(gw: FakeGateway) -> None:
    async with Gateway(settings_for(gw, apicore_api_key=None), policy=POLICY) as gateway:
        with pytest.raises(errors.MissingApiKey):
            await gateway.list_models()
        with pytest.raises(errors.MissingApiKey):
            await gateway.billing()
    assert gw.requests == []


async def test_a_wrong_base_url_is_reported_not_crashed() -> None:
    async with FakeGateway() as gw:
        settings = Settings(
            apicore_base_url=gw.url + "/not-the-api", apicore_api_key=SecretStr(str(gw.api_key))
        )
        async with Gateway(settings, policy=POLICY) as gateway:
            with pytest.raises(errors.BadRequest) as caught:
                await gateway.list_models()
    assert "404" in str(caught.value)


async def test_gateway_from_loaded_settings_end_to_end(gw: FakeGateway) -> None:
    settings = load_settings(
        {
            "APICORE_BASE_URL": gw.url,
            "APICORE_API_KEY": str(gw.api_key),
            "PARLEY_FIRST_TOKEN_TIMEOUT": "2",
            "PARLEY_MAX_RETRIES": "1",
        }
    )
    gw.script(Reply.http_error(503, "busy"), Reply(text="after one retry"))
    async with Gateway(settings) as gateway:
        assert gateway.policy.first_token_timeout == 2.0
        assert gateway.policy.max_retries == 1
        request = gateway.request(
            settings.parley_model, settings.parley_system_prompt, [Turn.text("user", "x")]
        )
        out = await collect(gateway.stream(request))
    assert out.text == "after one retry"
    assert len(gw.stream_requests) == 2
    assert gw.last.json["messages"][0] == {"role": "system", "content": settings.parley_system_prompt}


def test_fake_gateway_in_a_thread_serves_sync_and_async_clients() -> None:
    with FakeGateway.in_thread(api_key="k") as gw:
        gw.script(Reply(text="from the thread", thinking="hmm"))
        response = httpx.get(f"{gw.url}/v1/models", headers={"Authorization": "Bearer k"})
        assert response.status_code == 200
        assert response.json()["data"][0]["object"] == "model"
        assert httpx.get(f"{gw.url}/v1/models").status_code == 401

        async def ask() -> None:
            settings = Settings(apicore_base_url=gw.url, apicore_api_key=SecretStr("k"))
            async with Gateway(settings, policy=POLICY) as gateway:
                request = ChatRequest(model="gemini-2.5-flash", system="", turns=[Turn.text("user", "x")])
                out = await collect(gateway.stream(request))
            assert (out.text, out.thinking) == ("from the thread", "hmm")
            assert out.finish is not None and out.finish.outcome is Outcome.COMPLETE

        asyncio.run(ask())
        assert gw.stream_requests[0].text_sent == "from the thread"


async def test_fake_gateway_records_a_timeline_for_benchmarks(gw: FakeGateway) -> None:
    gw.script(Reply.paced("one two three", tokens_per_s=20, first_delay=0.05))
    async with Gateway(settings_for(gw), policy=POLICY) as gateway:
        await collect(
            gateway.stream(ChatRequest(model="gemini-2.5-flash", system="", turns=[Turn.text("user", "x")]))
        )
    record = gw.stream_requests[0]
    assert [text for _, text in record.timeline] == ["one ", "one two ", "one two three"]
    times = [t for t, _ in record.timeline]
    assert times[0] - record.t_received >= 0.05
    assert all(later - earlier >= 0.04 for earlier, later in itertools.pairwise(times))
    assert record.t_done is not None and record.disconnected_at is None


async def test_one_off_account_calls_for_the_cli(gw: FakeGateway) -> None:
    settings = settings_for(gw)
    assert await list_models(settings) == ["gemini-2.5-flash", "claude-sonnet-4-5"]
    assert (await billing(settings))["used_usd"] == 12.34
    with pytest.raises(errors.AuthError):
        await list_models(settings_for(gw, apicore_api_key="wrong"))
