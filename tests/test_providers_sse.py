"""The SSE parser on its own: line endings, splits anywhere, comments, bare JSON lines."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.providers.sse import BareLine, Comment, SSEDecoder, SSEEvent, SSEItem

STREAM = (
    ": PING\n\n"
    'event: message_start\ndata: {"type":"message_start"}\n\n'
    'data: {"t":"héllo 世界 🎉"}\n\n'
    "data: first line\ndata: second line\n\n"
    '{"error":{"message":"upstream failed","type":"upstream_error"}}\n'
    "data: [DONE]\n\n"
)
EXPECTED: list[SSEItem] = [
    Comment("PING"),
    SSEEvent("message_start", '{"type":"message_start"}'),
    SSEEvent("message", '{"t":"héllo 世界 🎉"}'),
    SSEEvent("message", "first line\nsecond line"),
    BareLine('{"error":{"message":"upstream failed","type":"upstream_error"}}'),
    SSEEvent("message", "[DONE]"),
]


def parse(chunks: list[bytes]) -> list[SSEItem]:
    decoder = SSEDecoder()
    out: list[SSEItem] = []
    for chunk in chunks:
        out += decoder.feed(chunk)
    return out + decoder.close()


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def test_whole_stream_in_one_chunk() -> None:
    assert parse([STREAM.encode()]) == EXPECTED


def test_every_single_byte_split() -> None:
    data = STREAM.encode()
    assert parse([data[i : i + 1] for i in range(len(data))]) == EXPECTED


@settings(max_examples=200, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=40),
    ending=st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_any_split_and_line_ending_gives_the_same_items(cuts: list[int], ending: str) -> None:
    data = STREAM.replace("\n", ending).encode()
    assert parse(split_at(data, cuts)) == EXPECTED


def test_crlf_split_between_cr_and_lf_is_one_line_end() -> None:
    # Had the CR and LF been taken for two line ends, the blank line would dispatch early and
    # "data: b" would start a second event.
    chunks = [b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]
    assert parse(chunks) == [SSEEvent("message", "a\nb")]


def test_multibyte_character_split_across_chunks_is_not_torn() -> None:
    data = 'data: {"t":"世"}\n\n'.encode()
    cut = data.index("世".encode()) + 1
    decoder = SSEDecoder()
    assert decoder.feed(data[:cut]) == []
    assert decoder.feed(data[cut:]) == [SSEEvent("message", '{"t":"世"}')]


def test_field_without_space_unknown_fields_and_bom() -> None:
    data = b'\xef\xbb\xbfevent:ping\nid: 7\nretry: 100\nfoo: bar\ndata:{"a":1}\n\n'
    assert parse([data]) == [SSEEvent("ping", '{"a":1}')]


def test_blank_lines_without_data_dispatch_nothing() -> None:
    assert parse([b"\n\n\nevent: x\n\n\n"]) == []


def test_end_of_stream_flushes_a_last_event_without_its_blank_line() -> None:
    assert parse([b"data: [DONE]"]) == [SSEEvent("message", "[DONE]")]
    assert parse([b'{"error":{"message":"x"}}']) == [BareLine('{"error":{"message":"x"}}')]


def test_garbage_bytes_do_not_raise() -> None:
    items = parse([b"\x00\xff\xfe garbage \x80\n\ndata: \xff ok\n\n"])
    assert items == [SSEEvent("message", "\ufffd ok")]
