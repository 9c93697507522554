"""``POST /v1/audio/transcriptions``: a voice note's words, from the gateway.

The body is multipart/form-data (``model``, then ``file`` with the original bytes under a name
whose extension gives the format), sent as a stream of slices of the caller's bytes with an
exact Content-Length, so a 20-minute recording is held once, not copied into a body. Errors are
classified like the chat routes' (:mod:`bot.providers.classify`); a 429, a 5xx or a failed
connection is retried like them (:mod:`bot.providers.retry`): the body is re-iterable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator, Iterator

import httpx

from bot.providers.classify import error_from_response
from bot.providers.errors import BadRequest, MissingApiKey, ProviderError
from bot.providers.policy import GatewayPolicy
from bot.providers.retry import retry_delay
from bot.providers.streaming import transport_error

log = logging.getLogger("bot.providers")

PATH = "/v1/audio/transcriptions"
_SLICE = 256 * 1024


def _quoted(value: str) -> str:
    # RFC 7578 form-data names: quote and backslash escaped, no line breaks.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")


class MultipartBody:
    """``fields`` then one file, as multipart/form-data bytes; re-iterable, with a known length."""

    __slots__ = ("_data", "_head", "_tail", "content_length", "content_type")

    def __init__(self, fields: dict[str, str], *, name: str, filename: str, media_type: str, data: bytes):
        boundary = "parley-" + secrets.token_hex(16)
        head = "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{_quoted(key)}"\r\n\r\n{value}\r\n'
            for key, value in fields.items()
        )
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{_quoted(name)}"; '
            f'filename="{_quoted(filename)}"\r\nContent-Type: {media_type}\r\n\r\n'
        )
        self._head = head.encode()
        self._tail = f"\r\n--{boundary}--\r\n".encode()
        self._data = data
        self.content_type = f"multipart/form-data; boundary={boundary}"
        self.content_length = len(self._head) + len(data) + len(self._tail)

    def iter_bytes(self) -> Iterator[bytes | memoryview]:
        yield self._head
        view = memoryview(self._data)
        for start in range(0, len(view), _SLICE):
            yield view[start : start + _SLICE]  # a view: the recording is never copied whole
        yield self._tail

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._aiter()

    async def _aiter(self) -> AsyncIterator[bytes]:
        for piece in self.iter_bytes():
            yield piece  # type: ignore[misc]  # httpx writes any buffer

    def __bytes__(self) -> bytes:
        return b"".join(bytes(piece) for piece in self.iter_bytes())


async def _once(
    client: httpx.AsyncClient, body: MultipartBody, headers: dict[str, str], policy: GatewayPolicy, key: str
) -> str:
    try:
        async with client.stream("POST", PATH, content=body, headers=headers) as response:
            raw = bytearray()
            async for chunk in response.aiter_bytes():
                raw += chunk
                if len(raw) > policy.max_json_bytes:
                    raise BadRequest(f"POST {PATH} answered more than {policy.max_json_bytes} bytes")
    except httpx.TransportError as exc:
        raise transport_error(exc) from None
    if response.status_code >= 300:
        raise error_from_response(response.status_code, bytes(raw), response.headers, secret=key)
    try:
        payload = json.loads(raw)
    except ValueError:
        payload = None
    text = payload.get("text") if isinstance(payload, dict) else None
    if not isinstance(text, str):
        raise BadRequest(f"POST {PATH} did not answer a transcript (check APICORE_BASE_URL)")
    return text


async def transcribe(
    client: httpx.AsyncClient,
    api_key: str | None,
    policy: GatewayPolicy,
    data: bytes,
    *,
    filename: str,
    media_type: str,
    model: str,
) -> str:
    """The words in ``data``; raises :class:`~bot.providers.errors.ProviderError`."""
    if api_key is None:
        raise MissingApiKey("APICORE_API_KEY is not set")
    body = MultipartBody({"model": model}, name="file", filename=filename, media_type=media_type, data=data)
    headers = {
        "authorization": f"Bearer {api_key}",
        "content-type": body.content_type,
        "content-length": str(body.content_length),
        "accept": "application/json",
    }
    loop = asyncio.get_running_loop()
    started = loop.time()
    attempt = 0
    while True:
        try:
            return await _once(client, body, headers, policy, api_key)
        except ProviderError as exc:
            delay = retry_delay(exc, attempt, loop.time() - started, policy)
            if delay is None:
                raise
            attempt += 1
            log.warning("gateway %s failed (%s); retry %d in %.2fs", PATH, exc, attempt, delay)
        await asyncio.sleep(delay)
