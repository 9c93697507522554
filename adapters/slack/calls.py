"""A Slack Web API call's refusals as the renderer's errors: a 429 becomes :class:`RateLimited`
with Slack's ``Retry-After``, any other ``ok: false`` a :class:`SlackRefused`. Every call a
reply makes (posts, edits, streams, uploads) goes through :func:`slack_call`."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from slack_sdk.errors import SlackApiError

from bot.render.surface import RateLimited, SurfaceError

T = TypeVar("T")


class SlackRefused(SurfaceError):
    """Slack answered ``ok: false`` (other than a rate limit)."""

    def __init__(self, method: str, error: str) -> None:
        super().__init__(f"{method}: {error}")
        self.method = method
        self.error = error


async def slack_call(method: str, call: Awaitable[T]) -> T:
    """Await a Web API call; a 429 becomes :class:`RateLimited`, other refusals :class:`SlackRefused`."""
    try:
        return await call
    except SlackApiError as exc:
        response = exc.response
        if response.status_code == 429:
            raise RateLimited(_retry_after(response.headers), f"{method}: ratelimited") from exc
        raise SlackRefused(method, str(response.get("error") or "unknown_error")) from exc


def _retry_after(headers: Any) -> float:
    for name, value in dict(headers or {}).items():
        if str(name).lower() == "retry-after":
            try:
                return float(value[0] if isinstance(value, list) else value)
            except (TypeError, ValueError):
                break
    return 1.0
