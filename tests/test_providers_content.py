"""Every shape OpenAI-compatible providers give ``delta.content`` and reasoning: strings, null,
lists of typed parts (text, thinking, reasoning), nested lists, part types nobody knows yet.

The shapes are the ones real providers send (see tests/fixtures/streams/README.md for recorded
streams of them); each is sent through the fake gateway and the real httpx client.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from bot.providers import ChatRequest, Gateway, GatewayPolicy, Turn, openai_decode
from bot.types import Outcome
from tests.fakes.gateway import Collected, FakeGateway, Reply, collect
from tests.provider_harness import gateway_fixtures

POLICY = GatewayPolicy(first_token_timeout=2.0, idle_timeout=1.0, max_retries=0)


gw, gateway = gateway_fixtures(POLICY)


def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    return json.dumps(
        {
            "id": "cmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
    )


async def run(gw: FakeGateway, gateway: Gateway, *deltas: dict[str, Any]) -> Collected:
    lines = [chunk({"role": "assistant", "content": ""})]
    lines += [chunk(delta) for delta in deltas]
    lines.append(chunk({}, "stop"))
    gw.script(Reply.replay(lines))
    request = ChatRequest(model="mistral-small-latest", system="", turns=[Turn.text("user", "17 * 23?")])
    return await collect(gateway.stream(request))


def order(out: Collected) -> list[str]:
    return [kind for kind in out.kinds if kind in ("TextDelta", "ThinkingDelta")]


def thought(text: str) -> dict[str, Any]:
    return {"type": "thinking", "thinking": [{"type": "text", "text": text}], "closed": True}


async def test_a_list_of_parts_is_read_whole_with_thinking_apart(gw: FakeGateway, gateway: Gateway) -> None:
    # The recorded Mistral shape: thinking parts nesting text parts, then one chunk with a
    # thinking part and a text part, then a plain string.
    out = await run(
        gw,
        gateway,
        {"content": [thought("17*23 = 340 + 51")]},
        {"content": [thought(" = 391."), {"type": "text", "text": "3"}]},
        {"content": "91"},
    )
    assert out.text == "391"
    assert out.thinking == "17*23 = 340 + 51 = 391."
    assert order(out) == ["ThinkingDelta", "ThinkingDelta", "TextDelta", "TextDelta"]
    assert out.finish is not None and out.finish.outcome is Outcome.COMPLETE


async def test_null_empty_and_plain_string_content(gw: FakeGateway, gateway: Gateway) -> None:
    out = await run(gw, gateway, {"content": None}, {"content": ""}, {"content": "Hello"}, {})
    assert out.text == "Hello"
    assert out.kinds.count("TextDelta") == 1


async def test_reasoning_fields_and_reasoning_parts_are_thinking(gw: FakeGateway, gateway: Gateway) -> None:
    out = await run(
        gw,
        gateway,
        {"reasoning_content": "a", "content": None},  # DeepSeek, Gemini through the gateway
        {"reasoning": "b"},  # Groq, OpenRouter, Ollama
        {"reasoning": "c", "reasoning_content": "c"},  # both names for the same text: once
        {"content": [{"type": "reasoning", "reasoning": "d"}, {"type": "reasoning", "text": "e"}]},
        {"content": [{"type": "reasoning", "summary": "x", "content": [{"type": "text", "text": "f"}]}]},
        {"reasoning_content": [{"type": "text", "text": "g"}]},
        {"content": [{"type": "output_text", "text": "Answer"}]},
    )
    assert out.thinking == "abcdefg"
    assert out.text == "Answer"


async def test_nested_part_lists_keep_stream_order(gw: FakeGateway, gateway: Gateway) -> None:
    out = await run(
        gw,
        gateway,
        {"content": [[{"type": "text", "text": "one "}, ["two "]], {"type": "text", "text": "three"}]},
        {"content": [{"type": "thinking", "thinking": "aside"}, {"text": " four"}]},
    )
    assert out.text == "one two three four"
    assert out.thinking == "aside"


async def test_a_refusal_is_the_answer(gw: FakeGateway, gateway: Gateway) -> None:
    out = await run(gw, gateway, {"content": None, "refusal": "I can't help with that."}, {"refusal": None})
    assert out.text == "I can't help with that."


async def test_unknown_parts_are_ignored_and_noted_once(
    gw: FakeGateway, gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    openai_decode._unknown_logged.discard("future-part")
    weird = {"type": "future-part", "text": {"nested": True}, "thinking": {"nested": True}}
    with caplog.at_level(logging.DEBUG, logger="bot.providers"):
        out = await run(
            gw,
            gateway,
            {"content": [weird, {"type": "text", "text": "391"}]},
            {"content": [weird, {"type": ["odd"]}, 7, None, {"type": "text", "text": None}]},
            {"content": {"type": "text", "text": "!"}},  # a lone part, not in a list
        )
    assert out.text == "391!"
    assert out.thinking == ""
    notes = [r for r in caplog.records if "future-part" in r.getMessage()]
    assert len(notes) == 1 and notes[0].levelno == logging.DEBUG
    assert out.finish is not None and out.finish.outcome is Outcome.COMPLETE
