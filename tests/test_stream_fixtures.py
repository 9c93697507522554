"""Replaying captured provider streams through the fake gateway and the real client.

The shared captures (../shared/fixtures/streams, with the expected results in their README) and
Parley's own (tests/fixtures/streams, expected results in expected.json) are sent as SSE exactly
as the README says, once whole and once split into tiny network chunks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.providers import ChatRequest, Gateway, GatewayPolicy, Turn
from bot.providers.base import ToolCall
from bot.types import Outcome, Usage
from tests.fakes.gateway import Collected, FakeGateway, Reply, collect
from tests.provider_harness import gateway_fixtures


def _shared_captures() -> Path:
    """``shared/fixtures/streams`` beside the checkout: /work/shared for /work/main, and for a
    worktree further down (/work/wt/NAME) the first ancestor that has one."""
    here = Path(__file__).resolve()
    for parent in here.parents[1:]:
        candidate = parent / "shared" / "fixtures" / "streams"
        if candidate.is_dir():
            return candidate
    return here.parents[2] / "shared" / "fixtures" / "streams"


SHARED = _shared_captures()
OWN = Path(__file__).resolve().parent / "fixtures" / "streams"
POLICY = GatewayPolicy(first_token_timeout=2.0, idle_timeout=1.0, max_retries=0)

needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason=f"the shared captures are not at {SHARED} (a checkout without ../shared)"
)
SPLITS = pytest.mark.parametrize("split_bytes", [None, 3], ids=["whole", "3-byte-chunks"])


gw, gateway = gateway_fixtures(POLICY)


async def replay(gw: FakeGateway, gateway: Gateway, path: Path, split_bytes: int | None) -> Collected:
    reply = Reply.replay(path)
    reply.split_bytes = split_bytes
    gw.script(reply)
    model = "claude-sonnet-4-5" if path.name.startswith("anthropic") else "gemini-2.5-flash"
    request = ChatRequest(model=model, system="", turns=[Turn.text("user", "replay")])
    out = await collect(gateway.stream(request))
    assert len(gw.stream_requests) == 1
    return out


@needs_shared
@SPLITS
async def test_anthropic_text(gw: FakeGateway, gateway: Gateway, split_bytes: int | None) -> None:
    out = await replay(gw, gateway, SHARED / "anthropic-text.jsonl", split_bytes)
    assert out.text == (
        "Hello! I'm doing well, thank you for asking. How are you doing today? "
        "Is there anything I can help you with?"
    )
    assert out.thinking == ""
    assert out.finish is not None
    assert (out.finish.outcome, out.finish.stop_reason) == (Outcome.COMPLETE, "end_turn")
    assert out.finish.usage == Usage(input_tokens=12, output_tokens=30)


@needs_shared
@SPLITS
async def test_anthropic_thinking(gw: FakeGateway, gateway: Gateway, split_bytes: int | None) -> None:
    out = await replay(gw, gateway, SHARED / "anthropic-thinking.jsonl", split_bytes)
    assert out.thinking == (
        "I'm working through the Euclidean algorithm to find the GCD of 1071 and 462, applying "
        "successive division until I reach a remainder of zero, which gives me 21 as the greatest "
        "common divisor."
    )
    assert out.text.startswith("# Finding GCD(1071, 462) Using the Euclidean Algorithm\n\n## Step 1")
    assert out.text.endswith("- 462 = 21 × 22 ✓")
    assert "$$\\gcd(1071, 462) = 21$$" in out.text
    assert "Euclidean algorithm to find" not in out.text  # the thinking stayed out of the answer
    assert out.kinds.index("TextDelta") > max(i for i, k in enumerate(out.kinds) if k == "ThinkingDelta")
    assert out.finish is not None
    assert (out.finish.outcome, out.finish.stop_reason) == (Outcome.COMPLETE, "end_turn")
    # 373 output tokens, 62 of them thinking (message_delta's usage.output_tokens_details).
    assert out.finish.usage == Usage(input_tokens=47, output_tokens=373, thinking_tokens=62)


@needs_shared
@SPLITS
async def test_openai_placeholder_first_chunk(
    gw: FakeGateway, gateway: Gateway, split_bytes: int | None
) -> None:
    out = await replay(gw, gateway, SHARED / "openai-placeholder-first-chunk.jsonl", split_bytes)
    assert out.text == "Hello"
    assert out.thinking == ""
    assert out.finish is not None
    assert (out.finish.outcome, out.finish.stop_reason) == (Outcome.COMPLETE, "stop")
    usage = out.finish.usage
    assert (usage.input_tokens, usage.output_tokens, usage.input_tokens + usage.output_tokens) == (10, 1, 11)


OWN_EXPECTED: dict[str, dict[str, object]] = json.loads((OWN / "expected.json").read_text(encoding="utf-8"))


@SPLITS
@pytest.mark.parametrize("name", sorted(OWN_EXPECTED))
async def test_own_fixtures(gw: FakeGateway, gateway: Gateway, name: str, split_bytes: int | None) -> None:
    expected = OWN_EXPECTED[name]
    out = await replay(gw, gateway, OWN / name, split_bytes)
    assert out.text == expected["text"]
    assert out.thinking == expected["thinking"]
    assert out.finish is not None
    assert out.finish.outcome == Outcome(str(expected["outcome"]))
    assert out.finish.stop_reason == expected["stop_reason"]
    assert out.finish.usage == Usage(**expected["usage"])  # type: ignore[arg-type]
    assert out.finish.error is None
    calls = [ToolCall(**call) for call in expected.get("tool_calls", [])]  # type: ignore[attr-defined]
    assert list(out.tool_calls) == calls
    # Each call was announced once, in order, by name, before the stream finished.
    announced = [(start.index, start.id, start.name) for start in out.tool_starts]
    assert announced == [(i, call.id, call.name) for i, call in enumerate(calls)]
    if calls:
        assert out.kinds.index("ToolCallStarted") < out.kinds.index("Finish")


def test_every_own_fixture_has_expectations() -> None:
    assert {p.name for p in OWN.glob("*.jsonl")} == set(OWN_EXPECTED)
