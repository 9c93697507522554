"""Voice notes and audio files through the whole core: sniffed, capped, transcribed by the fake
gateway's /v1/audio/transcriptions (parsed as multipart for real), and the transcript asked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.files.audio import duration
from bot.files.sniff import Kind, sniff
from bot.files.voice import clock, upload_name
from bot.runtime import Runtime
from tests.audio_helpers import flac, m4a, mp3, ogg_opus, wav, webm
from tests.fakes.gateway import TRANSCRIBE_PATH, FakeGateway, Reply
from tests.files_helpers import attachment
from tests.files_turns import ask, echo_question, make_runtime, sent_texts


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    async with FakeGateway(default=echo_question) as gw:
        yield gw


@pytest.fixture
async def runtime(gateway: FakeGateway, tmp_path: Path) -> AsyncIterator[Runtime]:
    made = await make_runtime(gateway, tmp_path, parley_audio_max_bytes=2_000_000)
    yield made
    await made.aclose()


# --- what a file is and how long it lasts, from its headers --------------------------------------


@pytest.mark.parametrize(
    ("data", "fmt", "media_type", "seconds"),
    [
        (ogg_opus(65), "ogg", "audio/ogg", 65.0),
        (wav(3), "wav", "audio/wav", 3.0),
        (flac(90), "flac", "audio/flac", 90.0),
        (mp3(40), "mp3", "audio/mpeg", pytest.approx(1.04, abs=0.01)),
        (webm(125.5), "webm", "audio/webm", 125.5),
        (webm(None), "webm", "audio/webm", None),  # a browser recording: no duration written
        (m4a(), "m4a", "audio/mp4", None),
    ],
)
def test_audio_is_sniffed_by_content_and_timed_from_its_headers(
    data: bytes, fmt: str, media_type: str, seconds: object
) -> None:
    found = sniff(data)
    assert (found.kind, found.format, found.media_type) == (Kind.AUDIO, fmt, media_type)
    assert duration(data, fmt) == seconds


def test_look_alikes_are_not_audio() -> None:
    assert sniff("hello".encode("utf-16")).kind is Kind.UNKNOWN  # FF FE looks like an MPEG sync
    assert sniff(b"\x1a\x45\xdf\xa3" + bytes(20) + b"matroska").kind is Kind.UNKNOWN  # video, not WebM
    assert sniff(b"OggS" + bytes(24) + b"\x80theora").kind is Kind.UNKNOWN


def test_upload_names_and_durations_read_plainly() -> None:
    assert upload_name("voice-message.ogg", "ogg") == "voice-message.ogg"
    assert upload_name('my "note".mp3', "ogg") == "my_note.ogg"  # the sniffed type wins
    assert upload_name("...", "wav") == "audio.wav"
    assert (clock(1200), clock(1265), clock(45), clock(60)) == (
        "20 minutes",
        "21 min 5 s",
        "45 seconds",
        "1 minute",
    )


# --- through the core ----------------------------------------------------------------------------


async def test_a_voice_note_is_transcribed_and_its_words_asked_after_the_typed_text(
    runtime: Runtime, gateway: FakeGateway
) -> None:
    note = ogg_opus(12)
    gateway.transcript = "What did the board decide about the budget?"
    file, _ = attachment("voice-message.ogg", note, declared_type="audio/ogg")

    result = await ask(runtime, "Quick one:", [file])

    (heard,) = gateway.transcriptions
    assert heard.data == note  # byte-exact
    assert (heard.model, heard.filename, heard.content_type) == (
        "whisper-1",
        "voice-message.ogg",
        "audio/ogg",
    )
    request = gateway.requests[0]
    assert request.path == TRANSCRIBE_PATH
    assert request.header("Authorization") == f"Bearer {gateway.api_key}"
    assert int(request.header("Content-Length") or 0) == len(request.body)
    question = "Quick one:\n\nWhat did the board decide about the budget?"
    assert sent_texts(gateway)[-1] == question  # one user message: typed text, then the words
    assert result.shown == f"You said: {question}"

    # The thread's history reads as text, and the same recording is not transcribed again.
    await ask(runtime, "And the date?", [])
    assert question in " ".join(sent_texts(gateway))
    again, _ = attachment("again.ogg", note)
    await ask(runtime, "", [again])
    assert len(gateway.transcriptions) == 1
    assert sent_texts(gateway)[-1] == "What did the board decide about the budget?"


async def test_a_voice_note_alone_is_the_question(runtime: Runtime, gateway: FakeGateway) -> None:
    file, _ = attachment("note.wav", wav(2))
    result = await ask(runtime, "", [file])
    assert result.shown == "You said: Hello from a voice note."
    assert gateway.transcriptions[0].filename == "note.wav"


async def test_a_voice_note_with_no_words_gets_a_sentence_and_no_model_call(
    runtime: Runtime, gateway: FakeGateway
) -> None:
    gateway.transcript = "  "
    file, _ = attachment("silence.ogg", ogg_opus(3))
    result = await ask(runtime, "", [file])
    assert result.shown == "I couldn't hear any words in silence.ogg."
    assert gateway.stream_requests == []


async def test_a_note_too_long_is_refused_before_any_upload(runtime: Runtime, gateway: FakeGateway) -> None:
    file, _ = attachment("meeting.ogg", ogg_opus(40 * 60))
    result = await ask(runtime, "", [file])
    assert result.shown == (
        "I couldn't transcribe meeting.ogg: it is 40 minutes long, and Parley transcribes up to 30 minutes."
    )
    assert gateway.requests == []


async def test_a_recording_too_large_is_refused(runtime: Runtime, gateway: FakeGateway) -> None:
    file, _ = attachment("long.wav", wav(130))  # 2.1 MB over the 2,000,000 bytes set above
    result = await ask(runtime, "transcribe please", [file])
    assert result.shown.startswith(
        "I couldn't transcribe long.wav: it is 2.0 MB, and Parley transcribes audio up to 1.9 MB.\n\n"
    )
    assert gateway.transcriptions == []


async def test_audio_the_gateway_does_not_take_is_unsupported(runtime: Runtime, gateway: FakeGateway) -> None:
    video = b"\x1a\x45\xdf\xa3" + bytes(20) + b"matroska" + bytes(100)
    file, _ = attachment("clip.mkv", video)
    result = await ask(runtime, "", [file])
    assert result.shown.startswith("I can't read clip.mkv: Parley reads ")
    assert gateway.requests == []


@pytest.mark.parametrize(
    ("status", "why"),
    [
        (400, "the gateway rejected the request: no"),  # the gateway's own reason, passed on
        (401, "the gateway rejected Parley's API key (APICORE_API_KEY is invalid or expired)"),
        (503, "the model is overloaded or failing upstream; try again shortly"),
    ],
)
async def test_the_gateway_refusing_gets_a_clear_sentence(
    runtime: Runtime, gateway: FakeGateway, status: int, why: str
) -> None:
    gateway.script_path(TRANSCRIBE_PATH, Reply.http_error(status, "no"))
    file, _ = attachment("note.ogg", ogg_opus(5))
    result = await ask(runtime, "", [file])
    assert result.shown == f"I couldn't transcribe note.ogg: {why}."
    assert gateway.stream_requests == []
    # The refusal is not remembered as a transcript: the next try asks again.
    await ask(runtime, "", [file])
    assert len(gateway.transcriptions) == 2


async def test_a_busy_gateway_is_retried(gateway: FakeGateway, tmp_path: Path) -> None:
    runtime = await make_runtime(gateway, tmp_path, parley_max_retries=2)
    try:
        gateway.script_path(TRANSCRIBE_PATH, Reply.http_error(503, "busy", retry_after=0))
        file, _ = attachment("note.ogg", ogg_opus(5))
        result = await ask(runtime, "", [file])
    finally:
        await runtime.aclose()
    assert result.shown == "You said: Hello from a voice note."
    first, second = gateway.transcriptions
    assert first.data == second.data  # the body is sent whole again


def test_the_upload_streams_views_of_the_recording_with_an_exact_length() -> None:
    from bot.providers.audio import MultipartBody
    from tests.fakes.gateway import Transcription

    data = bytes(range(256)) * 4000  # 1 MB: several slices
    body = MultipartBody(
        {"model": "whisper-1"}, name="file", filename='a"b.ogg', media_type="audio/ogg", data=data
    )
    pieces = list(body.iter_bytes())
    middle = pieces[1:-1]
    assert len(middle) == 4 and all(isinstance(p, memoryview) and p.obj is data for p in middle)  # no copy
    whole = bytes(body)
    assert len(whole) == body.content_length
    parsed = Transcription.parse(body.content_type, whole)
    assert (parsed.data, parsed.filename, parsed.model) == (data, 'a"b.ogg', "whisper-1")
