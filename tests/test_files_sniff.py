"""Typing by content, PDF checks and extraction on real PDFs, and the parts helpers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.files.errors import CorruptPdf, EncryptedPdf, megabytes
from bot.files.parts import cache_last, encoded_size, extracted_text_part, lead_with, text_file_part
from bot.files.pdf import decrypted_copy, extract_text, inspect_pdf
from bot.files.sniff import Kind, decode_text, sniff
from bot.providers.base import DocumentPart, ImagePart, TextPart, Turn
from tests.files_helpers import PAGE_TEXTS, corrupt_pdf, encrypted_pdf, image_only_pdf, pdf, png, zip_bytes


@pytest.mark.parametrize(
    ("data", "kind", "media_type"),
    [
        (pdf(), Kind.PDF, "application/pdf"),
        (b"junk before\n%PDF-1.4\n\xff\xfe binary", Kind.PDF, "application/pdf"),
        (png(), Kind.IMAGE, "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", Kind.IMAGE, "image/jpeg"),
        (b"GIF89a\x01\x00\x01\x00", Kind.IMAGE, "image/gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", Kind.IMAGE, "image/webp"),
        ("\ufeffnaïve café: ok\n".encode(), Kind.TEXT, "text/plain"),
        (b"A note about the %PDF- header.\n", Kind.TEXT, "text/plain"),
        ("hello".encode("utf-16"), Kind.UNKNOWN, None),  # NULs: not UTF-8 text
        (b"\xc3\x28 invalid utf-8", Kind.UNKNOWN, None),
        (zip_bytes(), Kind.UNKNOWN, None),
    ],
)
def test_sniff_by_content(data: bytes, kind: Kind, media_type: str | None) -> None:
    found = sniff(data)
    assert (found.kind, found.media_type) == (kind, media_type)


def test_text_drops_the_bom() -> None:
    assert sniff("\ufeffa = 1\n".encode()).text == "a = 1\n"


@given(st.text().filter(lambda t: "\0" not in t))
def test_any_text_without_nul_decodes_back(text: str) -> None:
    assert decode_text(text.encode()) == text


@given(st.binary(max_size=256))
def test_sniff_never_raises(data: bytes) -> None:
    found = sniff(data)
    assert found.kind in set(Kind)


def test_a_multi_page_pdf_is_inspected_and_its_text_extracted_page_by_page() -> None:
    data = pdf()
    assert inspect_pdf(data).pages == 3
    extracted = extract_text(data, max_chars=10_000)
    assert extracted.text == "\n\n".join(f"[page {n}]\n{text}" for n, text in enumerate(PAGE_TEXTS, start=1))
    assert (extracted.pages_read, extracted.truncated) == (3, False)


def test_extraction_stops_at_the_budget() -> None:
    extracted = extract_text(pdf([f"page {n} " + "x" * 100 for n in range(50)]), max_chars=250)
    assert len(extracted.text) == 250 and extracted.truncated
    assert extracted.pages_read == 3  # the other 47 pages were never extracted


def test_encryption() -> None:
    with pytest.raises(EncryptedPdf):
        inspect_pdf(encrypted_pdf("s3cret"))
    opened = encrypted_pdf("")
    assert inspect_pdf(opened).encrypted
    copy = decrypted_copy(opened)
    assert not inspect_pdf(copy).encrypted
    assert "Only with the password." in extract_text(copy, max_chars=1000).text


@pytest.mark.parametrize("data", [corrupt_pdf(), pdf()[: len(pdf()) // 3], b"%PDF-1.7\n"])
def test_corrupt_pdfs(data: bytes) -> None:
    with pytest.raises(CorruptPdf):
        inspect_pdf(data)


def test_an_image_only_pdf_has_pages_but_no_text() -> None:
    data = image_only_pdf(3)
    assert inspect_pdf(data).pages == 3
    assert extract_text(data, max_chars=1000).empty


def test_sizes_round_so_a_file_over_a_limit_never_reads_as_equal() -> None:
    assert megabytes(32 * 1024 * 1024) == "32.0 MB"
    assert megabytes(32 * 1024 * 1024 + 1, up=True) == "32.1 MB"
    assert megabytes(5 * 1024 * 1024 * 3 // 4) == "3.7 MB"
    assert megabytes(1000) == "0.9 KB"
    assert encoded_size(3) == 4 and encoded_size(4) == 8


def test_fences_outlast_backticks_in_the_file() -> None:
    part = text_file_part("a.md", "```python\nx\n```")
    assert part.text == "File: a.md\n````\n```python\nx\n```\n````\n"
    assert extracted_text_part("r.pdf", "t").text.startswith("Text extracted from r.pdf")


def test_one_cache_breakpoint_after_a_group_of_files() -> None:
    doc, image = DocumentPart(b"%PDF-", "a.pdf"), ImagePart(b"png", "image/png")
    marked = cache_last([doc, TextPart("t"), image])
    assert marked == [doc, TextPart("t", cache=True), image]


def test_earlier_files_lead_the_first_user_turn() -> None:
    doc = DocumentPart(b"%PDF-", "a.pdf", cache=True)
    turns = [Turn.text("user", "q1"), Turn.text("assistant", "a1"), Turn.text("user", "q2")]
    led = lead_with(turns, [doc])
    assert led[0] == Turn("user", (doc, TextPart("q1")))
    assert led[1:] == turns[1:]
    assert lead_with([Turn.text("assistant", "a")], [doc])[0] == Turn("user", (doc,))
