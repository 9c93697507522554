"""Files through the whole core: FileService inside the conversation service, a real SQLite store,
the real gateway client, and the fake gateway recording exactly what was sent."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from bot.files import DownloadFailed, DownloadRefused
from bot.files.sniff import WHAT_PARLEY_READS
from bot.options import ModelOptions
from bot.runtime import Runtime
from bot.settings import Settings
from bot.store.models import utcnow
from bot.types import (
    Author,
    ContextMessage,
    Outcome,
)
from tests.fakes.gateway import FakeGateway, RecordedRequest, Reply
from tests.files_helpers import (
    PAGE_TEXTS,
    attachment,
    blocks_of,
    corrupt_pdf,
    decoded_data_uri,
    encrypted_pdf,
    image_only_pdf,
    pdf,
    png,
    user_messages,
    zip_bytes,
)
from tests.files_turns import ask

CLAUDE = "claude-sonnet-4-5"
GEMINI = "gemini-2.5-flash"
LAYOUT = "layout and images are not seen"
READS = WHAT_PARLEY_READS
MODELS = {
    "claude-3-pages": ModelOptions(max_pdf_pages=3),
    "gemini-no-docs": ModelOptions(documents=False),
    "claude-no-docs": ModelOptions(documents=False),
    "claude-tiny": ModelOptions(max_pdf_bytes=1200),
}


def _echo_question(record: RecordedRequest) -> Reply:
    """Echo only the question (the last text of the last user turn), not the files' text."""
    content = user_messages(record.json)[-1]
    # The OpenAI format joins a turn of text parts into one string: the question is its last line.
    last = content.rsplit("\n", 1)[-1] if isinstance(content, str) else blocks_of(content, "text")[-1]["text"]
    return Reply(text=f"You said: {last}")


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    async with FakeGateway(default=_echo_question) as gw:
        yield gw


Make = Callable[..., Awaitable[Runtime]]


@pytest.fixture
async def make(gateway: FakeGateway, tmp_path: Path) -> AsyncIterator[Make]:
    made: list[Runtime] = []

    async def factory(**overrides: Any) -> Runtime:
        settings = Settings(
            apicore_base_url=gateway.url,
            apicore_api_key=gateway.api_key,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}",
            parley_models=MODELS,
            **overrides,
        )
        runtime = await Runtime.create(settings)
        made.append(runtime)
        return runtime

    yield factory
    for runtime in made:
        await runtime.aclose()


@pytest.fixture
async def runtime(make: Make) -> Runtime:
    return await make()


def sent(gateway: FakeGateway) -> dict[str, Any]:
    body = gateway.stream_requests[-1].json
    assert isinstance(body, dict)
    return body


def documents(request: RecordedRequest | dict[str, Any]) -> list[dict[str, Any]]:
    body = request.json if isinstance(request, RecordedRequest) else request
    return [b for content in user_messages(body) for b in blocks_of(content, "document")]


def file_parts(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for content in user_messages(body) for b in blocks_of(content, "file")]


def texts(body: dict[str, Any]) -> list[str]:
    return [b["text"] for content in user_messages(body) for b in blocks_of(content, "text")]


# --- PDFs as documents, both wire formats -------------------------------------------------------


async def test_bare_mention_with_a_pdf_summarizes_it_as_a_cached_anthropic_document(
    runtime: Runtime, gateway: FakeGateway
) -> None:
    report = pdf()
    file, source = attachment("report.pdf", report, declared_type="application/pdf")

    result = await ask(runtime, "", [file])

    body = sent(gateway)
    assert gateway.stream_requests[-1].path == "/v1/messages"
    (only,) = user_messages(body)
    assert only[0] == {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": only[0]["source"]["data"]},
        "title": "report.pdf",
        "cache_control": {"type": "ephemeral"},
    }
    assert base64.b64decode(only[0]["source"]["data"]) == report
    assert only[1:] == [{"type": "text", "text": "Summarize this document."}]  # files first
    assert result.outcome is Outcome.COMPLETE
    assert result.shown == "Summary of report.pdf:\n\nYou said: Summarize this document."
    assert source.fetches == [32 * 1024 * 1024]


