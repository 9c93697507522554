"""Every size read from the network is capped: the gateway's stream and its JSON answers, and the
answer the core accepts from a gateway that will not stop. (File downloads: test_files_fetch.py;
Slack request bodies: the HTTP server's 2 MiB client_max_size; questions: test_hostile_input.py.
docs/reliability.md lists them all.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.providers import ChatRequest, GatewayPolicy, Turn, errors
from bot.runtime import Runtime
from bot.settings import load_settings
from bot.types import Author, ConversationKey, IncomingMessage, Outcome
from tests.fakes.gateway import FakeGateway, Reply, collect
from tests.fakes.surface import RecordingSurface

POLICY = GatewayPolicy(max_retries=0, max_stream_bytes=64 * 1024, max_json_bytes=16 * 1024)


@pytest.fixture
async def gw() -> AsyncIterator[FakeGateway]:
    async with FakeGateway() as fake:
        yield fake


def request(max_tokens: int = 100) -> ChatRequest:
    return ChatRequest(
        model="gemini-2.5-flash", system="", turns=(Turn("user", "hi"),), max_tokens=max_tokens
    )


async def test_a_stream_past_the_byte_cap_is_cut(gw: FakeGateway) -> None:
    async with gw.client(POLICY) as gateway:
        gw.script(Reply(text="word " * 50_000))  # far more than 64 KiB of events
        out = await collect(gateway.stream(request()))
        assert out.finish is not None and out.finish.outcome is Outcome.TRUNCATED
        assert isinstance(out.finish.error, errors.StreamBroken)
        assert 0 < len(out.text) < 64 * 1024
        # Bytes that never form an event (no line end at all) are cut the same way.
        gw.script(Reply.chunks(b"x" * 40_000, b"x" * 40_000))
        with pytest.raises(errors.StreamBroken, match="passed 65536 bytes"):
            await collect(gateway.stream(request()))
        # A model list (or billing answer) past its cap is refused rather than read.
        gw.models = [f"model-{i:05d}-with-a-long-name" for i in range(2000)]
        with pytest.raises(errors.BadRequest, match="more than 16384 bytes"):
            await gateway.list_models()


async def test_an_answer_that_never_stops_is_cut_at_the_cap(gw: FakeGateway, tmp_path: Path) -> None:
    env = {
        "APICORE_API_KEY": gw.api_key or "",
        "APICORE_BASE_URL": gw.url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}",
        "PARLEY_MAX_TOKENS": "100",  # the answer cap is then the floor, 100,000 characters
    }
    runtime = await Runtime.create(load_settings(env, cwd=tmp_path))
    try:
        gw.script(Reply(text="y" * 300_000, chunk_chars=5_000, delay=0.005))  # ignoring max_tokens
        surface = RecordingSurface(max_chars=1_000_000)
        msg = IncomingMessage(
            ConversationKey("console", "", "c", "t"), "e1", Author("u", "U"), "go on for ever", surface
        )
        result = await runtime.service.handle(msg)
        assert result is not None and result.outcome is Outcome.LENGTH
        assert result.text == "y" * 100_000
        assert (surface.final or "").endswith("_(The answer hit the model's length limit and stops here.)_")
        assert gw.stream_requests[0].disconnected_at is not None  # the stream was closed, not drained
    finally:
        await runtime.aclose()
