"""Values the Web API methods share: the error they raise, what a call looks like afterwards, and
the parameter helpers (Slack's ``invalid_arguments`` shape for a missing one)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

Params = dict[str, Any]
Handler = Callable[[Params], Awaitable[dict[str, Any]]]


class ApiError(Exception):
    """An ``{"ok": false, "error": ...}`` answer (HTTP 200 unless ``status`` says otherwise)."""

    def __init__(self, error: str, status: int = 200, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(error)
        self.error = error
        self.status = status
        self.headers = headers or {}
        self.extra = extra


@dataclass(frozen=True)
class ApiCall:
    """One Web API request as the fake saw it."""

    t: float
    method: str
    params: dict[str, Any]
    token_kind: str | None
    status: int
    response: dict[str, Any]

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        err = self.response.get("error")
        return str(err) if err is not None else None


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("1", "true", "yes")


def json_field(params: Params, name: str, error: str) -> Any:
    """A parameter that slack_sdk sends JSON-encoded in form bodies and as a value in JSON bodies."""
    value = params.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ApiError(error) from exc
    return value


def invalid_arguments(*messages: str) -> ApiError:
    return ApiError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {m}" for m in messages]})


def require(params: Params, name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise invalid_arguments(f"missing required field: {name}")
    return str(value)