async def test_a_pdf_goes_to_the_openai_format_as_a_file_part(runtime: Runtime, gateway: FakeGateway) -> None:
    report = pdf()
    file, _ = attachment("report.pdf", report)

    result = await ask(runtime, "What grew?", [file], model=GEMINI)

    body = sent(gateway)
    assert gateway.stream_requests[-1].path == "/v1/chat/completions"
    (content,) = user_messages(body)
    assert content[0]["type"] == "file"
    assert content[0]["file"]["filename"] == "report.pdf"
    assert decoded_data_uri(content[0]["file"]["file_data"], "application/pdf") == report
    assert content[1:] == [{"type": "text", "text": "What grew?"}]
    assert result.shown == "You said: What grew?"  # a question was asked: no summary note


@pytest.mark.parametrize("model", [CLAUDE, GEMINI])
async def test_a_follow_up_without_re_uploading_still_carries_the_document(
    runtime: Runtime, gateway: FakeGateway, model: str
) -> None:
    report = pdf()
    file, source = attachment("report.pdf", report)
    await ask(runtime, "", [file], model=model)
    first = sent(gateway)

    result = await ask(runtime, "And what are the risks?", model=model)

    body = sent(gateway)
    users = user_messages(body)
    assert len(users) == 2
    if model == CLAUDE:
        doc = users[0][0]
        assert doc["type"] == "document" and doc["cache_control"] == {"type": "ephemeral"}
        assert base64.b64decode(doc["source"]["data"]) == report
        # The prompt starts exactly as the first request did, so the cached prefix is reused.
        assert users[0] == user_messages(first)[0]
        assert len(documents(body)) == 1
    else:
        (part,) = file_parts(body)
        assert decoded_data_uri(part["file"]["file_data"], "application/pdf") == report
        assert users[0][0] == part
    assert blocks_of(users[-1], "text")[-1]["text"] == "And what are the risks?"
    assert body["messages"][-2]["role"] == "assistant"
    assert "You said: Summarize this document." in str(body["messages"][-2]["content"])
    assert source.fetches == [32 * 1024 * 1024]  # downloaded once, remembered after
    assert result.shown == "You said: And what are the risks?"


async def test_another_thread_does_not_get_the_document(runtime: Runtime, gateway: FakeGateway) -> None:
    file, _ = attachment("report.pdf", pdf())
    await ask(runtime, "", [file])
    await ask(runtime, "hello", thread="elsewhere")
    assert documents(sent(gateway)) == []


async def test_the_same_pdf_twice_in_one_message_is_sent_once(runtime: Runtime, gateway: FakeGateway) -> None:
    report = pdf()
    one, _ = attachment("report.pdf", report)
    two, _ = attachment("copy of report.pdf", report)
    await ask(runtime, "compare", [one, two])
    assert len(documents(sent(gateway))) == 1


async def test_an_empty_password_pdf_is_sent_decrypted(runtime: Runtime, gateway: FakeGateway) -> None:
    file, _ = attachment("restricted.pdf", encrypted_pdf(""))
    result = await ask(runtime, "read it", [file])
    (doc,) = documents(sent(gateway))
    reader = PdfReader(io.BytesIO(base64.b64decode(doc["source"]["data"])))
    assert not reader.is_encrypted
    assert "Only with the password." in reader.pages[0].extract_text()
    assert result.shown == "You said: read it"


async def test_an_image_only_pdf_goes_as_a_document(runtime: Runtime, gateway: FakeGateway) -> None:
    scan = image_only_pdf()
    file, _ = attachment("scan.pdf", scan)
    await ask(runtime, "what is in it?", [file])
    (doc,) = documents(sent(gateway))
    assert base64.b64decode(doc["source"]["data"]) == scan


# --- the text fallback --------------------------------------------------------------------------


async def test_over_the_page_cap_the_extracted_text_is_sent_instead(
    runtime: Runtime, gateway: FakeGateway
) -> None:
    pages = [f"Section {n}: the number is {n * 111}." for n in range(1, 6)]
    file, _ = attachment("long.pdf", pdf(pages))

    result = await ask(runtime, "", [file], model="claude-3-pages")

    body = sent(gateway)
    assert documents(body) == []
    (content,) = user_messages(body)
    extracted = content[0]["text"]
    assert extracted.startswith(
        "Text extracted from long.pdf (layout and images not included):\n```\n[page 1]\n"
    )
    for number, text in enumerate(pages, start=1):
        assert f"[page {number}]\n{text}" in extracted
    assert content[0]["cache_control"] == {"type": "ephemeral"}
    assert content[1] == {"type": "text", "text": "Summarize this document."}
    assert result.shown == (
        "long.pdf has 5 pages, more than the 3 this model takes as a document, so I used the text of "
        f"long.pdf instead: {LAYOUT}.\n\nSummary of long.pdf:\n\nYou said: Summarize this document."
    )


