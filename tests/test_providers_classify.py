"""Error classification, Retry-After, backoff and the policy, as pure functions."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from bot.providers import errors
from bot.providers.classify import (
    error_from_response,
    error_from_stream,
    parse_error_body,
    parse_error_payload,
    parse_retry_after,
)
from bot.providers.policy import GatewayPolicy
from bot.providers.retry import backoff, retry_delay
from bot.settings import Settings


def openai_body(message: str, type_: str = "new_api_error", code: str = "") -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "code": code}}).encode()


def anthropic_body(message: str, type_: str) -> bytes:
    return json.dumps({"type": "error", "error": {"type": type_, "message": message}}).encode()


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, openai_body("无效的令牌 (request id: 1)"), errors.AuthError),
        (401, openai_body("该令牌额度已用尽"), errors.QuotaError),
        (401, anthropic_body("Your API key quota is used up", "authentication_error"), errors.QuotaError),
        (401, b"", errors.AuthError),
        (402, b"", errors.QuotaError),
        (403, openai_body("用户额度不足, 剩余额度: $0.01"), errors.QuotaError),
        (403, openai_body("insufficient user quota"), errors.QuotaError),
        (403, openai_body("该令牌无权访问模型 gemini-2.5-pro"), errors.ModelNotAvailable),
        (403, anthropic_body("model not allowed", "permission_error"), errors.ModelNotAvailable),
        (
            404,
            openai_body("The model `x` does not exist", "invalid_request_error", "model_not_found"),
            errors.ModelNotAvailable,
        ),
        (404, b"404 page not found", errors.BadRequest),
        (
            503,
            openai_body("当前分组 default 下对于模型 x 无可用渠道", code="model_not_found"),
            errors.ModelNotAvailable,
        ),
        (503, openai_body("The model is overloaded. Please try again later."), errors.OverloadedError),
        (503, b"", errors.OverloadedError),
        (413, b"", errors.RequestTooLarge),
        (400, anthropic_body("messages: field required", "invalid_request_error"), errors.BadRequest),
        (
            400,
            anthropic_body("prompt is too long: 250000 tokens > 200000 maximum", "invalid_request_error"),
            errors.RequestTooLarge,
        ),
        (429, b"", errors.RateLimitedError),
        (
            429,
            openai_body("You exceeded your current quota", "insufficient_quota", "insufficient_quota"),
            errors.QuotaError,
        ),
        (500, b"<html>Internal Server Error</html>", errors.OverloadedError),
        (502, b"", errors.OverloadedError),
        (529, anthropic_body("Overloaded", "overloaded_error"), errors.OverloadedError),
        (504, b"", errors.GatewayTimeout),
        (418, b"", errors.BadRequest),
    ],
)
def test_status_and_body_map_to_the_right_error(
    status: int, body: bytes, expected: type[errors.ProviderError]
) -> None:
    error = error_from_response(status, body, {})
    assert type(error) is expected
    assert error.status == status
    assert str(status) in error.detail


def test_both_error_shapes_and_empty_bodies_parse() -> None:
    assert parse_error_body(openai_body("m", "t", "c")).message == "m"
    info = parse_error_body(anthropic_body("m2", "overloaded_error"))
    assert (info.message, info.type) == ("m2", "overloaded_error")
    assert parse_error_body(b"").message == ""
    assert parse_error_body(b"  \n").message == ""
    assert parse_error_body(b'{"error": "plain string"}').message == "plain string"
    assert parse_error_body(b"not json at all").message == "not json at all"


def test_the_key_never_reaches_an_error_message() -> None:
    error = error_from_response(
        401, openai_body("invalid key sk-secret-123 given"), {}, secret="sk-secret-123"
    )
    assert "sk-secret-123" not in str(error)
    assert "sk-secret-123" not in error.detail
    assert "***" in error.detail


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            errors.OverloadedError,
        ),
        (
            {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
            errors.RateLimitedError,
        ),
        ({"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}, errors.BadRequest),
        (
            {"error": {"message": "boom", "type": "upstream_error", "code": "bad_response"}},
            errors.UpstreamError,
        ),
        (
            {"error": {"message": "upstream 503", "type": "upstream_error", "code": 503}},
            errors.OverloadedError,
        ),
        ({"error": {"message": "server overloaded", "type": "x"}}, errors.OverloadedError),
    ],
)
def test_in_stream_errors_map_by_type_and_code(payload: object, expected: type[errors.ProviderError]) -> None:
    assert type(error_from_stream(payload)) is expected


def test_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None
    now = datetime(2026, 1, 1, tzinfo=UTC)
    date = format_datetime(now + timedelta(seconds=20), usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=now.timestamp()) == pytest.approx(20.0)
    past = format_datetime(now - timedelta(seconds=20), usegmt=True)
    assert parse_retry_after({"retry-after": past}, now=now.timestamp()) == 0.0


def test_429_keeps_its_retry_after() -> None:
    error = error_from_response(429, b"", {"retry-after": "2"})
    assert isinstance(error, errors.RateLimitedError)
    assert error.retry_after == 2.0


POLICY = GatewayPolicy(max_retries=3, retry_deadline=10.0, backoff_base=0.5, backoff_cap=2.0)


def test_backoff_is_full_jitter_below_an_exponential_cap() -> None:
    rng = random.Random(7)
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (5, 2.0)]:
        samples = [backoff(attempt, POLICY, rng) for _ in range(300)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # the whole range is used, not a fixed delay
        assert min(samples) < ceiling * 0.2


def test_retry_delay_rules() -> None:
    rng = random.Random(1)
    overloaded = errors.OverloadedError("x")
    assert retry_delay(overloaded, 0, 0.0, POLICY, rng) is not None
    assert retry_delay(overloaded, 3, 0.0, POLICY, rng) is None  # max_retries reached
    assert retry_delay(overloaded, 0, 10.5, POLICY, rng) is None  # past the deadline
    for never in (
        errors.BadRequest(),
        errors.AuthError(),
        errors.QuotaError(),
        errors.RequestTooLarge(),
        errors.ModelNotAvailable(),
        errors.UpstreamError(),
    ):
        assert retry_delay(never, 0, 0.0, POLICY, rng) is None
    limited = errors.RateLimitedError("x", retry_after=3.0)
    delay = retry_delay(limited, 0, 0.0, POLICY, rng)
    assert delay is not None and 3.0 <= delay <= 3.5
    # A Retry-After that reaches past the deadline means giving up now, not retrying early.
    assert retry_delay(errors.RateLimitedError("x", retry_after=60.0), 0, 0.0, POLICY, rng) is None
    assert retry_delay(limited, 0, 8.0, POLICY, rng) is None


def test_policy_from_settings() -> None:
    settings = Settings(
        parley_connect_timeout=2,
        parley_first_token_timeout=30,
        parley_idle_timeout=15,
        parley_max_retries=5,
        parley_retry_deadline=45,
    )
    policy = GatewayPolicy.from_settings(settings)
    assert (policy.connect_timeout, policy.first_token_timeout, policy.idle_timeout) == (2, 30, 15)
    assert (policy.max_retries, policy.retry_deadline) == (5, 45)
    assert policy.httpx_timeout().connect == 2


# The gateway's own reason, for errors no sentence of ours fits.


@pytest.mark.parametrize(
    ("payload", "expected", "sentence"),
    [
        (
            {
                "error": {
                    "message": "Tool choice is required, but model did not call a tool",
                    "type": "invalid_request_error",
                    "code": "tool_use_failed",
                    "failed_generation": "",
                }
            },
            errors.BadRequest,
            "The gateway rejected the request: Tool choice is required, but model did not call a tool.",
        ),
        (
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            errors.OverloadedError,
            errors.OverloadedError.user_message,
        ),
        (
            {"error": {"message": "Rate limit reached for requests", "type": "requests", "code": "x"}},
            errors.RateLimitedError,
            errors.RateLimitedError.user_message,
        ),
        (
            {
                "type": "error",
                "error": {"type": "invalid_request_error", "message": "prompt is too long: 9 > 8"},
            },
            errors.RequestTooLarge,
            errors.RequestTooLarge.user_message,
        ),
        (
            {"error": {"message": "upstream said no\n\n  twice", "type": "upstream_error"}},
            errors.UpstreamError,
            "The model reported an error while answering: upstream said no twice.",
        ),
        (
            {"error": {"message": "", "type": "upstream_error"}},
            errors.UpstreamError,
            errors.UpstreamError.user_message,
        ),
    ],
)
def test_stream_errors_say_what_happened(
    payload: object, expected: type[errors.ProviderError], sentence: str
) -> None:
    error = error_from_stream(payload)
    assert type(error) is expected
    assert error.user_message == sentence
    info = parse_error_payload(payload)
    # The log detail keeps the gateway's type, code and message as they were.
    assert info.message.split("\n")[0] in error.detail
    assert (info.code or info.type) in error.detail


def test_the_reason_is_scrubbed_trimmed_and_one_line() -> None:
    message = (
        "bad key sk-live-ABCDEFGH12345678 and Bearer abc.def-123456 for parley-key-9999 "
        "(request id: 20251207123456789)\n" + "x" * 400
    )
    error = error_from_stream(
        {"error": {"message": message, "type": "new_api_error"}}, secret="parley-key-9999"
    )
    shown = error.user_message
    for secret in ("sk-live-ABCDEFGH12345678", "abc.def-123456", "parley-key-9999"):
        assert secret not in shown
        assert secret not in error.detail
        assert secret not in str(error)
    assert "request id" not in shown and "request id" in error.detail  # kept for the log
    assert "\n" not in shown
    assert shown.endswith("…") and len(shown) < 300


def test_a_proxy_page_is_no_reason() -> None:
    error = error_from_response(400, b"<html><body><h1>400 Bad Request</h1></body></html>", {})
    assert error.user_message == errors.BadRequest.user_message


def test_http_errors_keep_their_own_sentences() -> None:
    # Only the generic sentences take the gateway's words: the others already say what to do.
    error = error_from_response(401, openai_body("无效的令牌 (request id: 1)"), {})
    assert error.user_message == errors.AuthError.user_message
    error = error_from_response(400, openai_body("messages.0.content: Field required"), {})
    assert error.user_message == "The gateway rejected the request: messages.0.content: Field required."
