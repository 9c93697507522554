"""Typed gateway errors, each with one short sentence a chat user understands."""

from __future__ import annotations


class ProviderError(Exception):
    """A gateway failure. ``user_message`` is safe to show in chat; ``detail`` goes to the log.

    ``reason`` is the gateway's own explanation (already scrubbed and trimmed): when given, the
    class's sentence is completed with it, e.g. "The gateway rejected the request: Tool choice is
    required, but model did not call a tool."
    """

    user_message = "The model gateway failed to answer."
    retryable = False

    def __init__(
        self,
        detail: str = "",
        *,
        status: int | None = None,
        retry_after: float | None = None,
        reason: str = "",
    ):
        super().__init__(detail or self.user_message)
        self.detail = detail
        self.status = status
        self.retry_after = retry_after
        self.reason = reason
        if reason:
            ending = "" if reason[-1] in ".!?…。" else "."
            self.user_message = f"{type(self).user_message.rstrip('.')}: {reason}{ending}"


class AuthError(ProviderError):
    user_message = "The gateway rejected Parley's API key (APICORE_API_KEY is invalid or expired)."


class QuotaError(ProviderError):
    user_message = "The gateway quota is used up; ask an admin to top it up."


class ModelNotAvailable(ProviderError):
    user_message = "That model is not available on the gateway."


class RateLimitedError(ProviderError):
    user_message = "The model is rate limited right now; try again shortly."
    retryable = True


class OverloadedError(ProviderError):
    user_message = "The model is overloaded or failing upstream; try again shortly."
    retryable = True


class RequestTooLarge(ProviderError):
    user_message = "The request is too large for the model (try fewer or smaller files)."


class BadRequest(ProviderError):
    user_message = "The gateway rejected the request."


class ConnectError(ProviderError):
    user_message = "Parley could not reach the model gateway."
    retryable = True


class GatewayTimeout(ProviderError):
    user_message = "The model took too long to answer."
    retryable = True


class StreamBroken(ProviderError):
    user_message = "The answer stream broke off."
    retryable = True


class UpstreamError(ProviderError):
    """An error the gateway reported inside the stream (an SSE ``error`` event or a bare JSON line)."""

    user_message = "The model reported an error while answering."


class MissingApiKey(AuthError):
    """No key is configured, so nothing was sent."""

    user_message = "Parley has no gateway key configured (APICORE_API_KEY is not set)."
