"""The provider reads an uncompressed body raw and still decodes a body the server compressed
although the request asked for none."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from pydantic import SecretStr

from bot.providers import ChatRequest, Gateway, Turn
from bot.providers.base import Finish, TextDelta
from bot.providers.streaming import loads
from bot.settings import Settings
from bot.types import Outcome

WORDS = ["Grüße ", "aus ", "世界 ", "🎉"]


def _openai_body() -> bytes:
    def chunk(delta: dict[str, str], reason: str | None = None) -> str:
        payload = {"choices": [{"index": 0, "delta": delta, "finish_reason": reason}]}
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    frames = [chunk({"content": w}) for w in WORDS] + [chunk({}, "stop"), "data: [DONE]\n\n"]
    return "".join(frames).encode()


class _Pieces(httpx.AsyncByteStream):
    """The body in small pieces, so a compressed frame straddles network chunks."""

    def __init__(self, data: bytes, size: int = 7) -> None:
        self._data = data
        self._size = size

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self._data), self._size):
            yield self._data[start : start + self._size]


def _deflate(data: bytes) -> bytes:
    return zlib.compress(data)


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [("", lambda b: b), ("identity", lambda b: b), ("gzip", gzip.compress), ("deflate", _deflate)],
    ids=["none", "identity", "gzip", "deflate"],
)
async def test_the_answer_arrives_whatever_the_content_encoding(
    encoding: str, encode: Callable[[bytes], bytes]
) -> None:
    body = encode(_openai_body())
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        headers = {"content-type": "text/event-stream"}
        if encoding:
            headers["content-encoding"] = encoding
        return httpx.Response(200, headers=headers, stream=_Pieces(body))

    settings = Settings(apicore_base_url="http://gateway.test", apicore_api_key=SecretStr("k"))
    request = ChatRequest(model="gemini-2.5-flash", system="", turns=[Turn.text("user", "hi")])
    async with Gateway(settings, transport=httpx.MockTransport(answer)) as gateway:
        events = [event async for event in gateway.stream(request)]

    assert seen[0].headers["accept-encoding"] == "identity"
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "".join(WORDS)
    assert isinstance(events[-1], Finish)
    assert events[-1].outcome is Outcome.COMPLETE


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ('{"delta": {"content": "\\ud83c\\udf89 ok"}}', {"delta": {"content": "🎉 ok"}}),
        # What orjson refuses and the standard parser takes still reads as the latter reads it.
        ('{"content": "\\ud83c"}', {"content": "\ud83c"}),
        ('{"usage": {"cost": Infinity}}', {"usage": {"cost": float("inf")}}),
    ],
)
def test_an_events_json_reads_as_the_standard_parser_reads_it(event: str, expected: object) -> None:
    assert loads(event) == expected == json.loads(event)


def test_an_event_that_is_not_json_is_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    assert loads('{"choices": [') is None
    assert "skipped an event that is not JSON (13 chars)" in caplog.text
