"""``POST /v1/images/generations``: one picture from a prompt.

The gateway answers ``{"data": [{"b64_json": …}]}`` or ``{"data": [{"url": …}]}`` (older image
models, or when the upstream hosts the file). The bytes of a ``b64_json`` answer come back here;
a URL is returned as it is, for the caller to fetch through its bounded, checked fetch. Nothing
is retried: a picture costs money, and a second request could make (and bill) a second one.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

import httpx

from bot.providers.classify import error_from_response
from bot.providers.errors import BadRequest, MissingApiKey
from bot.providers.streaming import transport_error

PATH = "/v1/images/generations"
# A 1536x1024 PNG is a few MB; its base64 a third more. Past this the answer is broken.
MAX_ANSWER_BYTES = 48 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    """Exactly one of ``data`` (decoded bytes) and ``url`` is set."""

    data: bytes | None = None
    url: str | None = None
    revised_prompt: str | None = None


async def generate_image(
    client: httpx.AsyncClient,
    api_key: str | None,
    *,
    model: str,
    prompt: str,
    size: str,
    max_bytes: int = MAX_ANSWER_BYTES,
) -> GeneratedImage:
    """Ask for one picture; raises :class:`~bot.providers.errors.ProviderError` on failure."""
    if api_key is None:
        raise MissingApiKey("APICORE_API_KEY is not set")
    body = {"model": model, "prompt": prompt, "n": 1, "size": size}
    headers = {"authorization": f"Bearer {api_key}"}
    try:
        async with client.stream("POST", PATH, json=body, headers=headers) as response:
            raw = bytearray()
            async for chunk in response.aiter_bytes():
                raw += chunk
                if len(raw) > max_bytes:
                    raise BadRequest(f"POST {PATH} answered more than {max_bytes} bytes")
    except httpx.TransportError as exc:
        raise transport_error(exc) from None
    if response.status_code >= 300:
        raise error_from_response(response.status_code, bytes(raw), response.headers, secret=api_key)
    return parse_answer(bytes(raw))


def parse_answer(raw: bytes) -> GeneratedImage:
    """The first picture of an images answer."""
    try:
        payload: Any = json.loads(raw)
    except ValueError:
        raise BadRequest(f"POST {PATH} answered something that is not JSON") from None
    items = payload.get("data") if isinstance(payload, dict) else None
    first = items[0] if isinstance(items, list) and items else None
    if not isinstance(first, dict):
        raise BadRequest(f"POST {PATH} answered no picture")
    revised = first.get("revised_prompt") if isinstance(first.get("revised_prompt"), str) else None
    encoded = first.get("b64_json")
    if isinstance(encoded, str) and encoded:
        try:
            return GeneratedImage(data=base64.b64decode(encoded, validate=True), revised_prompt=revised)
        except (binascii.Error, ValueError):
            raise BadRequest(f"POST {PATH} answered a picture that is not valid base64") from None
    url = first.get("url")
    if isinstance(url, str) and url:
        return GeneratedImage(url=url, revised_prompt=revised)
    raise BadRequest(f"POST {PATH} answered neither b64_json nor url")
