"""Turning the gateway's error answers (HTTP statuses, error bodies, in-stream error payloads) into
the typed errors of :mod:`bot.providers.errors`.

The gateway (new-api) speaks two error shapes, ``{"error":{"message","type","code"}}`` and
Anthropic's ``{"type":"error","error":{"type","message"}}``, and its messages are often Chinese,
so the keyword checks below look for both languages.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.providers.errors import (
    AuthError,
    BadRequest,
    GatewayTimeout,
    ModelNotAvailable,
    OverloadedError,
    ProviderError,
    QuotaError,
    RateLimitedError,
    RequestTooLarge,
    UpstreamError,
)

_QUOTA = re.compile(r"quota|额度|余额|insufficient|balance|credit|billing|payment", re.IGNORECASE)
# "The model is overloaded" (Gemini's 503) mentions the model but is worth retrying, so a
# missing model needs one of these specific phrasings, and overload wins over it.
_MODEL_MISSING = re.compile(
    r"model_not_found|no available channel|无可用渠道|模型.{0,40}(不存在|不可用|无权|不支持)|无权.{0,20}模型"
    r"|model.{0,80}(not found|does not exist|not exist|unavailable|not available|not supported|not allowed)"
    r"|unknown model|invalid model",
    re.IGNORECASE,
)
_OVERLOADED = re.compile(r"overload|过载|繁忙|busy|capacity", re.IGNORECASE)
_TOO_LONG = re.compile(
    r"too long|too large|context length|context window|maximum context|too many tokens", re.IGNORECASE
)

# Error ``type``/``code`` values seen in stream error events and bodies, for when no status says more.
_BY_KIND: dict[str, type[ProviderError]] = {
    "overloaded_error": OverloadedError,
    "api_error": OverloadedError,
    "server_error": OverloadedError,
    "rate_limit_error": RateLimitedError,
    "rate_limit_exceeded": RateLimitedError,
    "authentication_error": AuthError,
    "invalid_api_key": AuthError,
    "permission_error": ModelNotAvailable,
    "not_found_error": ModelNotAvailable,
    "model_not_found": ModelNotAvailable,
    "request_too_large": RequestTooLarge,
    "invalid_request_error": BadRequest,
    "billing_error": QuotaError,
    "insufficient_quota": QuotaError,
    "timeout_error": GatewayTimeout,
}

_MESSAGE_LIMIT = 300


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    message: str = ""
    type: str = ""
    code: str = ""

    def text(self) -> str:
        return f"{self.message} {self.type} {self.code}"


def _str(value: object) -> str:
    return "" if value is None else str(value)


def parse_error_payload(payload: object) -> ErrorInfo:
    """Read either error shape from parsed JSON; anything else yields what little it can."""
    if not isinstance(payload, Mapping):
        return ErrorInfo(message=_str(payload)[:_MESSAGE_LIMIT])
    error = payload.get("error")
    if isinstance(error, Mapping):
        return ErrorInfo(_str(error.get("message")), _str(error.get("type")), _str(error.get("code")))
    if isinstance(error, str):
        return ErrorInfo(message=error)
    return ErrorInfo(message=_str(payload.get("message") or payload.get("detail")))


def parse_error_body(body: bytes) -> ErrorInfo:
    if not body.strip():
        return ErrorInfo()
    try:
        payload: Any = json.loads(body)
    except ValueError:
        # An HTML page from a proxy, or plain text: keep a short excerpt for the log.
        return ErrorInfo(message=body.decode("utf-8", "replace").strip()[:_MESSAGE_LIMIT])
    return parse_error_payload(payload)


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (delta-seconds or an HTTP date) or ``retry-after-ms``."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def redact(text: str, secret: str | None) -> str:
    if secret and len(secret) >= 4:
        return text.replace(secret, "***")
    return text


def _detail(status: int | None, info: ErrorInfo) -> str:
    kind = "/".join(part for part in (info.type, info.code) if part)
    head = f"HTTP {status}" if status is not None else "stream error"
    if kind:
        head += f" ({kind})"
    return f"{head}: {info.message[:_MESSAGE_LIMIT] or '(no message)'}"


def _class_for_status(status: int, info: ErrorInfo) -> type[ProviderError]:
    text = info.text()
    if status == 401:
        return QuotaError if _QUOTA.search(text) else AuthError
    if status == 402:
        return QuotaError
    if status == 403:
        return QuotaError if _QUOTA.search(text) else ModelNotAvailable
    if status == 404:
        return ModelNotAvailable if "model" in text.lower() or "模型" in text else BadRequest
    if status == 413:
        return RequestTooLarge
    if status == 429:
        # OpenAI-style upstreams say "insufficient_quota" with a 429: waiting will not help.
        return QuotaError if "insufficient_quota" in text or "额度" in text else RateLimitedError
    if status in (408, 504, 524):
        return GatewayTimeout
    if status == 503 and _MODEL_MISSING.search(text) and not _OVERLOADED.search(text):
        return ModelNotAvailable
    if status >= 500:
        return OverloadedError
    if status == 400 and _TOO_LONG.search(text):
        return RequestTooLarge
    return BadRequest


def error_from_status(
    status: int,
    info: ErrorInfo,
    *,
    retry_after: float | None = None,
    secret: str | None = None,
) -> ProviderError:
    cls = _class_for_status(status, info)
    return cls(redact(_detail(status, info), secret), status=status, retry_after=retry_after)


def error_from_response(
    status: int, body: bytes, headers: Mapping[str, str], *, secret: str | None = None
) -> ProviderError:
    """The error for an HTTP answer with status >= 400, before any stream."""
    return error_from_status(
        status, parse_error_body(body), retry_after=parse_retry_after(headers), secret=secret
    )


def error_from_stream(payload: object, *, secret: str | None = None) -> ProviderError:
    """The error for an ``error`` event or bare JSON error line inside a started response."""
    info = parse_error_payload(payload)
    status = int(info.code) if info.code.isdigit() and 400 <= int(info.code) < 600 else None
    if status is not None:
        cls = _class_for_status(status, info)
    else:
        cls = _BY_KIND.get(info.code) or _BY_KIND.get(info.type) or UpstreamError
        if cls is UpstreamError and _OVERLOADED.search(info.message):
            cls = OverloadedError
    return cls(redact(_detail(status, info), secret), status=status)
