"""What a file is, from its bytes: names and declared types are only hints from the uploader."""

from __future__ import annotations

import codecs
import enum
from dataclasses import dataclass

PDF_MEDIA_TYPE = "application/pdf"
TEXT_MEDIA_TYPE = "text/plain"

# Readers accept the header anywhere in the first KiB (some generators put junk before it).
_PDF_HEADER_WINDOW = 1024
_UTF8_BOM = codecs.BOM_UTF8

WHAT_PARLEY_READS = "PDFs, PNG, JPEG, GIF and WebP images, and UTF-8 text files"


class Kind(enum.StrEnum):
    PDF = "pdf"
    IMAGE = "image"
    TEXT = "text"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Sniffed:
    kind: Kind
    media_type: str | None
    label: str  # how to name the kind to a user: "a PNG image", "a text file"
    text: str | None = None  # the decoded text, for Kind.TEXT


_UNKNOWN = Sniffed(Kind.UNKNOWN, None, "an unsupported file")
_PDF = Sniffed(Kind.PDF, PDF_MEDIA_TYPE, "a PDF")


def image_type(data: bytes) -> str | None:
    """The image media type from magic bytes, for the four formats both wire formats take."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def has_pdf_header(data: bytes) -> bool:
    return b"%PDF-" in data[:_PDF_HEADER_WINDOW]


def decode_text(data: bytes) -> str | None:
    """The text of a UTF-8 file (a BOM is dropped), or None for anything binary.

    A NUL never occurs in text people write, while UTF-16 and most binary formats are full of
    them, so it rejects those even where the bytes happen to be valid UTF-8.
    """
    if b"\x00" in data:
        return None
    body = data[len(_UTF8_BOM) :] if data.startswith(_UTF8_BOM) else data
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def sniff(data: bytes) -> Sniffed:
    """The kind of ``data``. A PDF here only has the header: :mod:`bot.files.pdf` must parse it.

    Text is recognised by decoding, which costs a pass over the bytes: run this off the event
    loop for large files.
    """
    if data.startswith(b"%PDF-"):
        return _PDF
    image = image_type(data)
    if image is not None:
        return Sniffed(Kind.IMAGE, image, f"a {image.split('/')[1].upper()} image")
    text = decode_text(data) if data else None
    if text is not None:
        # Text that merely mentions "%PDF-" near its start stays text.
        return Sniffed(Kind.TEXT, TEXT_MEDIA_TYPE, "a text file", text)
    if has_pdf_header(data):
        return _PDF
    return _UNKNOWN


def claims_pdf(name: str, declared_type: str | None) -> bool:
    """Whether the uploader presented the file as a PDF (to call out a file that is not one)."""
    return name.lower().endswith(".pdf") or (declared_type or "").lower().startswith(PDF_MEDIA_TYPE)
