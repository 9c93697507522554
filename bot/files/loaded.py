"""The values the file pipeline passes between its steps: a downloaded file and a request's room."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.files.sniff import PDF_MEDIA_TYPE, TEXT_MEDIA_TYPE, Kind, Sniffed, decode_text, format_of, sniff
from bot.store import AttachmentRecord


@dataclass(slots=True)
class Loaded:
    """A file downloaded and typed: its bytes are held once, here."""

    name: str
    data: bytes
    sha256: str
    kind: Sniffed


@dataclass(slots=True)
class Room:
    """What is left of one request's room for files."""

    pages: int
    encoded_bytes: int
    text_chars: int
    seen: set[str] = field(default_factory=set)  # sha256 of files already in the request


def names(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def cut_note(name: str, chars: int) -> str:
    return f"The text of {name} is too long to send whole: I used the first {chars:,} characters."


def with_sha(record: AttachmentRecord, sha256: str) -> AttachmentRecord:
    return AttachmentRecord(record.name, record.media_type, record.size, sha256)


def digest_and_sniff(data: bytes, csv_hint: bool = False) -> tuple[str, Sniffed]:
    return hashlib.sha256(data).hexdigest(), sniff(data, csv_hint=csv_hint)


def sniff_stored(media_type: str | None, data: bytes) -> Sniffed:
    """The kind of a stored file: its recorded type, checked against the bytes (cheaply)."""
    if media_type == PDF_MEDIA_TYPE and data.startswith(b"%PDF-"):
        return Sniffed(Kind.PDF, media_type, "a PDF")
    if media_type and media_type.startswith("image/"):
        return sniff(data[:64]) if data else Sniffed(Kind.UNKNOWN, None, "")
    if media_type == TEXT_MEDIA_TYPE:
        text = decode_text(data)
        if text is not None:
            return Sniffed(Kind.TEXT, media_type, "a text file", text)
    return sniff(data, csv_hint=format_of(media_type) == "csv")
