"""Streamed request bodies: the same bytes as ``json.dumps`` of the body, a Content-Length on the
wire (never chunked), the same body on every retry, and no whole-file base64 in memory."""

from __future__ import annotations

import base64
import json
import random
import tracemalloc
from typing import Any

import pytest

from bot.providers import ChatRequest, DocumentPart, Gateway, GatewayPolicy, ImagePart, TextPart, Turn
from bot.providers import body as body_module
from bot.providers.anthropic import build_anthropic_body, lazy_anthropic_body
from bot.providers.body import Base64Data, RequestBody, encode_body, encoded_length, materialize
from bot.providers.openai_chat import build_openai_body, lazy_openai_body
from tests.fakes.gateway import FakeGateway, Reply, collect
from tests.provider_harness import gateway_fixtures

OPENAI, ANTHROPIC = "gemini-2.5-flash", "claude-sonnet-4-5"
KEY = "test-key"
RAW_CHUNK = body_module._RAW_CHUNK
FORMATS = pytest.mark.parametrize(
    ("build", "lazy", "model"),
    [(build_openai_body, lazy_openai_body, OPENAI), (build_anthropic_body, lazy_anthropic_body, ANTHROPIC)],
    ids=["openai", "anthropic"],
)
FAST = GatewayPolicy(
    connect_timeout=1.0,
    first_token_timeout=2.0,
    idle_timeout=1.0,
    max_retries=2,
    retry_deadline=5.0,
    backoff_base=0.01,
    backoff_cap=0.02,
)
# Not a multiple of 3 and over two encoding chunks: padding and chunk seams both get exercised.
BIG_PDF = b"%PDF-1.7\n" + random.Random(6).randbytes(2 * RAW_CHUNK + 1000)
PNG = b"\x89PNG\r\n\x1a\n" + random.Random(7).randbytes(5000)
TRICKY = 'Grüße, 你好 🎉 — "quoted" \\ back\tslash\n</script> \u2028 \x00'


def plain_request(model: str) -> ChatRequest:
    return ChatRequest(
        model=model,
        system=f"Système: {TRICKY}",
        turns=[Turn.text("user", TRICKY), Turn.text("assistant", "d'accord"), Turn.text("user", "ça va?")],
        temperature=0.5,
        extra={"top_p": 0.9, "metadata": {"tag": "é"}},
    )


def file_request(model: str, pdf: bytes = BIG_PDF) -> ChatRequest:
    return ChatRequest(
        model=model,
        system="You are Parley.",
        turns=[
            Turn.text("user", "earlier"),
            Turn.text("assistant", "answer"),
            Turn(
                "user",
                (
                    DocumentPart(pdf, "rapport-été.pdf", cache=True),
                    ImagePart(PNG, "image/png", "écran.png"),
                    DocumentPart(b"%PDF-1.4 tiny", "tiny.pdf"),
                    TextPart(f"what is in these? {TRICKY}"),
                ),
            ),
        ],
    )


