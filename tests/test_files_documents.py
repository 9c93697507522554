"""Documents of every kind through the whole core, and hostile ones refused in bounded memory."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.files.documents import read_document
from bot.files.errors import DocumentRefused
from bot.files.sniff import Kind, sniff
from bot.runtime import Runtime
from tests import document_helpers as made
from tests.fakes.gateway import FakeGateway
from tests.files_helpers import attachment
from tests.files_turns import ask, echo_question, make_runtime, sent_texts

ROOT = Path(__file__).resolve().parent.parent
SENTENCE = made.SENTENCE


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    async with FakeGateway(default=echo_question) as gw:
        yield gw


@pytest.fixture
async def runtime(gateway: FakeGateway, tmp_path: Path) -> AsyncIterator[Runtime]:
    made_runtime = await make_runtime(gateway, tmp_path)
    yield made_runtime
    await made_runtime.aclose()


TYPES: list[tuple[str, Callable[[], bytes]]] = [
    ("report.docx", made.docx),
    ("figures.xlsx", made.xlsx),
    ("deck.pptx", made.pptx),
    ("report.odt", made.odt),
    ("figures.ods", made.ods),
    ("deck.odp", made.odp),
    ("page.html", made.html),
    ("figures.csv", made.csv_file),
    ("book.epub", made.epub),
]


@pytest.mark.parametrize(("name", "maker"), TYPES, ids=[name for name, _ in TYPES])
async def test_each_type_reaches_the_model_as_text(
    runtime: Runtime, gateway: FakeGateway, name: str, maker: Callable[[], bytes]
) -> None:
    file, _ = attachment(name, maker())

    result = await ask(runtime, "What opens at dawn?", [file])

    (document, question) = sent_texts(gateway)
    assert document.startswith(f"Text of {name} (as Markdown; images not included):\n```\n")
    assert SENTENCE in document
    assert "<" not in document and "secret" not in document  # text, not markup or scripts
    assert question == "What opens at dawn?"
    assert result.shown == "You said: What opens at dawn?"


async def test_a_bare_document_is_summarized_and_remembered_for_follow_ups(
    runtime: Runtime, gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    file, source = attachment("report.docx", made.docx())
    result = await ask(runtime, "", [file])
    assert result.shown == "Summary of report.docx:\n\nYou said: Summarize this document."

    def no_second_read(*args: object, **kwargs: object) -> None:
        raise AssertionError("the document was read again")

    monkeypatch.setattr("bot.files.documents.read_document", no_second_read)
    await ask(runtime, "And the risks?", [])
    first, question = sent_texts(gateway)[0], sent_texts(gateway)[-1]
    assert SENTENCE in first and "- supply\n- staffing" in first
    assert question == "And the risks?"
    assert len(source.fetches) == 1


async def test_a_long_document_is_cut_at_the_text_budget_with_a_note(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    runtime = await make_runtime(gateway, tmp_path, parley_file_text_chars=60)
    try:
        file, _ = attachment("figures.xlsx", made.xlsx())
        result = await ask(runtime, "totals?", [file])
    finally:
        await runtime.aclose()
    assert result.shown.startswith(
        "The text of figures.xlsx is too long to send whole: I used the first 60 characters.\n\n"
    )
    document = sent_texts(gateway)[0]
    assert document.endswith("## Sheet: Sales\n\n| Reg\n```\n") and SENTENCE not in document


def test_structure_survives_as_markdown() -> None:
    docx = read_document(made.docx(), "docx", max_chars=10_000).text
    assert docx.startswith(
        "# Quarterly review\n\nThe harbour bridge opens at dawn.\n\n## Risks\n\n- supply\n"
    )
    assert "| Region | Sales |\n| --- | --- |\n| North \\| East | 10 |" in docx
    xlsx = read_document(made.xlsx(), "xlsx", max_chars=10_000).text
    assert xlsx.startswith(
        "Workbook with 2 sheets: Sales, Notes\n\n## Sheet: Sales\n\n| Region | Sales | Share |"
    )
    assert "| North | 10 | 0.5 |" in xlsx and "## Sheet: Notes" in xlsx
    pptx = read_document(made.pptx(), "pptx", max_chars=10_000).text
    assert "## Slide 1: Plan\n\n- first point\n  - nested point" in pptx
    assert "## Slide 2: Numbers" in pptx and "## Slide 3: Outlook" in pptx
    ods = read_document(made.ods(), "ods", max_chars=10_000).text
    # A million repeated empty rows and 16,384 repeated empty columns add nothing.
    assert ods == (
        "## Sheet: Sales\n\n| Region | Sales |\n| --- | --- |\n| North | 10 |\n\n"
        f"## Sheet: Notes\n\n| {SENTENCE} |\n| --- |"
    )
    epub = read_document(made.epub(), "epub", max_chars=10_000).text
    assert epub.index("Chapter One") < epub.index("Chapter Two") < epub.index(SENTENCE)


def test_the_type_comes_from_the_content_not_the_name() -> None:
    assert sniff(made.docx()).format == "docx"  # whatever it is called
    assert sniff(made.ods()).format == "ods"
    assert sniff(made.csv_file()).kind is Kind.TEXT  # CSV needs the uploader's word as well…
    assert sniff(made.csv_file(), csv_hint=True).format == "csv"
    assert sniff(b"Dear team,\nthe report is late.\n", csv_hint=True).kind is Kind.TEXT  # …and a table


HOSTILE: list[tuple[str, Callable[[], bytes], str]] = [
    ("damaged.docx", made.corrupt_docx, "the file is damaged and can't be opened"),
    ("laughs.docx", lambda: made.with_part(made.docx(), "word/document.xml", made.BILLION_LAUGHS), "entity"),
    ("xxe.docx", lambda: made.with_part(made.docx(), "word/document.xml", made.EXTERNAL_ENTITY), "entity"),
    (
        "locked.docx",
        lambda: made.cfb("Root Entry", "EncryptionInfo", "EncryptedPackage"),
        "password-protected",
    ),
    ("old.doc", lambda: made.cfb("Root Entry", "WordDocument"), "old-style Office file"),
    ("locked.odt", lambda: made.odt(encrypted=True), "password-protected"),
    ("book.epub", lambda: made.epub(drm=True), "DRM-protected"),
]


@pytest.mark.parametrize(("name", "maker", "why"), HOSTILE, ids=[name for name, _, _ in HOSTILE])
async def test_an_unusable_document_gets_a_sentence_naming_it_and_no_model_call(
    runtime: Runtime, gateway: FakeGateway, name: str, maker: Callable[[], bytes], why: str
) -> None:
    file, _ = attachment(name, maker())
    result = await ask(runtime, "", [file])
    assert result.shown.startswith(f"I couldn't read {name}: ")
    assert why in result.shown
    assert gateway.stream_requests == []


@pytest.mark.parametrize("maker", [made.zip_bomb, made.lying_zip], ids=["ratio", "lying-directory"])
def test_a_zip_bomb_is_refused_in_bounded_memory(maker: Callable[[], bytes]) -> None:
    bomb = maker()
    assert len(bomb) < 2 * 1024 * 1024  # inflates to 128 MB / 32 MB
    tracemalloc.start()
    try:
        with pytest.raises(DocumentRefused) as refused:
            read_document(bomb, "docx", max_chars=100_000, name="bomb.docx")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.value.reason in ("bomb", "damaged")
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes while refusing"


def test_no_document_library_is_loaded_until_a_document_arrives() -> None:
    probe = (
        "import sys, bot.runtime, bot.files\n"
        "print(','.join(str(m in sys.modules) for m in "
        "('docx', 'pptx', 'openpyxl', 'trafilatura', 'mutagen', 'lxml')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False,False,False,False,False,False", done.stderr


def test_a_directory_of_too_many_entries_is_refused_unread() -> None:
    crowded = made.many_entries()
    tracemalloc.start()
    try:
        found = sniff(crowded)
        with pytest.raises(DocumentRefused) as refused:
            read_document(crowded, "docx", max_chars=100_000, name="crowded.docx")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found.kind is Kind.UNKNOWN and found.label == "a ZIP archive"
    assert refused.value.reason == "bomb"
    assert peak < 512 * 1024  # zipfile would build 10,000 directory objects (~5 MB)


def test_a_book_chapter_keeps_headings_lists_and_tables() -> None:
    from bot.files.markup import xhtml_markdown

    chapter = (
        b"<html><head><title>t</title><script>hidden()</script></head><body><h2>Part <em>two</em></h2>"
        b"<p>One<br/>two</p><ul><li>a</li><li>b <b>c</b></li></ul><table><tr><th>R</th><th>S|T</th></tr>"
        b"<tr><td>N</td><td>1</td></tr></table><p>after</p></body></html>"
    )
    assert xhtml_markdown(chapter) == (
        "## Part two\n\nOne\ntwo\n\n- a\n\n- b c\n\n| R | S\\|T |\n| --- | --- |\n| N | 1 |\n\nafter"
    )