async def test_the_text_fallback_is_remembered_for_follow_ups_with_cache_control(
    runtime: Runtime, gateway: FakeGateway
) -> None:
    file, _ = attachment("long.pdf", pdf([f"Line {n}" for n in range(5)]))
    await ask(runtime, "", [file], model="claude-3-pages")
    await ask(runtime, "and line 4?", model="claude-3-pages")
    first_user = user_messages(sent(gateway))[0]
    assert first_user[0]["text"].startswith("Text extracted from long.pdf")
    assert "[page 5]\nLine 4" in first_user[0]["text"]
    assert first_user[0]["cache_control"] == {"type": "ephemeral"}


@pytest.mark.parametrize("model", ["claude-no-docs", "gemini-no-docs"])
async def test_a_model_without_documents_gets_the_text(
    runtime: Runtime, gateway: FakeGateway, model: str
) -> None:
    file, _ = attachment("report.pdf", pdf())
    result = await ask(runtime, "What grew?", [file], model=model)
    body = sent(gateway)
    assert documents(body) == [] and file_parts(body) == []
    joined = "\n".join(texts(body))
    for text in PAGE_TEXTS:
        assert text in joined
    assert result.shown == (
        "This model doesn't take PDFs as documents, so I used the text of report.pdf instead: "
        f"{LAYOUT}.\n\nYou said: What grew?"
    )


async def test_an_image_only_pdf_without_documents_is_refused_honestly(
    runtime: Runtime, gateway: FakeGateway
) -> None:
    file, _ = attachment("scan.pdf", image_only_pdf())
    result = await ask(runtime, "", [file], model="claude-no-docs")
    assert gateway.stream_requests == []  # nothing usable and nothing asked: no model call
    assert result.shown == (
        "This model doesn't take PDFs as documents, and scan.pdf has no text I could extract "
        "(it may be scanned images), so I couldn't read it."
    )


async def test_over_the_byte_limit_the_text_is_used_with_the_limit_named(
    runtime: Runtime, gateway: FakeGateway
) -> None:
    report = pdf()
    file, _ = attachment("report.pdf", report)
    result = await ask(runtime, "sum?", [file], model="claude-tiny")
    assert documents(sent(gateway)) == []
    size_kb = f"{math.ceil(len(report) * 10 / 1024) / 10:.1f} KB"
    assert result.shown == (
        f"report.pdf is {size_kb}, more than the 0.8 KB of PDF this model takes in one request, "
        f"so I used the text of report.pdf instead: {LAYOUT}.\n\nYou said: sum?"
    )


async def test_long_text_is_cut_to_the_budget_with_a_note(make: Make, gateway: FakeGateway) -> None:
    runtime = await make(parley_file_text_chars=60)
    file, _ = attachment("long.pdf", pdf([f"Section {n} " + "words " * 20 for n in range(5)]))
    result = await ask(runtime, "q", [file], model="claude-3-pages")
    extracted = texts(sent(gateway))[0]
    body = extracted.split("```\n", 1)[1].rsplit("\n```\n", 1)[0]
    assert len(body) == 60
    assert result.shown == (
        "long.pdf has 5 pages, more than the 3 this model takes as a document, so I used the text of "
        f"long.pdf instead: {LAYOUT}.\n\n"
        "The text of long.pdf is too long to send whole: I used the first 60 characters.\n\nYou said: q"
    )


# --- refusals -----------------------------------------------------------------------------------


async def test_an_encrypted_pdf_is_refused_and_the_question_still_answered(
    runtime: Runtime, gateway: FakeGateway
) -> None:
    file, _ = attachment("locked.pdf", encrypted_pdf("s3cret"))
    result = await ask(runtime, "what does it say?", [file])
    assert documents(sent(gateway)) == []
    assert result.shown == (
        "I couldn't read locked.pdf: it is password-protected. Send a copy without a password.\n\n"
        "You said: what does it say?"
    )


async def test_an_encrypted_pdf_alone_gets_the_note_and_no_model_call(
    runtime: Runtime, gateway: FakeGateway
) -> None:
    file, _ = attachment("locked.pdf", encrypted_pdf("s3cret"))
    result = await ask(runtime, "", [file])
    assert gateway.stream_requests == []
    assert result.outcome is Outcome.COMPLETE
    assert (
        result.shown
        == "I couldn't read locked.pdf: it is password-protected. Send a copy without a password."
    )


