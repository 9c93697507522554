"""Both providers through the real httpx client against the fake gateway: content, request
bodies, error mapping, retries, timeouts, truncation, cancellation and wire quirks."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from bot.providers import ChatRequest, DocumentPart, Gateway, GatewayPolicy, ImagePart, TextPart, Turn, errors
from bot.providers.base import Finish, TextDelta
from bot.settings import Settings
from bot.types import Outcome
from tests.fakes.gateway import FakeGateway, FakeUsage, Reply, collect

OPENAI, ANTHROPIC = "gemini-2.5-flash", "claude-sonnet-4-5"
BOTH = pytest.mark.parametrize("model", [OPENAI, ANTHROPIC], ids=["openai", "anthropic"])
KEY = "test-key"

FAST = GatewayPolicy(
    connect_timeout=1.0,
    first_token_timeout=1.0,
    idle_timeout=0.3,
    max_retries=3,
    retry_deadline=5.0,
    backoff_base=0.01,
    backoff_cap=0.05,
)


@pytest.fixture
async def gw() -> AsyncIterator[FakeGateway]:
    async with FakeGateway(api_key=KEY) as fake:
        yield fake


def make_gateway(gw: FakeGateway, policy: GatewayPolicy = FAST, key: str | None = KEY) -> Gateway:
    return Gateway(
        Settings(apicore_base_url=gw.url, apicore_api_key=SecretStr(key) if key else None), policy=policy
    )


@pytest.fixture
async def gateway(gw: FakeGateway) -> AsyncIterator[Gateway]:
    async with make_gateway(gw) as g:
        yield g


def ask(model: str, text: str = "hello", **kw: object) -> ChatRequest:
    return ChatRequest(model=model, system="Be brief.", turns=[Turn.text("user", text)], **kw)  # type: ignore[arg-type]


def is_anthropic(model: str) -> bool:
    return model == ANTHROPIC


# Content.


@BOTH
async def test_text_usage_and_finish(gw: FakeGateway, gateway: Gateway, model: str) -> None:
    gw.script(Reply(usage=FakeUsage(input_tokens=11, output_tokens=7, cache_read_tokens=3)))
    out = await collect(gateway.stream(ask(model, "héllo there")))
    assert out.text == "You said: héllo there"
    assert out.thinking == ""
    assert out.finish is not None
    assert out.finish.outcome is Outcome.COMPLETE
    assert out.finish.stop_reason == ("end_turn" if is_anthropic(model) else "stop")
    assert out.finish.error is None
    usage = out.finish.usage
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (11, 7, 3)
    assert out.usage_reports and out.usage_reports[-1] == usage
    assert out.kinds[-1] == "Finish"
    assert len(gw.stream_requests) == 1


@BOTH
async def test_thinking_is_kept_apart_from_the_answer(gw: FakeGateway, gateway: Gateway, model: str) -> None:
    gw.script(
        Reply(
            text="The answer is 21.",
            thinking="Euclid: 1071 = 2·462 + 147, …",
            usage=FakeUsage(input_tokens=40, output_tokens=30, thinking_tokens=12),
        )
    )
    out = await collect(gateway.stream(ask(model, "gcd(1071, 462)?")))
    assert out.thinking == "Euclid: 1071 = 2·462 + 147, …"
    assert out.text == "The answer is 21."
    first_text = out.kinds.index("TextDelta")
    assert "ThinkingDelta" not in out.kinds[first_text:]
    assert out.finish is not None
    assert out.finish.usage.thinking_tokens == 12
    assert out.finish.usage.output_tokens == 30


@BOTH
async def test_an_empty_answer_with_a_stop_reason_is_complete(
    gw: FakeGateway, gateway: Gateway, model: str
) -> None:
    gw.script(Reply(text=""))
    out = await collect(gateway.stream(ask(model)))
    assert out.text == ""
    assert out.finish is not None and out.finish.outcome is Outcome.COMPLETE
    assert len(gw.stream_requests) == 1


@pytest.mark.parametrize(
    ("model", "finish", "outcome", "wire"),
    [
        (OPENAI, "length", Outcome.LENGTH, "length"),
        (OPENAI, "filtered", Outcome.FILTERED, "content_filter"),
        (OPENAI, "tool_calls", Outcome.COMPLETE, "tool_calls"),
        (ANTHROPIC, "length", Outcome.LENGTH, "max_tokens"),
        (ANTHROPIC, "filtered", Outcome.FILTERED, "refusal"),
        (ANTHROPIC, "stop_sequence", Outcome.COMPLETE, "stop_sequence"),
    ],
)
async def test_stop_reasons_map_to_outcomes(
    gw: FakeGateway, gateway: Gateway, model: str, finish: str, outcome: Outcome, wire: str
) -> None:
    gw.script(Reply(text="partial answer", finish=finish))
    out = await collect(gateway.stream(ask(model)))
    assert out.finish is not None
    assert (out.finish.outcome, out.finish.stop_reason) == (outcome, wire)
    assert out.text == "partial answer"


@BOTH
async def test_no_stop_reason_is_truncated_not_complete(
    gw: FakeGateway, gateway: Gateway, model: str
) -> None:
    # OpenAI format: usage and [DONE] still arrive, as from a stalled upstream.
    gw.script(Reply(text="cut off mid", finish=None, usage=FakeUsage(5, 3)))
    out = await collect(gateway.stream(ask(model)))
    assert out.text == "cut off mid"
    assert out.finish is not None
    assert out.finish.outcome is Outcome.TRUNCATED
    assert out.finish.error is None
    if not is_anthropic(model):
        assert out.finish.usage.output_tokens == 3
    assert len(gw.stream_requests) == 1  # text went out, so no retry


# Request bodies.

PNG = b"\x89PNG\r\n\x1a\n fake image"
PDF = b"%PDF-1.7 fake document"


def rich_request(model: str, **kw: object) -> ChatRequest:
    return ChatRequest(
        model=model,
        system="You are Parley.",
        turns=[
            Turn.text("user", "earlier question"),
            Turn.text("assistant", "earlier answer"),
            Turn(
                "user",
                (
                    TextPart("what is in these?"),
                    ImagePart(PNG, "image/png", "shot.png"),
                    DocumentPart(PDF, "report.pdf", cache=True),
                ),
            ),
        ],
        **kw,  # type: ignore[arg-type]
    )


async def test_openai_request_body_and_headers(gw: FakeGateway, gateway: Gateway) -> None:
    await collect(gateway.stream(rich_request(OPENAI, max_tokens=123, temperature=0.2, extra={"top_p": 0.9})))
    sent = gw.last
    assert sent.path == "/v1/chat/completions"
    assert sent.header("authorization") == f"Bearer {KEY}"
    body = sent.json
    assert body["model"] == OPENAI
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert (body["max_tokens"], body["temperature"], body["top_p"]) == (123, 0.2, 0.9)
    messages = body["messages"]
    assert messages[0] == {"role": "system", "content": "You are Parley."}
    assert messages[1] == {"role": "user", "content": "earlier question"}
    assert messages[2] == {"role": "assistant", "content": "earlier answer"}
    text, image, document = messages[3]["content"]
    assert text == {"type": "text", "text": "what is in these?"}
    assert image == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
    }
    assert document == {
        "type": "file",
        "file": {
            "filename": "report.pdf",
            "file_data": "data:application/pdf;base64," + base64.b64encode(PDF).decode(),
        },
    }


async def test_anthropic_request_body_and_headers(gw: FakeGateway, gateway: Gateway) -> None:
    await collect(gateway.stream(rich_request(ANTHROPIC, max_tokens=500, temperature=0.3)))
    sent = gw.last
    assert sent.path == "/v1/messages"
    assert sent.header("authorization") == f"Bearer {KEY}"
    assert sent.header("x-api-key") == KEY
    assert sent.header("anthropic-version") == "2023-06-01"
    body = sent.json
    assert body["system"] == "You are Parley."
    assert all(m["role"] != "system" for m in body["messages"])
    assert (body["max_tokens"], body["temperature"], body["stream"]) == (500, 0.3, True)
    assert "thinking" not in body
    assert body["messages"][0] == {"role": "user", "content": [{"type": "text", "text": "earlier question"}]}
    text, image, document = body["messages"][2]["content"]
    assert text == {"type": "text", "text": "what is in these?"}
    assert image == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(PNG).decode()},
    }
    assert document == {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": base64.b64encode(PDF).decode()},
        "title": "report.pdf",
        "cache_control": {"type": "ephemeral"},
    }


async def test_anthropic_thinking_request(gw: FakeGateway, gateway: Gateway) -> None:
    out = await collect(
        gateway.stream(ask(ANTHROPIC, max_tokens=1000, temperature=0.5, thinking_budget=2048))
    )
    body = gw.last.json
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["max_tokens"] > 2048  # the budget counts inside max_tokens
    assert "temperature" not in body  # not allowed with thinking
    assert out.thinking  # the fake thinks when asked to
    assert out.text == "You said: hello"


# Errors before the stream.

ERROR_CASES = [
    (Reply.http_error(401, "无效的令牌 (request id: x)"), errors.AuthError),
    (Reply.http_error(401, "该令牌额度已用尽 (quota used up)"), errors.QuotaError),
    (Reply.http_error(403, "用户额度不足", shape="anthropic", type="permission_error"), errors.QuotaError),
    (Reply.http_error(403, "model gemini-2.5-pro not allowed for this token"), errors.ModelNotAvailable),
    (
        Reply.http_error(503, "当前分组 default 下对于模型 x 无可用渠道", code="model_not_found"),
        errors.ModelNotAvailable,
    ),
    (
        Reply.http_error(404, "The model `nope` does not exist", code="model_not_found"),
        errors.ModelNotAvailable,
    ),
    (Reply.http_error(413, shape="empty"), errors.RequestTooLarge),
    (
        Reply.http_error(
            400, "messages: roles must alternate", shape="anthropic", type="invalid_request_error"
        ),
        errors.BadRequest,
    ),
    (Reply.http_error(429, "quota", type="insufficient_quota", code="insufficient_quota"), errors.QuotaError),
]


@BOTH
@pytest.mark.parametrize(("reply", "expected"), ERROR_CASES)
async def test_errors_before_the_stream_are_typed_and_not_retried(
    gw: FakeGateway, gateway: Gateway, model: str, reply: Reply, expected: type[errors.ProviderError]
) -> None:
    gw.script(reply, Reply(text="must not be reached"))
    with pytest.raises(errors.ProviderError) as caught:
        await collect(gateway.stream(ask(model)))
    assert type(caught.value) is expected
    if expected is errors.BadRequest:
        # No sentence of ours fits, so the gateway's own reason completes the generic one.
        said = "The gateway rejected the request: messages: roles must alternate."
        assert caught.value.user_message == said
    else:
        assert caught.value.user_message == expected.user_message
    assert caught.value.status == reply.status
    assert len(gw.stream_requests) == 1


async def test_a_wrong_key_is_an_auth_error_that_never_shows_the_key(gw: FakeGateway) -> None:
    gw.script_path(
        "/v1/chat/completions", Reply.http_error(401, "invalid token sk-wrong-key-123 (request id: 1)")
    )
    async with make_gateway(gw, key="sk-wrong-key-123") as gateway:
        with pytest.raises(errors.AuthError) as caught:
            await collect(gateway.stream(ask(OPENAI)))
        assert "sk-wrong-key-123" not in str(caught.value)
        # And the fake's own key check answers with the real 401 shape.
        with pytest.raises(errors.AuthError) as caught:
            await collect(gateway.stream(ask(ANTHROPIC)))
        assert "无效的令牌" in str(caught.value)
        assert caught.value.user_message == errors.AuthError.user_message
    assert len(gw.stream_requests) == 2


async def test_missing_key_sends_nothing(gw: FakeGateway) -> None:
    async with make_gateway(gw, key=None) as gateway:
        with pytest.raises(errors.MissingApiKey) as caught:
            await collect(gateway.stream(ask(OPENAI)))
    assert "APICORE_API_KEY" in caught.value.user_message
    assert gw.requests == []


# Retries.


@BOTH
@pytest.mark.parametrize(
    "failure",
    [
        Reply.http_error(503, "The model is overloaded. Please try again later."),
        Reply.http_error(529, "Overloaded", shape="anthropic", type="overloaded_error"),
        Reply.http_error(500, shape="empty"),
        Reply.http_error(502, "bad gateway"),
        Reply.http_error(429, shape="empty"),
        Reply.http_error(429, "rate limited", retry_after="0"),
        Reply(drop_after=0),  # the stream broke before the first token
    ],
    ids=["503", "529", "500-empty", "502", "429-empty", "429-retry-after", "drop-before-token"],
)
async def test_retryable_failures_before_the_first_token_are_retried(
    gw: FakeGateway, gateway: Gateway, model: str, failure: Reply
) -> None:
    gw.script(failure, failure, Reply(text="finally"))
    out = await collect(gateway.stream(ask(model)))
    assert out.text == "finally"
    assert out.finish is not None and out.finish.outcome is Outcome.COMPLETE
    assert len(gw.stream_requests) == 3


async def test_retry_after_is_honoured(gw: FakeGateway, gateway: Gateway) -> None:
    gw.script(Reply.http_error(429, "slow down", retry_after="0.4"), Reply(text="ok"))
    out = await collect(gateway.stream(ask(OPENAI)))
    assert out.text == "ok"
    first, second = gw.stream_requests
    assert second.t_received - first.t_received >= 0.4


async def test_retry_after_past_the_deadline_gives_up_at_once(gw: FakeGateway, gateway: Gateway) -> None:
    gw.script(Reply.http_error(429, "slow down", retry_after="60"), Reply(text="too late"))
    started = time.monotonic()
    with pytest.raises(errors.RateLimitedError) as caught:
        await collect(gateway.stream(ask(OPENAI)))
    assert time.monotonic() - started < 1.0
    assert caught.value.retry_after == 60.0
    assert len(gw.stream_requests) == 1


@BOTH
async def test_retries_are_bounded(gw: FakeGateway, gateway: Gateway, model: str) -> None:
    gw.script(*[Reply.http_error(503, "overloaded")] * 5, Reply(text="never"))
    with pytest.raises(errors.OverloadedError):
        await collect(gateway.stream(ask(model)))
    assert len(gw.stream_requests) == FAST.max_retries + 1


async def test_connection_refused_is_a_connect_error() -> None:
    async with FakeGateway() as gone:
        url = gone.url
    policy = GatewayPolicy(connect_timeout=0.5, max_retries=2, backoff_base=0.01, backoff_cap=0.02)
    async with Gateway(
        Settings(apicore_base_url=url, apicore_api_key=SecretStr(KEY)), policy=policy
    ) as gateway:
        with pytest.raises(errors.ConnectError) as caught:
            await collect(gateway.stream(ask(OPENAI)))
    assert caught.value.user_message == errors.ConnectError.user_message


# Failures after the first token: never retried, never raised.


@BOTH
async def test_disconnect_after_the_first_token_truncates_without_retry(
    gw: FakeGateway, gateway: Gateway, model: str
) -> None:
    gw.script(Reply(text="one two three four", drop_after=2), Reply(text="a retry would show this"))
    out = await collect(gateway.stream(ask(model)))
    assert out.text == "one two "
    assert out.finish is not None
    assert out.finish.outcome is Outcome.TRUNCATED
    assert isinstance(out.finish.error, errors.StreamBroken)
    assert len(gw.stream_requests) == 1


@BOTH
async def test_a_stall_after_the_first_token_hits_the_idle_timeout(
    gw: FakeGateway, gateway: Gateway, model: str
) -> None:
    # Keep-alives keep flowing during the stall: they must not keep the reply hanging.
    gw.script(Reply(text="one two three", stall_after=2, ping_interval=0.05))
    started = time.monotonic()
    async with asyncio.timeout(3):
        out = await collect(gateway.stream(ask(model)))
    elapsed = time.monotonic() - started
    assert out.text == "one two "
    assert out.finish is not None
    assert out.finish.outcome is Outcome.TRUNCATED
    assert isinstance(out.finish.error, errors.GatewayTimeout)
    assert FAST.idle_timeout <= elapsed < FAST.idle_timeout + 1.0
    assert len(gw.stream_requests) == 1
    assert await gw.wait_for_disconnects(1, within=1.0)  # the stalled response was closed


@BOTH
async def test_slow_but_steady_tokens_do_not_trip_the_idle_timeout(
    gw: FakeGateway, gateway: Gateway, model: str
) -> None:
    gw.script(Reply.paced("a b c d e f", tokens_per_s=10))  # 0.1 s apart, idle is 0.3 s
    out = await collect(gateway.stream(ask(model)))
    assert out.text == "a b c d e f"
    assert out.finish is not None and out.finish.outcome is Outcome.COMPLETE


@BOTH
async def test_first_token_timeout_is_not_reset_by_pings(gw: FakeGateway, model: str) -> None:
    policy = GatewayPolicy(first_token_timeout=0.4, idle_timeout=5.0, max_retries=0)
    gw.script(Reply(text="late", first_delay=3.0, ping_interval=0.05))
    started = time.monotonic()
    async with make_gateway(gw, policy) as gateway:
        with pytest.raises(errors.GatewayTimeout):
            await collect(gateway.stream(ask(model)))
    assert time.monotonic() - started < 1.5


@BOTH
async def test_a_first_token_timeout_is_retried_within_the_deadline(gw: FakeGateway, model: str) -> None:
    policy = GatewayPolicy(first_token_timeout=0.3, max_retries=2, retry_deadline=5.0, backoff_base=0.01)
    gw.script(Reply(stall_after=0), Reply(text="second try"))
    async with make_gateway(gw, policy) as gateway:
        out = await collect(gateway.stream(ask(model)))
    assert out.text == "second try"
    assert len(gw.stream_requests) == 2


async def test_bare_json_error_line_mid_stream_is_an_error(gw: FakeGateway, gateway: Gateway) -> None:
    gw.script(Reply(text="one two three", error_after=1))
    out = await collect(gateway.stream(ask(OPENAI)))
    assert out.text == "one "
    assert out.finish is not None
    assert out.finish.outcome is Outcome.ERROR
    assert isinstance(out.finish.error, errors.UpstreamError)
    assert "upstream stream failed" in str(out.finish.error)
    assert out.finish.error.user_message.endswith("while answering: upstream stream failed.")
    assert len(gw.stream_requests) == 1


async def test_bare_json_error_line_before_the_first_token_raises(gw: FakeGateway, gateway: Gateway) -> None:
    gw.script(Reply(text="never", error_after=0))
    with pytest.raises(errors.UpstreamError):
        await collect(gateway.stream(ask(OPENAI)))
    assert len(gw.stream_requests) == 1


async def test_anthropic_error_event_after_the_first_token_is_an_error(
    gw: FakeGateway, gateway: Gateway
) -> None:
    gw.script(Reply(text="one two three", error_after=2))
    out = await collect(gateway.stream(ask(ANTHROPIC)))
    assert out.text == "one two "
    assert out.finish is not None
    assert out.finish.outcome is Outcome.ERROR
    assert isinstance(out.finish.error, errors.OverloadedError)
    assert len(gw.stream_requests) == 1


@pytest.mark.parametrize("as_data", [False, True], ids=["bare-line", "data-line"])
async def test_an_error_mid_stream_carries_the_gateways_reason(
    gw: FakeGateway, gateway: Gateway, as_data: bool
) -> None:
    error = {
        "error": {
            "message": "Tool choice is required, but model did not call a tool",
            "type": "invalid_request_error",
            "code": "tool_use_failed",
        }
    }
    gw.script(Reply(text="one two three", error_after=2, error=error, error_as_data=as_data))
    out = await collect(gateway.stream(ask(OPENAI)))
    assert out.text == "one two "
    assert out.finish is not None and out.finish.outcome is Outcome.ERROR
    failure = out.finish.error
    assert isinstance(failure, errors.BadRequest)
    assert failure.user_message == (
        "The gateway rejected the request: Tool choice is required, but model did not call a tool."
    )
    assert "tool_use_failed" in failure.detail and "did not call a tool" in failure.detail
    assert len(gw.stream_requests) == 1


async def test_an_anthropic_overloaded_event_mid_stream_gets_the_busy_sentence(
    gw: FakeGateway, gateway: Gateway
) -> None:
    gw.script(Reply(text="one two three", error_after=1))  # the fake's default: overloaded_error
    out = await collect(gateway.stream(ask(ANTHROPIC)))
    assert out.text == "one "
    assert out.finish is not None and out.finish.outcome is Outcome.ERROR
    failure = out.finish.error
    assert isinstance(failure, errors.OverloadedError)
    assert failure.user_message == errors.OverloadedError.user_message
    assert failure.detail == "stream error (overloaded_error): Overloaded"


async def test_anthropic_overloaded_event_before_the_first_token_is_retried(
    gw: FakeGateway, gateway: Gateway
) -> None:
    gw.script(Reply(error_after=0), Reply(text="recovered"))
    out = await collect(gateway.stream(ask(ANTHROPIC)))
    assert out.text == "recovered"
    assert len(gw.stream_requests) == 2


async def test_anthropic_invalid_request_event_is_not_retried(gw: FakeGateway, gateway: Gateway) -> None:
    error = {"type": "error", "error": {"type": "invalid_request_error", "message": "bad image"}}
    gw.script(Reply(error_after=0, error=error), Reply(text="never"))
    with pytest.raises(errors.BadRequest):
        await collect(gateway.stream(ask(ANTHROPIC)))
    assert len(gw.stream_requests) == 1


# Cancellation.


@BOTH
async def test_cancelling_the_consumer_closes_the_upstream(
    gw: FakeGateway, gateway: Gateway, model: str
) -> None:
    gw.script(Reply.paced("word " * 200, tokens_per_s=50))
    first = asyncio.Event()

    async def consume() -> None:
        async for event in gateway.stream(ask(model)):
            if isinstance(event, TextDelta):
                first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await gw.wait_for_disconnects(1, within=0.5)
    assert len(gw.last.text_sent) < len("word " * 200)


@BOTH
async def test_aclose_closes_the_upstream(gw: FakeGateway, gateway: Gateway, model: str) -> None:
    gw.script(Reply.paced("word " * 200, tokens_per_s=50))
    stream = gateway.stream(ask(model))
    assert isinstance(stream, AsyncIterator)
    while not isinstance(await anext(stream), TextDelta):
        pass
    await stream.aclose()  # type: ignore[attr-defined]
    assert await gw.wait_for_disconnects(1, within=0.5)


# Wire quirks.


@BOTH
async def test_utf8_characters_split_across_network_chunks(
    gw: FakeGateway, gateway: Gateway, model: str
) -> None:
    text = "héllo wörld — 世界 🎉 ok"
    gw.script(Reply(text=text, split_bytes=1))  # every byte its own chunk
    out = await collect(gateway.stream(ask(model)))
    assert out.text == text
    assert out.finish is not None and out.finish.outcome is Outcome.COMPLETE


@BOTH
@pytest.mark.parametrize("ending", ["\r\n", "\r"], ids=["crlf", "cr"])
async def test_crlf_and_cr_line_endings(gw: FakeGateway, gateway: Gateway, model: str, ending: str) -> None:
    gw.script(Reply(text="line endings\nvary", line_ending=ending, split_bytes=7, thinking="hm"))
    out = await collect(gateway.stream(ask(model)))
    assert out.text == "line endings\nvary"
    assert out.thinking == "hm"
    assert out.finish is not None and out.finish.outcome is Outcome.COMPLETE


@BOTH
async def test_garbage_in_the_stream_is_skipped(gw: FakeGateway, gateway: Gateway, model: str) -> None:
    gw.script(Reply(text="a b c", garbage_after=1))
    out = await collect(gateway.stream(ask(model)))
    assert out.text == "a b c"
    assert out.finish is not None and out.finish.outcome is Outcome.COMPLETE


@BOTH
async def test_keepalives_before_the_first_token_are_harmless(
    gw: FakeGateway, gateway: Gateway, model: str
) -> None:
    gw.script(Reply(text="after pings", first_delay=0.2, ping_interval=0.03))
    out = await collect(gateway.stream(ask(model)))
    assert out.text == "after pings"


@BOTH
async def test_finished_streams_leave_the_connection_reusable(
    gw: FakeGateway, gateway: Gateway, model: str
) -> None:
    await collect(gateway.stream(ask(model)))
    await collect(gateway.stream(ask(model)))
    first, second = gw.stream_requests
    assert first.peer == second.peer  # drained to the end, so the pooled connection was reused


@BOTH
async def test_a_slow_consumer_is_not_mistaken_for_a_stalled_upstream(
    gw: FakeGateway, gateway: Gateway, model: str
) -> None:
    # The consumer (say, a renderer waiting on a rate limit) holds each event longer than the
    # idle timeout; the upstream is fine, so nothing may time out or be cancelled.
    gw.script(Reply(text="a b"))
    texts: list[str] = []
    finish = None
    async for event in gateway.stream(ask(model)):
        if isinstance(event, TextDelta):
            texts.append(event.text)
            await asyncio.sleep(FAST.idle_timeout + 0.1)
        elif isinstance(event, Finish):
            finish = event
    assert "".join(texts) == "a b"
    assert finish is not None and finish.outcome is Outcome.COMPLETE


async def test_anthropic_cache_breakpoints_are_marked_and_capped(gw: FakeGateway, gateway: Gateway) -> None:
    turns = [
        Turn("user", (DocumentPart(PDF, f"doc{i}.pdf", cache=True), TextPart(f"question {i}", cache=True)))
        for i in range(3)
    ]
    await collect(gateway.stream(ChatRequest(model=ANTHROPIC, system="", turns=turns)))
    blocks = [block for message in gw.last.json["messages"] for block in message["content"]]
    marked = [block.get("title") or block.get("text") for block in blocks if "cache_control" in block]
    # Six markers asked for, four allowed: the latest ones, which cover the longest prefix.
    assert marked == ["doc1.pdf", "question 1", "doc2.pdf", "question 2"]
    assert all(block.get("cache_control") in (None, {"type": "ephemeral"}) for block in blocks)
