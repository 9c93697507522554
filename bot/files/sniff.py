"""What a file is, from its bytes: names and declared types are only hints from the uploader."""

from __future__ import annotations

import codecs
import enum
from dataclasses import dataclass

from bot.files.containers import CFB_MAGIC, ZIP_MAGIC, identify_zip
from bot.files.errors import WHAT_PARLEY_READS as WHAT_PARLEY_READS  # re-exported: tests, docs

PDF_MEDIA_TYPE = "application/pdf"
TEXT_MEDIA_TYPE = "text/plain"
CSV_MEDIA_TYPE = "text/csv"
HTML_MEDIA_TYPE = "text/html"

# Readers accept the header anywhere in the first KiB (some generators put junk before it).
_PDF_HEADER_WINDOW = 1024
_UTF8_BOM = codecs.BOM_UTF8


class Kind(enum.StrEnum):
    PDF = "pdf"
    IMAGE = "image"
    TEXT = "text"
    DOCUMENT = "document"  # becomes Markdown text locally: office formats, EPUB, HTML, CSV
    AUDIO = "audio"  # transcribed by the gateway
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Sniffed:
    kind: Kind
    media_type: str | None
    label: str  # how to name the kind to a user: "a PNG image", "a text file"
    text: str | None = None  # the decoded text, for Kind.TEXT
    format: str = ""  # for documents and audio: "docx", "ogg", … (audio: also the upload's extension)


# format → (media type, how a user calls it)
DOCUMENT_FORMATS: dict[str, tuple[str, str]] = {
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "a Word document"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "an Excel workbook"),
    "pptx": (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "a PowerPoint presentation",
    ),
    "odt": ("application/vnd.oasis.opendocument.text", "an OpenDocument text"),
    "ods": ("application/vnd.oasis.opendocument.spreadsheet", "an OpenDocument spreadsheet"),
    "odp": ("application/vnd.oasis.opendocument.presentation", "an OpenDocument presentation"),
    "epub": ("application/epub+zip", "an EPUB book"),
    "html": (HTML_MEDIA_TYPE, "a web page"),
    "csv": (CSV_MEDIA_TYPE, "a CSV file"),
    "ole": ("application/x-ole-storage", "an old-style or password-protected Office file"),
}
AUDIO_FORMATS: dict[str, tuple[str, str]] = {
    "ogg": ("audio/ogg", "an Ogg audio file"),
    "mp3": ("audio/mpeg", "an MP3 file"),
    "m4a": ("audio/mp4", "an M4A audio file"),
    "mp4": ("video/mp4", "an MP4 file"),
    "wav": ("audio/wav", "a WAV file"),
    "webm": ("audio/webm", "a WebM file"),
    "flac": ("audio/flac", "a FLAC file"),
}
_MEDIA_TO_FORMAT = {media: fmt for fmt, (media, _) in (DOCUMENT_FORMATS | AUDIO_FORMATS).items()}

_M4A_BRANDS = (b"M4A ", b"M4B ", b"M4P ")
_MP4_BRANDS = (b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"dash", b"MSNV", b"avc1")
_OGG_CODECS = (b"OpusHead", b"\x01vorbis", b"\x7fFLAC")


_UNKNOWN = Sniffed(Kind.UNKNOWN, None, "an unsupported file")
_PDF = Sniffed(Kind.PDF, PDF_MEDIA_TYPE, "a PDF")


def document(fmt: str) -> Sniffed:
    media_type, label = DOCUMENT_FORMATS[fmt]
    return Sniffed(Kind.DOCUMENT, media_type, label, format=fmt)


def audio(fmt: str) -> Sniffed:
    media_type, label = AUDIO_FORMATS[fmt]
    return Sniffed(Kind.AUDIO, media_type, label, format=fmt)


