"""Request bodies sent as a stream of byte chunks, so a large file is never held as text.

A wire format builds its body as plain JSON data in which each file's base64 string is a
:class:`Base64Data` placeholder still holding the raw bytes. :func:`encode_body` serializes
everything else once with :func:`json.dumps` and encodes the files piece by piece while the body
is sent: a 30 MB PDF then costs its own bytes plus a few hundred KiB, instead of its base64, the
JSON text and the encoded JSON all alive at once (six times the file).

The bytes sent are exactly ``json.dumps(materialize(template), ensure_ascii=False).encode()``,
and their length is known in advance, so the request carries a ``Content-Length`` (the gateway
may refuse chunked uploads).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

# 3·64 KiB of input is 256 KiB of base64 with no padding inside the body: the chunks concatenate.
_RAW_CHUNK = 3 * 64 * 1024


def encoded_length(size: int) -> int:
    """Bytes of base64 for ``size`` bytes."""
    return 4 * ((size + 2) // 3)


@dataclass(frozen=True, slots=True, eq=False)
class Base64Data:
    """A JSON string ``prefix + base64(data)``, encoded only while it is sent.

    ``prefix`` is short ASCII such as ``data:application/pdf;base64,`` (a data URI).
    """

    data: bytes
    prefix: str = ""

    def text(self) -> str:
        """The whole string: for inspecting a body, never on the sending path."""
        return self.prefix + base64.b64encode(self.data).decode("ascii")

    def chunks(self) -> Iterator[bytes]:
        view = memoryview(self.data)
        for start in range(0, len(view), _RAW_CHUNK):
            yield base64.b64encode(view[start : start + _RAW_CHUNK])


def materialize(template: Any) -> Any:
    """``template`` with every :class:`Base64Data` turned into its string: the body as data."""
    if isinstance(template, Base64Data):
        return template.text()
    if isinstance(template, dict):
        return {key: materialize(value) for key, value in template.items()}
    if isinstance(template, list | tuple):
        return [materialize(value) for value in template]
    return template


class RequestBody:
    """One request's bytes: re-iterable (each retry sends it again) with a known length."""

    __slots__ = ("_pieces", "content_length")

    def __init__(self, pieces: list[bytes | Base64Data]) -> None:
        self._pieces = pieces
        self.content_length = sum(
            len(piece) if isinstance(piece, bytes) else encoded_length(len(piece.data)) for piece in pieces
        )

    @property
    def content(self) -> bytes | RequestBody:
        """What to hand httpx: plain bytes when no file is inlined, else this iterable."""
        if len(self._pieces) == 1 and isinstance(self._pieces[0], bytes):
            return self._pieces[0]
        return self

    def iter_bytes(self) -> Iterator[bytes]:
        for piece in self._pieces:
            if isinstance(piece, bytes):
                if piece:
                    yield piece
            else:
                yield from piece.chunks()

    def __aiter__(self) -> AsyncIterator[bytes]:
        # A fresh generator each time: httpx iterates once per attempt.
        return self._aiter()

    async def _aiter(self) -> AsyncIterator[bytes]:
        for chunk in self.iter_bytes():
            yield chunk

    def __bytes__(self) -> bytes:
        return b"".join(self.iter_bytes())


def _swap(value: Any, nonce: str, blobs: list[Base64Data]) -> Any:
    """``value`` with each :class:`Base64Data` replaced by a marker, collected in ``blobs``."""
    if isinstance(value, Base64Data):
        blobs.append(value)
        return f"{nonce}:{len(blobs) - 1}"
    if isinstance(value, dict):
        return {key: _swap(item, nonce, blobs) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_swap(item, nonce, blobs) for item in value]
    return value


def encode_body(template: Any) -> RequestBody:
    """The request body for ``template`` (JSON data that may hold :class:`Base64Data`)."""
    while True:
        # Each file becomes a marker string carrying a random nonce; should the rest of the body
        # happen to contain the nonce too, a fresh one is drawn so no text is taken for a file.
        nonce = secrets.token_hex(16)
        blobs: list[Base64Data] = []
        text = json.dumps(_swap(template, nonce, blobs), ensure_ascii=False)
        if not blobs:
            return RequestBody([text.encode()])
        if text.count(nonce) == len(blobs):
            break
    split = re.split(f'"{nonce}:[0-9]+"', text)
    pieces: list[bytes | Base64Data] = []
    for index, blob in enumerate(blobs):
        # The prefix goes through json.dumps too: a media type is not trusted to need no escaping.
        opening = json.dumps(blob.prefix, ensure_ascii=False)[:-1]
        before = split[index]
        pieces.append((before if index == 0 else '"' + before).encode() + opening.encode())
        pieces.append(blob)
    pieces.append(('"' + split[-1]).encode())
    return RequestBody(pieces)
