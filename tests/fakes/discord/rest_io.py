"""The wire of the fake REST API: JSON responses exactly as discord.py expects them, request
bodies (JSON, or multipart with ``payload_json`` and ``files[n]``), scripted faults."""

from __future__ import annotations

import json
import mimetypes
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


def guess_type(filename: str, declared: str | None) -> str | None:
    """The attachment's ``content_type``: what the upload declared, unless that says nothing
    (discord.py sends every file as ``application/octet-stream``; Discord then names the type
    itself, from the file, as ``image/png`` or ``audio/ogg``)."""
    if declared and declared != "application/octet-stream":
        return declared
    guessed = mimetypes.guess_type(filename)[0]
    if guessed is not None and guessed.startswith("text/"):
        return f"{guessed}; charset=utf-8"
    return guessed


async def read_body(request: web.Request) -> tuple[JSON, Files]:
    """JSON body, or multipart with ``payload_json`` (or plain form fields) and ``files[n]`` parts."""
    files: Files = {}
    if not request.content_type.startswith("multipart/"):
        return await _json_body(request), files
    payload: JSON | None = None
    fields: JSON = {}
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        name = part.name or ""
        data = await part.read()
        if name == "payload_json":
            payload = json.loads(data)
        elif name.startswith("files[") and name.endswith("]"):
            filename = part.filename or "file"
            files[int(name[6:-1])] = (
                filename,
                bytes(data),
                guess_type(filename, part.headers.get("Content-Type")),
            )
        else:  # the documented form without payload_json: one field per JSON parameter
            fields[name] = bytes(data).decode()
    return (payload if payload is not None else fields), files


async def _json_body(request: web.Request) -> JSON:
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, 50109, "The request body contains invalid JSON.") from exc
    return body if isinstance(body, dict) else {"_list": body}


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
