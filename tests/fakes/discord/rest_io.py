"""The wire of the fake REST API: JSON responses exactly as discord.py expects them, request
bodies (JSON, or multipart with ``payload_json`` and ``files[n]``), scripted faults."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import BodyPartReader, web

from .core import ApiError, form_error
from .models import JSON

Files = dict[int, tuple[str, bytes, str | None]]

VIA = "1.1 google"


def json_response(data: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(data).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def no_content() -> web.Response:
    return web.Response(status=204)


def _snowflake(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit():
        raise form_error((name,), "NUMBER_TYPE_COERCE", f'Value "{raw}" is not snowflake.')
    return int(raw)


async def read_body(request: web.Request) -> tuple[JSON, Files]:
    """JSON body, or multipart with ``payload_json`` and ``files[n]`` parts."""
    files: Files = {}
    if request.content_type.startswith("multipart/"):
        payload: JSON = {}
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                continue
            name = part.name or ""
            data = await part.read()
            if name == "payload_json":
                payload = json.loads(data)
            elif name.startswith("files[") and name.endswith("]"):
                ctype = part.headers.get("Content-Type")
                files[int(name[6:-1])] = (
                    part.filename or "file",
                    bytes(data),
                    None if ctype == "application/octet-stream" else ctype,
                )
        return payload, files
    raw = await request.read()
    if not raw:
        return {}, files
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, 50109, "The request body contains invalid JSON.") from exc
    return (body if isinstance(body, dict) else {"_list": body}), files


@dataclass
class RestFault:
    """A scripted failure: the next ``times`` requests (None: all) whose route key is ``route``
    (e.g. ``"PATCH /channels/{channel_id}/messages/{message_id}"``) answer ``status``."""

    route: str
    status: int = 500
    times: int | None = 1
    match: Callable[[web.Request], bool] | None = None  # e.g. one message id in match_info
    hits: int = 0

    def applies(self, route_key: str, request: web.Request) -> bool:
        if route_key != self.route or (self.times is not None and self.hits >= self.times):
            return False
        return self.match is None or bool(self.match(request))
