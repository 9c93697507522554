"""The gateway as the core sees it: one shared HTTP client, a provider per wire format, and the
small account calls (models, billing)."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any, Literal

import httpx
from httpx_aiohttp import AiohttpTransport

from bot.options import WireFormat
from bot.providers.anthropic import AnthropicProvider
from bot.providers.audio import transcribe
from bot.providers.base import ChatRequest, Provider, StreamEvent, ToolSpec, Turn
from bot.providers.classify import error_from_response
from bot.providers.errors import BadRequest, MissingApiKey
from bot.providers.images import GeneratedImage, generate_image
from bot.providers.openai_chat import OpenAIChatProvider
from bot.providers.policy import GatewayPolicy
from bot.providers.streaming import StreamingProvider, transport_error
from bot.settings import Settings

USER_AGENT = "parley/0.1"


def build_request(
    settings: Settings,
    model: str,
    system: str,
    turns: Sequence[Turn],
    *,
    tools: Sequence[ToolSpec] = (),
    tool_choice: Literal["auto", "none"] = "auto",
) -> ChatRequest:
    """A request with the per-model options from ``[models."NAME"]`` applied, offering ``tools``
    (``tool_choice="none"``: declared, but none may be called)."""
    options = settings.options_for(model)
    return ChatRequest(
        model=model,
        system=system,
        turns=tuple(turns),
        max_tokens=options.max_tokens or settings.parley_max_tokens,
        temperature=options.temperature,
        thinking_budget=options.thinking_budget,
        extra=dict(options.extra),
        tools=tuple(tools),
        tool_choice=tool_choice,
    )


def _proxied() -> bool:
    """Whether the environment names an HTTP proxy (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY). httpx
    honours these only with its own transport, so the client then keeps it."""
    return any(scheme in urllib.request.getproxies() for scheme in ("http", "https", "all"))


def _money(value: float | None) -> float | None:
    # Float noise (87.66000000000001) would show in `parley usage`.
    return None if value is None else round(value, 4)


class Gateway:
    """Build one per process from Settings and ``aclose()`` it at shutdown.

    A missing API key is not an error here (``parley doctor`` and the adapters start without
    one); each call then raises :class:`~bot.providers.errors.MissingApiKey` without sending.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        policy: GatewayPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.policy = policy or GatewayPolicy.from_settings(settings)
        key = settings.apicore_api_key
        self._api_key = (key.get_secret_value() or None) if key is not None else None
        # Every concurrent reply holds a connection for its whole stream, so the pool must not be
        # what limits concurrency; keep-alive spares a TLS handshake per reply.
        limits = httpx.Limits(
            max_connections=settings.parley_gateway_max_connections,
            max_keepalive_connections=32,
            keepalive_expiry=30.0,
        )
        if transport is None and not _proxied():
            # aiohttp's C parser under httpx's API: a streamed token costs about a third less CPU
            # than on httpx's own transport (docs/performance.md). httpx honours HTTP(S)_PROXY
            # only on its own transport, so with a proxy named the client keeps that one.
            transport = AiohttpTransport(limits=limits)
        self._client = httpx.AsyncClient(
            base_url=settings.apicore_base_url,
            timeout=self.policy.httpx_timeout(),
            limits=limits,
            http1=True,
            http2=False,
            follow_redirects=False,
            headers={"user-agent": USER_AGENT},
            transport=transport,
        )
        self._providers: dict[WireFormat, StreamingProvider] = {
            "openai": OpenAIChatProvider(self._client, self._api_key, self.policy),
            "anthropic": AnthropicProvider(self._client, self._api_key, self.policy),
        }

    def provider_for(self, model: str) -> Provider:
        return self._providers[self.settings.wire_format(model)]

    def request(
        self,
        model: str,
        system: str,
        turns: Sequence[Turn],
        *,
        tools: Sequence[ToolSpec] = (),
        tool_choice: Literal["auto", "none"] = "auto",
    ) -> ChatRequest:
        return build_request(self.settings, model, system, turns, tools=tools, tool_choice=tool_choice)

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Shorthand for ``provider_for(request.model).stream(request)``."""
        return self.provider_for(request.model).stream(request)

    async def list_models(self) -> list[str]:
        """Model ids from ``GET /v1/models``, in the gateway's order."""
        payload = await self._get_json("/v1/models")
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list):
            raise BadRequest("GET /v1/models did not answer a model list (check APICORE_BASE_URL)")
        return [item["id"] for item in data if isinstance(item, dict) and isinstance(item.get("id"), str)]

    async def billing(self) -> dict[str, float | None]:
        """Quota and usage in the gateway's display unit, from the subscription and usage routes.

        Keys, in display order: ``hard_limit_usd``, ``used_usd`` (the usage route's
        ``total_usage`` is in hundredths), ``remaining_usd``; each None when the gateway left it out.
        """
        subscription, usage = await asyncio.gather(
            self._get_json("/v1/dashboard/billing/subscription"),
            self._get_json("/v1/dashboard/billing/usage"),
        )
        limit = subscription.get("hard_limit_usd") if isinstance(subscription, dict) else None
        total = usage.get("total_usage") if isinstance(usage, dict) else None
        hard_limit = float(limit) if isinstance(limit, int | float) else None
        used = total / 100 if isinstance(total, int | float) else None
        remaining = hard_limit - used if hard_limit is not None and used is not None else None
        return {
            "hard_limit_usd": _money(hard_limit),
            "used_usd": _money(used),
            "remaining_usd": _money(remaining),
        }

    async def generate_image(self, prompt: str, *, model: str, size: str) -> GeneratedImage:
        """One picture from ``POST /v1/images/generations`` (see :mod:`bot.providers.images`)."""
        return await generate_image(self._client, self._api_key, model=model, prompt=prompt, size=size)

    async def transcribe(self, data: bytes, *, filename: str, media_type: str, model: str) -> str:
        """The words in a recording, from ``POST /v1/audio/transcriptions`` (see
        :mod:`bot.providers.audio`): the file pipeline's transcriber."""
        return await transcribe(
            self._client,
            self._api_key,
            self.policy,
            data,
            filename=filename,
            media_type=media_type,
            model=model,
        )

    async def _get_json(self, path: str) -> Any:
        if self._api_key is None:
            raise MissingApiKey("APICORE_API_KEY is not set")
        limit = self.policy.max_json_bytes
        try:
            headers = {"authorization": f"Bearer {self._api_key}"}
            async with self._client.stream("GET", path, headers=headers) as response:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise BadRequest(
                            f"GET {path} answered more than {limit} bytes (check APICORE_BASE_URL)"
                        )
        except httpx.TransportError as exc:
            raise transport_error(exc) from None
        if response.status_code >= 300:
            raise error_from_response(
                response.status_code, bytes(body), response.headers, secret=self._api_key
            )
        try:
            return json.loads(body)
        except ValueError:
            raise BadRequest(
                f"GET {path} answered something that is not JSON (check APICORE_BASE_URL)",
                status=response.status_code,
            ) from None

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Gateway:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def list_models(settings: Settings) -> list[str]:
    """One-off ``GET /v1/models`` for the CLI and doctor, on a client of its own."""
    async with Gateway(settings) as gateway:
        return await gateway.list_models()


async def billing(settings: Settings) -> dict[str, float | None]:
    """One-off :meth:`Gateway.billing` for the CLI, on a client of its own."""
    async with Gateway(settings) as gateway:
        return await gateway.billing()