async def test_a_corrupt_pdf_is_refused(runtime: Runtime, gateway: FakeGateway) -> None:
    file, _ = attachment("broken.pdf", corrupt_pdf())
    result = await ask(runtime, "", [file])
    assert result.shown == "I couldn't read broken.pdf: the PDF is damaged and can't be opened."


async def test_a_binary_file_named_pdf_is_called_out(runtime: Runtime, gateway: FakeGateway) -> None:
    file, _ = attachment("report.pdf", zip_bytes(), declared_type="application/pdf")
    result = await ask(runtime, "", [file])
    assert gateway.stream_requests == []
    assert (
        result.shown == f"report.pdf is not a PDF despite its name, and not a file Parley can read ({READS})."
    )


async def test_a_text_file_named_pdf_is_read_as_text_with_a_note(
    runtime: Runtime, gateway: FakeGateway
) -> None:
    file, _ = attachment("notes.pdf", b"Access denied: ask the owner for a copy.\n")
    result = await ask(runtime, "why?", [file])
    assert (
        texts(sent(gateway))[0] == "File: notes.pdf\n```\nAccess denied: ask the owner for a copy.\n\n```\n"
    )
    assert result.shown.startswith("notes.pdf is not a PDF despite its name; I read it as a text file.\n\n")


async def test_a_web_page_named_pdf_is_read_as_a_page_with_a_note(
    runtime: Runtime, gateway: FakeGateway
) -> None:
    file, _ = attachment("notes.pdf", b"<html><body><p>Access denied</p></body></html>\n")
    result = await ask(runtime, "why?", [file])
    (text,) = texts(sent(gateway))[:1]
    assert text.startswith("Text of notes.pdf (as Markdown; images not included):\n")
    assert "Access denied" in text and "<p>" not in text
    assert result.shown.startswith("notes.pdf is not a PDF despite its name; I read it as a web page.\n\n")


async def test_an_unsupported_file_names_what_parley_reads(runtime: Runtime, gateway: FakeGateway) -> None:
    file, _ = attachment("data.xlsx", zip_bytes())
    result = await ask(runtime, "totals?", [file])
    assert (
        result.shown == f"I can't read data.xlsx (a ZIP archive): Parley reads {READS}.\n\nYou said: totals?"
    )


async def test_too_big_is_refused_before_downloading_with_the_limit(
    runtime: Runtime, gateway: FakeGateway
) -> None:
    file, source = attachment("huge.pdf", b"", size=40 * 1024 * 1024)
    result = await ask(runtime, "", [file])
    assert source.fetches == []
    assert result.shown == "I couldn't read huge.pdf: it is 40.0 MB, and Parley reads files up to 32.0 MB."


async def test_a_file_larger_than_declared_is_stopped_at_the_cap(make: Make, gateway: FakeGateway) -> None:
    runtime = await make(parley_file_max_bytes=1000)
    file, source = attachment("liar.pdf", pdf(), size=10)
    result = await ask(runtime, "", [file])
    assert source.fetches == [1000]
    assert result.shown == "I couldn't read liar.pdf: it is larger than the 0.9 KB Parley reads."


async def test_the_message_total_is_capped(make: Make, gateway: FakeGateway) -> None:
    runtime = await make(parley_file_request_max_bytes=3 * 1024 * 1024)
    big = b"x" * (2 * 1024 * 1024)
    one, _ = attachment("a.txt", big)
    two, _ = attachment("b.txt", big)
    result = await ask(runtime, "q", [one, two])
    assert result.shown == (
        "The text of a.txt is too long to send whole: I used the first 100,000 characters.\n\n"
        "I couldn't read b.txt: the files of one message can total at most 3.0 MB.\n\nYou said: q"
    )


async def test_too_many_files_are_skipped_by_name(make: Make, gateway: FakeGateway) -> None:
    runtime = await make(parley_files_max_count=2)
    files = [attachment(f"{n}.txt", f"file {n}".encode())[0] for n in "abc"]
    result = await ask(runtime, "q", files)
    assert texts(sent(gateway))[:2] == ["File: a.txt\n```\nfile a\n```\n", "File: b.txt\n```\nfile b\n```\n"]
    assert result.shown == "I read only the first 2 files of this message; skipped: c.txt.\n\nYou said: q"


