"""Function calling in both wire formats, through the real httpx client against the fake gateway:
calls streamed and assembled (parallel, interleaved, after text, malformed, cut off), tools
declared, results sent back, a history carried from one format to the other, ``tool_choice``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from bot.providers import ChatRequest, Gateway, GatewayPolicy, TextPart, Turn
from bot.providers.anthropic import build_anthropic_body, lazy_anthropic_body
from bot.providers.base import ToolCall, ToolCallPart, ToolCallStarted, ToolResultPart, ToolSpec
from bot.providers.body import encode_body
from bot.providers.openai_chat import build_openai_body, lazy_openai_body
from bot.types import Outcome
from tests.fakes.gateway import FakeGateway, Reply, collect
from tests.fakes.gateway_tools import FakeToolCall
from tests.provider_harness import gateway_fixtures

OPENAI, ANTHROPIC = "gemini-2.5-flash", "claude-sonnet-4-5"
BOTH = pytest.mark.parametrize("model", [OPENAI, ANTHROPIC], ids=["openai", "anthropic"])
POLICY = GatewayPolicy(first_token_timeout=2.0, idle_timeout=1.0, max_retries=2, backoff_base=0.01)
ANTHROPIC_ID = re.compile(r"^[a-zA-Z0-9_-]+$")

READ_URL = ToolSpec(
    "read_url",
    "Fetch a web page and return its main text.",
    {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"url": {"type": "string", "format": "uri"}},
        "required": ["url"],
        "additionalProperties": False,
    },
)
SEARCH = ToolSpec(
    "tracker__search_issues",
    "Search the issue tracker.",
    {"type": "object", "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}}},
)


gw, gateway = gateway_fixtures(POLICY)


def ask(model: str, *turns: Turn, **kw: Any) -> ChatRequest:
    history = turns or (Turn.text("user", "What do these pages say?"),)
    return ChatRequest(model=model, system="Be brief.", turns=history, tools=(READ_URL, SEARCH), **kw)


def tool_stop(model: str) -> str:
    return "tool_use" if model == ANTHROPIC else "tool_calls"


# Decoding.


@BOTH
async def test_parallel_calls_are_assembled_in_order(gw: FakeGateway, gateway: Gateway, model: str) -> None:
    calls = [
        FakeToolCall("read_url", {"url": "https://example.com/a?q=é"}),
        FakeToolCall("tracker__search_issues", {"query": 'login "fails"', "limit": 5}),
        FakeToolCall("read_url", {"url": "https://example.com/b"}),
    ]
    gw.script(Reply(tool_calls=calls, fragment_chars=3))
    out = await collect(gateway.stream(ask(model)))
    assert out.finish is not None
    assert (out.finish.outcome, out.finish.stop_reason) == (Outcome.COMPLETE, tool_stop(model))
    assert out.text == ""
    assert [(c.id, c.name) for c in out.tool_calls] == [(c.id, c.name) for c in calls]
    assert [c.parsed() for c in out.tool_calls] == [c.arguments for c in calls]
    assert out.tool_starts == [ToolCallStarted(i, c.id or "", c.name) for i, c in enumerate(calls)]
    assert out.kinds[-1] == "Finish"
    assert len(gw.stream_requests) == 1


@BOTH
async def test_text_then_a_call(gw: FakeGateway, gateway: Gateway, model: str) -> None:
    call = FakeToolCall("read_url", {"url": "https://example.com"})
    gw.script(Reply(text="Let me read that page first.", tool_calls=[call]))
    out = await collect(gateway.stream(ask(model)))
    assert out.text == "Let me read that page first."
    assert out.tool_calls == (ToolCall(call.id or "", "read_url", '{"url": "https://example.com"}'),)
    assert out.kinds.index("ToolCallStarted") > max(i for i, k in enumerate(out.kinds) if k == "TextDelta")


@BOTH
async def test_a_call_is_announced_as_soon_as_its_name_is_known(
    gw: FakeGateway, gateway: Gateway, model: str
) -> None:
    call = FakeToolCall("read_url", {"url": "https://example.com/" + "x" * 40})
    gw.script(Reply(tool_calls=[call], fragment_chars=4, delay=0.02))
    stream = gateway.stream(ask(model))
    async for event in stream:
        if isinstance(event, ToolCallStarted):
            # The arguments are still streaming when the status line can name the tool.
            assert event.name == "read_url"
            assert gw.last.t_done is None
            break
    await stream.aclose()  # type: ignore[attr-defined]


@BOTH
async def test_malformed_arguments_are_kept_raw(gw: FakeGateway, gateway: Gateway, model: str) -> None:
    broken = '{"url": "https://example.com", oops'
    gw.script(Reply(tool_calls=[FakeToolCall("read_url", broken), FakeToolCall("read_url", "[1, 2]")]))
    out = await collect(gateway.stream(ask(model)))
    assert out.finish is not None and out.finish.outcome is Outcome.COMPLETE
    first, second = out.tool_calls
    assert first.arguments == broken and first.parsed() is None
    assert second.arguments == "[1, 2]" and second.parsed() is None  # JSON, but not an object


@BOTH
async def test_a_stream_cut_off_mid_call_is_truncated_with_no_calls(
    gw: FakeGateway, gateway: Gateway, model: str
) -> None:
    call = FakeToolCall("read_url", {"url": "https://example.com/long/path"})
    # Content frames: OpenAI opens the call in one, Anthropic in one plus an empty delta.
    gw.script(Reply(tool_calls=[call], fragment_chars=2, drop_after=4), Reply(text="must not be reached"))
    out = await collect(gateway.stream(ask(model)))
    assert out.finish is not None
    assert out.finish.outcome is Outcome.TRUNCATED
    assert out.finish.tool_calls == ()
    assert [s.name for s in out.tool_starts] == ["read_url"]
    assert len(gw.stream_requests) == 1  # the call had started: not retried


@BOTH
async def test_a_call_without_a_finish_is_truncated(gw: FakeGateway, gateway: Gateway, model: str) -> None:
    gw.script(Reply(tool_calls=[FakeToolCall("read_url", {"url": "https://e.com"})], finish=None))
    out = await collect(gateway.stream(ask(model)))
    assert out.finish is not None
    assert (out.finish.outcome, out.finish.tool_calls) == (Outcome.TRUNCATED, ())


def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    return json.dumps(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
    )


async def test_openai_quirks_calls_numbered_alike_whole_objects_and_no_ids(
    gw: FakeGateway, gateway: Gateway
) -> None:
    lines = [
        # Every parallel call numbered 0, told apart by id (seen from Gemini-style endpoints).
        chunk(
            {"tool_calls": [{"index": 0, "id": "a1", "type": "function", "function": {"name": "read_url"}}]}
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"url": "https://a"}'}}]}),
        chunk({"tool_calls": [{"index": 0, "id": "b2", "function": {"name": "read_url", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "id": "b2", "function": {"arguments": '{"url": "https://b"}'}}]}),
        # Arguments as an object, and no index and no id at all.
        chunk(
            {"tool_calls": [{"function": {"name": "tracker__search_issues", "arguments": {"query": "x"}}}]}
        ),
        chunk({}, "tool_calls"),
    ]
    gw.script(Reply.replay(lines))
    out = await collect(gateway.stream(ask(OPENAI)))
    first, second, third = out.tool_calls
    assert (first.id, first.parsed()) == ("a1", {"url": "https://a"})
    assert (second.id, second.parsed()) == ("b2", {"url": "https://b"})
    assert third.name == "tracker__search_issues" and third.parsed() == {"query": "x"}
    assert third.id.startswith("call_") and third.id == out.tool_starts[2].id
    assert len({first.id, second.id, third.id}) == 3


# Encoding.


def history(call_ids: tuple[str, str] = ("call_1", "call_2")) -> tuple[Turn, ...]:
    first, second = call_ids
    return (
        Turn.text("user", "Read both pages."),
        Turn(
            "assistant",
            (
                TextPart("Reading them now."),
                ToolCallPart(ToolCall(first, "read_url", '{"url": "https://example.com/a"}')),
                ToolCallPart(ToolCall(second, "read_url", '{"url": oops')),
            ),
        ),
        Turn(
            "user",
            (
                ToolResultPart(first, "read_url", "Page A says hello."),
                ToolResultPart(second, "read_url", "The arguments were not valid JSON.", is_error=True),
            ),
        ),
    )


async def test_openai_tools_and_results_on_the_wire(gw: FakeGateway, gateway: Gateway) -> None:
    gw.script(Reply(text="Page A says hello."))
    out = await collect(gateway.stream(ask(OPENAI, *history())))
    assert out.text == "Page A says hello."
    body = gw.last.json
    assert body["tools"][0] == {
        "type": "function",
        "function": {
            "name": "read_url",
            "description": "Fetch a web page and return its main text.",
            "parameters": {
                "type": "object",
                "properties": {"url": {"type": "string", "format": "uri"}},
                "required": ["url"],
                "additionalProperties": False,
            },
        },
    }
    assert "tool_choice" not in body
    assert body["messages"][1:] == [
        {"role": "user", "content": "Read both pages."},
        {
            "role": "assistant",
            "content": "Reading them now.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "read_url", "arguments": '{"url": "https://example.com/a"}'},
                },
                # Garbled arguments are replayed as an empty object: providers refuse bad JSON.
                {"id": "call_2", "type": "function", "function": {"name": "read_url", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Page A says hello."},
        {"role": "tool", "tool_call_id": "call_2", "content": "Error: The arguments were not valid JSON."},
    ]
    assert [(r.call_id, r.is_error) for r in gw.last.tool_results] == [("call_1", None), ("call_2", None)]


async def test_anthropic_tools_and_results_on_the_wire(gw: FakeGateway, gateway: Gateway) -> None:
    gw.script(Reply(text="Page A says hello."))
    await collect(gateway.stream(ask(ANTHROPIC, *history(("toolu_01A", "toolu_01B")))))
    body = gw.last.json
    assert body["tools"] == [
        {
            "name": "read_url",
            "description": "Fetch a web page and return its main text.",
            "input_schema": {
                "type": "object",
                "properties": {"url": {"type": "string", "format": "uri"}},
                "required": ["url"],
                "additionalProperties": False,
            },
        },
        {
            "name": "tracker__search_issues",
            "description": "Search the issue tracker.",
            "input_schema": SEARCH.parameters,
        },
    ]
    assert "tool_choice" not in body
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Reading them now."},
                {
                    "type": "tool_use",
                    "id": "toolu_01A",
                    "name": "read_url",
                    "input": {"url": "https://example.com/a"},
                },
                {"type": "tool_use", "id": "toolu_01B", "name": "read_url", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "Page A says hello."},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01B",
                    "content": "The arguments were not valid JSON.",
                    "is_error": True,
                },
            ],
        },
    ]
    assert [(r.call_id, r.is_error) for r in gw.last.tool_results] == [
        ("toolu_01A", False),
        ("toolu_01B", True),
    ]


async def test_anthropic_results_lead_their_message(gw: FakeGateway, gateway: Gateway) -> None:
    turns = (
        *history(("toolu_01A", "toolu_01B"))[:2],
        Turn(
            "user",
            (
                TextPart("And summarise."),
                ToolResultPart("toolu_01B", "read_url", ""),
                ToolResultPart("toolu_01A", "read_url", "A"),
            ),
        ),
    )
    gw.script(Reply(text="ok"))
    await collect(gateway.stream(ask(ANTHROPIC, *turns)))
    content = gw.last.json["messages"][-1]["content"]
    assert [block["type"] for block in content] == ["tool_result", "tool_result", "text"]
    assert content[0] == {"type": "tool_result", "tool_use_id": "toolu_01B", "content": "(no output)"}


@BOTH
async def test_a_whole_round_trip(gw: FakeGateway, gateway: Gateway, model: str) -> None:
    """Model calls two tools; the client sends the results back; the model answers."""
    calls = [FakeToolCall("read_url", {"url": "https://a"}), FakeToolCall("read_url", {"url": "https://b"})]
    gw.script(Reply(text="Reading.", tool_calls=calls), Reply(text="A says hi; B is empty."))
    question = Turn.text("user", "Compare a and b.")
    first = await collect(gateway.stream(ask(model, question)))
    assert len(first.tool_calls) == 2
    results = tuple(
        ToolResultPart(call.id, call.name, f"text of {call.parsed()['url']}")  # type: ignore[index]
        for call in first.tool_calls
    )
    assistant = Turn("assistant", (TextPart(first.text), *(ToolCallPart(c) for c in first.tool_calls)))
    second = await collect(gateway.stream(ask(model, question, assistant, Turn("user", results))))
    assert second.text == "A says hi; B is empty."
    sent = gw.last
    assert [(r.call_id, r.content) for r in sent.tool_results] == [
        (calls[0].id, "text of https://a"),
        (calls[1].id, "text of https://b"),
    ]
    assert [call_id for call_id, _, _ in sent.replayed_calls] == [calls[0].id, calls[1].id]


async def test_a_history_from_openai_replayed_to_anthropic(gw: FakeGateway, gateway: Gateway) -> None:
    # Ids real OpenAI-format providers gave (Kimi's "functions.name:0", an empty one, one too
    # long for OpenAI), carried into a Claude thread: each must be valid there, and every result
    # must still point at its call.
    odd = ("functions.read_url:0", "")
    turns = history(odd)
    gw.script(Reply(text="ok"))
    await collect(gateway.stream(ask(ANTHROPIC, *turns)))
    calls = [call_id for call_id, _, _ in gw.last.replayed_calls]
    results = [result.call_id for result in gw.last.tool_results]
    assert all(ANTHROPIC_ID.match(call_id) for call_id in calls)
    assert calls == results and len(set(calls)) == 2
    # The same mapping every time (a later turn replays the same history).
    gw.script(Reply(text="ok"))
    await collect(gateway.stream(ask(ANTHROPIC, *turns)))
    assert [call_id for call_id, _, _ in gw.last.replayed_calls] == calls


async def test_a_history_from_anthropic_replayed_to_openai(gw: FakeGateway, gateway: Gateway) -> None:
    long_id = "toolu_" + "x" * 60  # past OpenAI's 40 characters
    gw.script(Reply(text="ok"))
    await collect(gateway.stream(ask(OPENAI, *history(("toolu_01QE1WLsSVp5hy5Q3GmGTmjP", long_id)))))
    calls = [call_id for call_id, _, _ in gw.last.replayed_calls]
    assert calls[0] == "toolu_01QE1WLsSVp5hy5Q3GmGTmjP"
    assert len(calls[1]) <= 40 and calls[1] != long_id
    assert [result.call_id for result in gw.last.tool_results] == calls


@BOTH
async def test_tool_choice_none_keeps_the_declarations(gw: FakeGateway, gateway: Gateway, model: str) -> None:
    gw.script(Reply(text="Final answer."))
    await collect(gateway.stream(ask(model, *history(("toolu_1", "toolu_2")), tool_choice="none")))
    body = gw.last.json
    assert gw.last.tools == ["read_url", "tracker__search_issues"]
    assert body["tool_choice"] == ({"type": "none"} if model == ANTHROPIC else "none")


async def test_no_tools_offered_beside_tool_history(gw: FakeGateway, gateway: Gateway) -> None:
    turns = history(("toolu_1", "toolu_2"))
    # Anthropic refuses tool blocks without declarations: the history's tools are declared as
    # stubs and none may be called.
    gw.script(Reply(text="ok"), Reply(text="ok"))
    await collect(gateway.stream(ChatRequest(model=ANTHROPIC, system="", turns=turns)))
    body = gw.last.json
    assert body["tools"] == [
        {
            "name": "read_url",
            "description": "No longer available: do not call it.",
            "input_schema": {"type": "object", "properties": {}},
        }
    ]
    assert body["tool_choice"] == {"type": "none"}
    # OpenAI format takes the history as it is, with nothing declared.
    await collect(gateway.stream(ChatRequest(model=OPENAI, system="", turns=turns)))
    body = gw.last.json
    assert "tools" not in body and "tool_choice" not in body
    assert len(gw.last.tool_results) == 2


async def test_anthropic_tools_the_history_calls_but_no_longer_offers_get_stubs() -> None:
    request = ask(ANTHROPIC, *history())
    request = ChatRequest(model=ANTHROPIC, system="", turns=request.turns, tools=(SEARCH,))
    body = build_anthropic_body(request)
    assert [t["name"] for t in body["tools"]] == ["tracker__search_issues", "read_url"]
    assert "tool_choice" not in body


def test_anthropic_thinking_is_not_asked_for_inside_a_tool_loop() -> None:
    in_loop = ChatRequest(
        model=ANTHROPIC, system="", turns=history(), tools=(READ_URL,), thinking_budget=2048
    )
    assert "thinking" not in build_anthropic_body(in_loop)
    fresh = ChatRequest(
        model=ANTHROPIC,
        system="",
        turns=(*history(), Turn.text("assistant", "Done."), Turn.text("user", "Thanks! And now?")),
        tools=(READ_URL,),
        thinking_budget=2048,
    )
    assert build_anthropic_body(fresh)["thinking"] == {"type": "enabled", "budget_tokens": 2048}


@pytest.mark.parametrize(
    ("build", "lazy"), [(build_openai_body, lazy_openai_body), (build_anthropic_body, lazy_anthropic_body)]
)
def test_the_streamed_body_carries_tools_and_history(build: Any, lazy: Any) -> None:
    from bot.providers import DocumentPart

    request = ChatRequest(
        model="m",
        system="s",
        turns=(
            Turn("user", (TextPart("read"), DocumentPart(b"%PDF-1.7 " * 5000, "a.pdf"))),
            *history()[1:],
        ),
        tools=(READ_URL, SEARCH),
    )
    sent = bytes(encode_body(lazy(request)))
    assert json.loads(sent) == build(request)
    assert sent == json.dumps(build(request), ensure_ascii=False).encode()


# Schemas, as each format accepts them.


def test_schemas_become_object_schemas_both_formats_accept() -> None:
    from bot.providers.tools import object_schema

    # An MCP server's schema with metadata and unused definitions.
    assert object_schema(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "urn:x",
            "type": "object",
            "properties": {"q": {"type": "string"}},
            "$defs": {"unused": {"type": "string"}},
        }
    ) == {"type": "object", "properties": {"q": {"type": "string"}}}
    # Definitions something refers to stay.
    referenced = {
        "type": "object",
        "properties": {"item": {"$ref": "#/$defs/item"}},
        "$defs": {"item": {"type": "string"}},
    }
    assert object_schema(referenced) == referenced
    # No type, no properties, or no schema at all: still an object.
    assert object_schema({"properties": {"a": {"type": "integer"}}})["type"] == "object"
    assert object_schema({}) == {"type": "object", "properties": {}}
    assert object_schema(None) == {"type": "object", "properties": {}}
    assert object_schema({"type": ["object", "null"], "properties": {}})["type"] == "object"
    # A root union of objects (refused at the top level): one object with every member's
    # properties, requiring what all of them require.
    union = {
        "anyOf": [
            {
                "type": "object",
                "properties": {"id": {"type": "string"}, "kind": {"const": "a"}},
                "required": ["id", "kind"],
            },
            {
                "type": "object",
                "properties": {"name": {"type": "string"}, "kind": {"const": "b"}},
                "required": ["kind"],
            },
        ]
    }
    assert object_schema(union) == {
        "type": "object",
        "properties": {"id": {"type": "string"}, "kind": {"const": "a"}, "name": {"type": "string"}},
        "required": ["kind"],
    }
    # The spec itself is left as it was.
    assert "anyOf" in union


def test_ids_fit_both_formats_and_map_the_same_way_every_time() -> None:
    from bot.providers.tools import wire_id

    for kept in ("call_NZa7xqfefoaMI2YYHowVXVlU", "toolu_01QE1WLsSVp5hy5Q3GmGTmjP", "tk85n1k4m"):
        assert wire_id(kept) == kept
    for odd in ("functions.read_url:0", "", "x" * 41, "call 1", "呼叫"):
        mapped = wire_id(odd)
        assert ANTHROPIC_ID.match(mapped) and len(mapped) <= 40
        assert mapped == wire_id(odd)
    assert wire_id("a.b") != wire_id("a:b")


@BOTH
async def test_the_fake_echoes_the_question_not_the_tool_results(
    gw: FakeGateway, gateway: Gateway, model: str
) -> None:
    out = await collect(gateway.stream(ask(model, *history(("toolu_1", "toolu_2")))))
    assert out.text == "You said: Read both pages."