# MPEG audio layer III (MP3) bitrates in kbit/s by index, and sample rates by version.
_MP3_RATES = {
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mp3_frame_length(data: bytes, at: int) -> int | None:
    """The length of the MP3 frame whose header starts at ``at``, or None if there is none."""
    if len(data) < at + 4 or data[at] != 0xFF or data[at + 1] & 0xE0 != 0xE0:
        return None
    version, layer = (data[at + 1] >> 3) & 3, (data[at + 1] >> 1) & 3
    index, rate, padding = data[at + 2] >> 4, (data[at + 2] >> 2) & 3, (data[at + 2] >> 1) & 1
    if version == 1 or layer != 1 or index in (0, 0xF) or rate == 3:
        return None
    bitrate = _MP3_RATES[1 if version == 3 else 2][index] * 1000
    per_frame = 144 if version == 3 else 72
    return per_frame * bitrate // _SAMPLE_RATES[version][rate] + padding


def _mp3_frames(data: bytes) -> bool:
    """Two MP3 frames in a row from the start: one header alone is too easy to match by chance
    (a UTF-16 byte order mark passes for one)."""
    length = _mp3_frame_length(data, 0)
    return length is not None and _mp3_frame_length(data, length) is not None


def _mp4_format(data: bytes) -> str | None:
    if data[4:8] != b"ftyp":
        return None
    size = int.from_bytes(data[:4], "big")
    brands = [data[8:12]] + [data[i : i + 4] for i in range(16, min(size, 64), 4)]
    if brands[0] in _M4A_BRANDS:
        return "m4a"
    if any(brand in _M4A_BRANDS for brand in brands):
        return "m4a"
    if any(brand in _MP4_BRANDS for brand in brands):
        return "mp4"
    return None  # HEIC, AVIF, QuickTime…: not audio the gateway takes


def audio_format(data: bytes) -> str | None:
    """The audio container from magic bytes: ogg, mp3, m4a, mp4, wav, webm, flac, or None."""
    if data.startswith(b"OggS"):
        return "ogg" if any(codec in data[:64] for codec in _OGG_CODECS) else None
    if data.startswith(b"fLaC"):
        return "flac"
    if data.startswith(b"ID3") or _mp3_frames(data):
        return "mp3"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm" if b"webm" in data[:64] else None  # other Matroska files are video
    return _mp4_format(data)


# The WHATWG MIME sniffing signatures for HTML: one of these tags (case-insensitive) first, after
# any whitespace or byte order mark, followed by a space or ">" ("<!--" by anything).
_HTML_SIGNATURES = (
    b"<!doctype html", b"<html", b"<head", b"<script", b"<iframe", b"<h1", b"<div", b"<font",
    b"<table", b"<a", b"<style", b"<title", b"<b", b"<body", b"<br", b"<p", b"<!--",
)  # fmt: skip
_TAG_ENDS = (b" ", b">", b"\t", b"\n", b"\r", b"\x0c")
_BOMS = (_UTF8_BOM, codecs.BOM_UTF16_BE, codecs.BOM_UTF16_LE)


def looks_like_html(data: bytes, *, fragments: bool = False) -> bool:
    """A web page by its start: a doctype or <html>, or markup that opens a head or body (XHTML's
    ``<?xml …?>`` first included).

    ``fragments``: also what a browser takes for HTML when a server does not say (any WHATWG
    signature tag first: ``<p>``, ``<div>``, ``<!--`` …), for pages ``read_url`` fetches. An
    upload starting ``<div>`` is more likely markup someone wants read as it is.
    """
    head = data[:1024]
    for bom in _BOMS:
        head = head.removeprefix(bom)
    head = head.lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return True
    if head.startswith(b"<") and (b"<html" in head or b"<body" in head or b"<head" in head):
        return True
    return fragments and any(
        head.startswith(tag) and (tag == b"<!--" or head[len(tag) : len(tag) + 1] in _TAG_ENDS)
        for tag in _HTML_SIGNATURES
    )


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


def sniff(data: bytes, *, csv_hint: bool = False) -> Sniffed:
    """The kind of ``data``. A PDF here only has the header: :mod:`bot.files.pdf` must parse it;
    a document is only recognised, its reader still checks it.

    ``csv_hint``: the uploader called it CSV (by name or type). Comma-separated values are plain
    text by their bytes, so it takes the hint and a table that parses to call text CSV.

    Text is recognised by decoding, which costs a pass over the bytes: run this off the event
    loop for large files.
    """
    if data.startswith(b"%PDF-"):
        return _PDF
    image = image_type(data)
    if image is not None:
        return Sniffed(Kind.IMAGE, image, f"a {image.split('/')[1].upper()} image")
    sound = audio_format(data)
    if sound is not None:
        return audio(sound)
    if data.startswith(ZIP_MAGIC):
        fmt = identify_zip(data)
        return document(fmt) if fmt else Sniffed(Kind.UNKNOWN, None, "a ZIP archive")
    if data.startswith(CFB_MAGIC):
        return document("ole")
    if looks_like_html(data):
        return document("html")
    text = decode_text(data) if data else None
    if text is not None:
        if csv_hint:
            from bot.files.tables import looks_tabular

            if looks_tabular(text):
                return Sniffed(Kind.DOCUMENT, CSV_MEDIA_TYPE, "a CSV file", text, "csv")
        # Text that merely mentions "%PDF-" near its start stays text.
        return Sniffed(Kind.TEXT, TEXT_MEDIA_TYPE, "a text file", text)
    if has_pdf_header(data):
        return _PDF
    return _UNKNOWN


def claims_csv(name: str, declared_type: str | None) -> bool:
    declared = (declared_type or "").lower()
    return name.lower().endswith((".csv", ".tsv")) or declared.startswith(
        ("text/csv", "text/tab-separated-values", "application/csv")
    )


def format_of(media_type: str | None) -> str | None:
    """The document or audio format a stored media type stands for."""
    return _MEDIA_TO_FORMAT.get(media_type or "")


def claims_pdf(name: str, declared_type: str | None) -> bool:
    """Whether the uploader presented the file as a PDF (to call out a file that is not one)."""
    return name.lower().endswith(".pdf") or (declared_type or "").lower().startswith(PDF_MEDIA_TYPE)