@pytest.mark.parametrize(
    ("error", "note"),
    [
        (DownloadFailed("HTTP 404"), "I couldn't download report.pdf (HTTP 404)."),
        (
            DownloadRefused("host evil.example"),
            "I didn't download report.pdf: its address is not on the platform's file host.",
        ),
    ],
)
async def test_download_failures_are_named(
    runtime: Runtime, gateway: FakeGateway, error: Exception, note: str
) -> None:
    from tests.files_helpers import Source

    file, _ = attachment("report.pdf", source=Source(error=error))  # type: ignore[arg-type]
    result = await ask(runtime, "", [file])
    assert result.shown == note


async def test_files_not_kept_are_said_so_and_not_re_sent(make: Make, gateway: FakeGateway) -> None:
    runtime = await make(parley_file_store_max_bytes=1024)
    file, _ = attachment("report.pdf", pdf())
    result = await ask(runtime, "q", [file])
    assert len(documents(sent(gateway))) == 1
    assert result.shown == (
        "report.pdf is larger than the 1.0 KB Parley keeps, so it won't be available for follow-up "
        "questions in this thread.\n\nYou said: q"
    )
    await ask(runtime, "again?")
    assert documents(sent(gateway)) == []


# --- images and text files ----------------------------------------------------------------------


@pytest.mark.parametrize("model", [CLAUDE, GEMINI])
async def test_an_image_goes_as_an_image_part(runtime: Runtime, gateway: FakeGateway, model: str) -> None:
    picture = png()
    file, _ = attachment("photo.png", picture)
    await ask(runtime, "what colour?", [file], model=model)
    (content,) = user_messages(sent(gateway))
    if model == CLAUDE:
        assert content[0]["type"] == "image"
        assert content[0]["source"]["media_type"] == "image/png"
        assert base64.b64decode(content[0]["source"]["data"]) == picture
    else:
        assert content[0]["type"] == "image_url"
        assert decoded_data_uri(content[0]["image_url"]["url"], "image/png") == picture
    assert content[-1] == {"type": "text", "text": "what colour?"}


async def test_an_image_too_large_for_claude_is_refused(runtime: Runtime, gateway: FakeGateway) -> None:
    picture = png(1500, 1500, noise=True)  # ~6.4 MB of incompressible pixels
    file, _ = attachment("photo.png", picture)
    result = await ask(runtime, "q", [file])
    size = f"{math.ceil(len(picture) * 10 / 1048576) / 10:.1f} MB"
    assert (
        result.shown
        == f"I couldn't use photo.png: it is {size}, and this model takes images up to 3.7 MB.\n\nYou said: q"
    )


async def test_a_text_file_is_inlined_fenced_with_its_name(runtime: Runtime, gateway: FakeGateway) -> None:
    code = "\ufeffdef f():\n    return '```'\n".encode()
    file, _ = attachment("f.py", code)
    block = "File: f.py\n````\ndef f():\n    return '```'\n\n````\n"
    await ask(runtime, "explain", [file])
    (content,) = user_messages(sent(gateway))
    assert content == [
        {"type": "text", "text": block, "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "explain"},
    ]
    await ask(runtime, "explain", [file], model=GEMINI, thread="gemini")
    (content,) = user_messages(sent(gateway))
    assert content == block + "\n\nexplain"  # separate blocks stay separate


# --- thread context and retention ---------------------------------------------------------------


async def test_files_on_thread_context_are_fetched_once_and_remembered(
    runtime: Runtime, gateway: FakeGateway
) -> None:
    report = pdf()
    file, source = attachment("report.pdf", report, source_id="F1")
    earlier = ContextMessage(Author("u2", "Bo"), "here is the report", attachments=(file,), platform_id="p1")

    result = await ask(runtime, "what grew?", context=[earlier], message_id="p2")
    (doc,) = documents(sent(gateway))
    assert base64.b64decode(doc["source"]["data"]) == report and doc["cache_control"] == {"type": "ephemeral"}
    assert result.shown == "You said: [Bo] here is the report\n\n[Ann] what grew?"

    await ask(runtime, "and the risks?", context=[earlier], message_id="p3")
    assert len(documents(sent(gateway))) == 1
    assert source.fetches == [32 * 1024 * 1024]  # the thread is re-read, its file is not re-fetched


async def test_files_past_retention_are_no_longer_sent(runtime: Runtime, gateway: FakeGateway) -> None:
    file, _ = attachment("report.pdf", pdf())
    await ask(runtime, "", [file])
    assert await runtime.store.blobs.prune(utcnow() + timedelta(seconds=1)) == 1
    await ask(runtime, "still there?")
    assert documents(sent(gateway)) == []
