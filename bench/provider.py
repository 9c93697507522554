"""The provider layer against raw httpx reading the same stream from the fake gateway, both over
the gateway client's transport (aiohttp's, through httpx-aiohttp)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from httpx_aiohttp import AiohttpTransport

from bench.config import Config, Result
from bench.core import settings_for
from bench.gateway_proc import gateway_process
from bench.metrics import dist
from bench.probes import percentile
from bench.workload import Workload
from bot.providers import Gateway
from bot.providers.base import ChatRequest, TextDelta, Turn
from tests.fakes.gateway import FakeGateway

# -- the provider layer against raw httpx ------------------------------------------------------

_CONTENT = b'"delta":{"content":'  # one per text token in the fake's OpenAI-format chunks
_REQUEST = ChatRequest(model="gemini-2.5-flash", system="", turns=(Turn.text("user", "hi"),), max_tokens=1024)
_HEADERS = {
    "authorization": "Bearer test-key",
    "content-type": "application/json",
    "accept-encoding": "identity",
}


async def _raw(client: httpx.AsyncClient, body: bytes) -> list[float]:
    """The stream read as bytes, as any client must; when each text token arrived."""
    arrivals: list[float] = []
    async with client.stream("POST", "/v1/chat/completions", content=body, headers=_HEADERS) as response:
        async for chunk in response.aiter_bytes():
            arrivals += [time.monotonic()] * chunk.count(_CONTENT)
    return arrivals


async def _provider(gateway: Gateway) -> list[float]:
    """The same stream through Parley's provider; when each text delta came out."""
    arrivals: list[float] = []
    async for event in gateway.provider_for(_REQUEST.model).stream(_REQUEST):
        if isinstance(event, TextDelta):
            arrivals.append(time.monotonic())
    return arrivals


class _Pair:
    """Raw httpx and the provider, on one gateway URL, each with its own warmed-up connection."""

    def __init__(self, tmp: Path, url: str) -> None:
        self.gateway = Gateway(settings_for(tmp, url))
        provider = self.gateway.provider_for(_REQUEST.model)
        self.body = json.dumps(provider.build_body(_REQUEST)).encode()  # type: ignore[attr-defined]
        # The same transport and timeouts as the gateway client's streams, so the difference is
        # the provider layer.
        timeout = self.gateway.policy.stream_timeout()
        self.client = httpx.AsyncClient(base_url=url, timeout=timeout, transport=AiohttpTransport())

    async def run(self, kind: str) -> tuple[list[float], float]:
        """Token arrival times and the CPU seconds this process spent."""
        c0 = time.process_time()
        arrivals = await (_raw(self.client, self.body) if kind == "raw" else _provider(self.gateway))
        return arrivals, time.process_time() - c0

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.gateway.aclose()


async def _cpu_per_token(tmp: Path, tokens: int, rate: float, rounds: int) -> dict[str, float]:
    """CPU µs per token of each reader, the gateway in another process (so not counted)."""
    cpu = {"raw": 0.0, "provider": 0.0}
    wall = {"raw": 0.0, "provider": 0.0}
    with gateway_process(tokens, rate) as gateway:
        pair = _Pair(tmp, gateway.url)
        try:
            for kind in ("raw", "provider"):
                await pair.run(kind)  # warm-up: connection, code paths
            for _ in range(rounds):
                for kind in ("raw", "provider"):
                    w0 = time.perf_counter()
                    arrivals, spent = await pair.run(kind)
                    if len(arrivals) < tokens * 0.9:
                        raise RuntimeError(f"{kind} read {len(arrivals)} of {tokens} tokens")
                    cpu[kind] += spent
                    wall[kind] += time.perf_counter() - w0
        finally:
            await pair.aclose()
    per = rounds * tokens
    raw, prov = cpu["raw"] / per * 1e6, cpu["provider"] / per * 1e6
    return {
        "raw_cpu_us_per_token": round(raw, 2),
        "provider_cpu_us_per_token": round(prov, 2),
        "cpu_overhead_pct": round(100 * (prov - raw) / raw, 1),
        "raw_wall_us_per_token": round(wall["raw"] / per * 1e6, 2),
        "provider_wall_us_per_token": round(wall["provider"] / per * 1e6, 2),
    }


async def provider_scenario(cfg: Config, tmp: Path, name: str, n: int) -> Result:
    """What the provider layer adds per token over raw httpx reading the same fake stream:
    CPU when the stream is buffered (CPU-bound), and CPU and latency at the real token rate."""
    tokens = cfg.work.tokens
    paced = min(tokens, 120) if cfg.quick else tokens
    out: Result = {"scenario": name, "platform": "provider", "replies": 0, "rate_limited": 0}
    out["buffered"] = await _cpu_per_token(tmp, tokens, 0.0, n)
    real: Result = dict(await _cpu_per_token(tmp, paced, cfg.work.rate, 1))

    # Latency: the gateway on a thread of this process, so its send times are in its record.
    # Pairing by token index (the k-th text token sent ↔ the k-th arrival) survives the two
    # threads racing to timestamp the same write.
    work = Workload(tokens=paced, rate=cfg.work.rate, first_delay=0.0)
    lat: dict[str, list[float]] = {"raw": [], "provider": []}
    with FakeGateway.in_thread(default=work.reply()) as gw:
        pair = _Pair(tmp, gw.url)
        try:
            for kind in ("raw", "provider", "raw", "provider"):
                sent = len(gw.stream_requests)
                arrivals, _ = await pair.run(kind)
                timeline = [t for t, _ in gw.stream_requests[sent].timeline]
                lat[kind] += [a - t for t, a in zip(timeline, arrivals, strict=False)]
        finally:
            await pair.aclose()
    raw50 = percentile(lat["raw"], 50) or 0.0
    prov50 = percentile(lat["provider"], 50) or 0.0
    interval = 1.0 / cfg.work.rate
    real.update(
        {
            "tokens": paced,
            "rate_tokens_per_s": cfg.work.rate,
            "raw_latency_us": dist(lat["raw"], 1e6),
            "provider_latency_us": dist(lat["provider"], 1e6),
            "added_us_per_token_p50": round((prov50 - raw50) * 1e6, 1),
            "added_pct_of_token_interval": round(100 * (prov50 - raw50) / interval, 3),
        }
    )
    out["real_rate"] = real
    return out