def expected_bytes(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


# The bytes, offline.


@FORMATS
@pytest.mark.parametrize("make", [plain_request, file_request], ids=["text", "files"])
def test_streamed_bytes_equal_json_dumps(build: Any, lazy: Any, model: str, make: Any) -> None:
    request = make(model)
    expected = expected_bytes(build(request))
    encoded = encode_body(lazy(request))
    assert bytes(encoded) == expected
    assert encoded.content_length == len(expected)
    # A body with files goes as chunks, none bigger than one encoded chunk plus the JSON around it.
    if make is file_request:
        assert encoded.content is encoded
        chunks = list(encoded.iter_bytes())
        assert len(chunks) > 3
        assert max(len(chunk) for chunk in chunks) == encoded_length(RAW_CHUNK)
    else:
        assert encoded.content == expected


@FORMATS
def test_the_file_goes_as_base64_in_its_wire_field(build: Any, lazy: Any, model: str) -> None:
    sent = json.loads(bytes(encode_body(lazy(file_request(model)))))
    document = sent["messages"][-1]["content"][0]
    if model == OPENAI:
        uri = document["file"]["file_data"]
        assert uri.startswith("data:application/pdf;base64,")
        assert base64.b64decode(uri.split(",", 1)[1], validate=True) == BIG_PDF
    else:
        assert base64.b64decode(document["source"]["data"], validate=True) == BIG_PDF
        assert document["title"] == "rapport-été.pdf"


@pytest.mark.parametrize(
    "size", [0, 1, 2, 3, 4, RAW_CHUNK - 1, RAW_CHUNK, RAW_CHUNK + 1, 2 * RAW_CHUNK + 2, 3 * RAW_CHUNK]
)
def test_base64_chunks_concatenate_to_the_whole(size: int) -> None:
    data = random.Random(size).randbytes(size)
    blob = Base64Data(data, "data:x/y;base64,")
    encoded = encode_body({"a": [blob, "b"]})
    whole = base64.b64encode(data).decode()
    assert bytes(encoded) == json.dumps({"a": [blob.prefix + whole, "b"]}).encode()
    assert encoded.content_length == len(bytes(encoded))
    assert encoded_length(size) == len(whole)


def test_text_that_contains_the_marker_is_not_taken_for_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    nonces = iter(["fixed", "fresh"])
    monkeypatch.setattr(body_module.secrets, "token_hex", lambda n: next(nonces))
    template = {"text": '"fixed:0"', "file": Base64Data(b"abc"), "also": "fixed:0"}
    encoded = encode_body(template)
    assert bytes(encoded) == expected_bytes(materialize(template))
    assert json.loads(bytes(encoded)) == {"text": '"fixed:0"', "file": "YWJj", "also": "fixed:0"}


def test_a_media_type_that_needs_escaping_is_escaped() -> None:
    template = {"url": Base64Data(b"\x00\x01", 'data:odd/"type\\é;base64,')}
    assert bytes(encode_body(template)) == expected_bytes(materialize(template))


def test_sending_never_holds_the_whole_base64() -> None:
    data = random.Random(1).randbytes(8 * 1024 * 1024)
    encoded = encode_body(lazy_openai_body(file_request(OPENAI, data)))
    tracemalloc.start()
    try:
        sent = sum(len(chunk) for chunk in encoded.iter_bytes())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sent == encoded.content_length > encoded_length(len(data))
    assert peak < 1024 * 1024  # one chunk at a time; the whole base64 would be 11 MB


async def test_the_body_can_be_iterated_again() -> None:
    encoded = encode_body({"f": Base64Data(b"x" * (RAW_CHUNK + 5))})
    first = [chunk async for chunk in encoded]
    second = [chunk async for chunk in encoded]
    assert first == second
    assert b"".join(first) == bytes(encoded)


def test_only_json_data_and_base64_parts_are_accepted() -> None:
    with pytest.raises(TypeError):
        encode_body({"x": object()})
    assert isinstance(encode_body({}), RequestBody)


# On the wire.


gw, gateway = gateway_fixtures(FAST, api_key=KEY)


@FORMATS
@pytest.mark.parametrize("make", [plain_request, file_request], ids=["text", "files"])
async def test_the_gateway_receives_exactly_the_body_with_a_content_length(
    gw: FakeGateway, gateway: Gateway, build: Any, lazy: Any, model: str, make: Any
) -> None:
    request = make(model)
    out = await collect(gateway.stream(request))
    assert out.finish is not None and out.finish.error is None
    sent = gw.last
    expected = expected_bytes(build(request))
    assert sent.body == expected
    assert sent.header("content-length") == str(len(expected))
    assert sent.header("transfer-encoding") is None  # not chunked: the gateway may refuse that


@FORMATS
async def test_a_retry_sends_the_same_body_again(
    gw: FakeGateway, gateway: Gateway, build: Any, lazy: Any, model: str
) -> None:
    gw.script(Reply.http_error(503, "overloaded"), Reply(text="ok"))
    request = file_request(model)
    out = await collect(gateway.stream(request))
    assert out.text == "ok"
    first, second = gw.stream_requests
    assert first.body == second.body == expected_bytes(build(request))
    assert second.header("content-length") == str(len(second.body))
