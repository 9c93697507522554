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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.logs import MASK, mask
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
_RATE_LIMITED = re.compile(r"rate.?limit|too many requests|请求过于频繁|频率", re.IGNORECASE)
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
_GENERIC = (BadRequest, UpstreamError)


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


# Key-shaped strings a gateway might echo back (its own sk- keys, a bearer header, a chat token):
# masked even when they are not Parley's own key.
_KEYLIKE = re.compile(
    r"\b(?:sk|xox[abpre])-[A-Za-z0-9_-]{8,}|\bBearer\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE
)
# new-api appends "(request id: …)" to its messages: useful in the log, noise in chat.
_REQUEST_ID = re.compile(r"\s*[(（]request id[:：][^)）]*[)）]", re.IGNORECASE)
_REASON_LIMIT = 200


def redact(text: str, secret: str | None) -> str:
    """``text`` with the key (and anything shaped like a key or bearer token) masked."""
    if secret and len(secret) >= 4:
        text = mask(text, [secret])
    return _KEYLIKE.sub(MASK, text)


def reason(info: ErrorInfo, secret: str | None = None) -> str:
    """The gateway's own words, fit to show a user: secrets masked, one line, at most
    ``_REASON_LIMIT`` characters; empty when it said nothing readable (no message, or an HTML page)."""
    text = _REQUEST_ID.sub("", redact(info.message, secret))
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    if text.startswith("<"):
        return ""  # a proxy's HTML page says nothing a user can act on
    if len(text) > _REASON_LIMIT:
        text = text[: _REASON_LIMIT - 1].rstrip() + "…"
    return text


def _detail(status: int | None, info: ErrorInfo) -> str:
    kind = "/".join(part for part in (info.type, info.code) if part)
    head = f"HTTP {status}" if status is not None else "stream error"
    if kind:
        head += f" ({kind})"
    return f"{head}: {info.message[:_MESSAGE_LIMIT] or '(no message)'}"


def _model_missing(text: str) -> bool:
    # "The model is overloaded" names the model too, so overload wins.
    return bool(_MODEL_MISSING.search(text)) and not _OVERLOADED.search(text)


# Per status: the error class, given the error's text (message, type and code together).
_BY_STATUS: dict[int, Callable[[str], type[ProviderError]]] = {
    400: lambda text: RequestTooLarge if _TOO_LONG.search(text) else BadRequest,
    401: lambda text: QuotaError if _QUOTA.search(text) else AuthError,
    402: lambda text: QuotaError,
    403: lambda text: QuotaError if _QUOTA.search(text) else ModelNotAvailable,
    404: lambda text: ModelNotAvailable if "model" in text.lower() or "模型" in text else BadRequest,
    408: lambda text: GatewayTimeout,
    413: lambda text: RequestTooLarge,
    # OpenAI-style upstreams say "insufficient_quota" with a 429: waiting will not help.
    429: lambda text: QuotaError if "insufficient_quota" in text or "额度" in text else RateLimitedError,
    503: lambda text: ModelNotAvailable if _model_missing(text) else OverloadedError,
    504: lambda text: GatewayTimeout,
    524: lambda text: GatewayTimeout,
}

# When no status or error type says more, the words may still fit a sentence users know.
_BY_WORDS: tuple[tuple[re.Pattern[str], type[ProviderError]], ...] = (
    (_OVERLOADED, OverloadedError),
    (_RATE_LIMITED, RateLimitedError),
    (_TOO_LONG, RequestTooLarge),
)


def _class_for_status(status: int, info: ErrorInfo) -> type[ProviderError]:
    rule = _BY_STATUS.get(status)
    if rule is not None:
        return rule(info.text())
    return OverloadedError if status >= 500 else BadRequest


def _class_for_stream(info: ErrorInfo, status: int | None) -> type[ProviderError]:
    if status is not None:
        return _class_for_status(status, info)
    cls = _BY_KIND.get(info.code) or _BY_KIND.get(info.type)
    if cls is None or cls is BadRequest:
        # A generic kind: the message may still say it is busy, rate limited or too long.
        worded = next((known for pattern, known in _BY_WORDS if pattern.search(info.message)), None)
        cls = worded or cls
    return cls or UpstreamError


def _error(
    cls: type[ProviderError],
    status: int | None,
    info: ErrorInfo,
    *,
    retry_after: float | None = None,
    secret: str | None = None,
) -> ProviderError:
    # Only the generic sentences are completed with the gateway's reason: the others already
    # say what happened and what to do.
    said = reason(info, secret) if cls in _GENERIC else ""
    return cls(redact(_detail(status, info), secret), status=status, retry_after=retry_after, reason=said)


def error_from_status(
    status: int,
    info: ErrorInfo,
    *,
    retry_after: float | None = None,
    secret: str | None = None,
) -> ProviderError:
    return _error(_class_for_status(status, info), status, info, retry_after=retry_after, secret=secret)


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
    return _error(_class_for_stream(info, status), status, info, secret=secret)
