"""Office files are ZIP (or, encrypted, OLE) containers: what is inside, and whether it is safe to open.

Everything here reads the container's directory and a few bytes of chosen entries; nothing is
inflated whole. The checks run before any document library sees the file:

- **Zip bombs.** The central directory declares each entry's unpacked size; too many entries,
  an entry or a total over the limits, or a compression ratio only a bomb reaches is refused
  before inflating. Python's :mod:`zipfile` (which every library used here reads through) stops
  inflating an entry at its declared size and then fails its CRC check, so a directory that
  lies about sizes costs at most what it declared.
- **XML entity tricks.** An OOXML or ODF part never has a DTD, and an EPUB's only has a public
  id; an internal DTD subset or an ``<!ENTITY`` (billion laughs, external entities) is refused
  from the part's prologue. The parsers are configured not to expand entities as well (see
  :mod:`bot.files.documents`), so this is the first of two locks, the one with the clear sentence.
- **Encrypted OOXML** is not a ZIP at all but an OLE compound file holding ``EncryptionInfo``
  and ``EncryptedPackage`` streams.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass

from bot.files.errors import DocumentRefused, megabytes

ZIP_MAGIC = b"PK\x03\x04"
CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # OLE compound file: old Office, or encrypted OOXML

# Directory entry names in an OLE file are UTF-16LE.
_ENCRYPTED_STREAMS = ("EncryptionInfo".encode("utf-16-le"), "EncryptedPackage".encode("utf-16-le"))

# Content types of the main part, from [Content_Types].xml (macro-enabled and template variants too:
# Parley reads their text and never runs anything).
_OOXML_MAIN = {
    "docx": (
        "wordprocessingml.document.main+xml",
        "wordprocessingml.template.main+xml",
        "ms-word.document.macroenabled.main+xml",
        "ms-word.template.macroenabledtemplate.main+xml",
    ),
    "xlsx": (
        "spreadsheetml.sheet.main+xml",
        "spreadsheetml.template.main+xml",
        "ms-excel.sheet.macroenabled.main+xml",
        "ms-excel.template.macroenabled.main+xml",
    ),
    "pptx": (
        "presentationml.presentation.main+xml",
        "presentationml.slideshow.main+xml",
        "presentationml.template.main+xml",
        "ms-powerpoint.presentation.macroenabled.main+xml",
        "ms-powerpoint.slideshow.macroenabled.main+xml",
    ),
}
_MIMETYPE_ENTRY = {
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/vnd.oasis.opendocument.presentation": "odp",
    "application/epub+zip": "epub",
}
_SMALL_ENTRY = 64 * 1024  # [Content_Types].xml, mimetype: read at most this much to identify
_PROLOGUE = 64 * 1024  # an XML prologue longer than this is not one a real document has
_XML_SUFFIXES = (".xml", ".rels", ".xhtml", ".htm", ".html", ".opf", ".ncx", ".svg")
_ROOT_START = re.compile(rb"<[A-Za-z_]")
_DTD_SUBSET = re.compile(rb"<!DOCTYPE[^>\[]*\[", re.IGNORECASE)
_COMMENT = re.compile(rb"<!--.*?(-->|$)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class ZipLimits:
    """What a document container may hold, judged from its directory before anything is inflated.

    A 30 MB spreadsheet unpacks to about 150 MB of sheet XML at a ratio near 5; Office parts
    rarely pass 100:1 (long runs of empty styled cells), while a deflate bomb reaches ~1000:1.
    ``whole_part_bytes`` bounds the parts a library loads whole into a tree (a Word body, a
    workbook's shared strings), where memory grows with the part, not with what is read.
    """

    entries: int = 10_000
    entry_bytes: int = 512 * 1024 * 1024
    total_bytes: int = 1024 * 1024 * 1024
    ratio: int = 200
    ratio_floor: int = 1024 * 1024  # smaller entries may compress as well as they like
    whole_part_bytes: int = 64 * 1024 * 1024


DEFAULT_LIMITS = ZipLimits()


_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_EOCD_WINDOW = 22 + 65535  # the record and the longest archive comment


def declared_entries(data: bytes) -> int | None:
    """How many entries the end-of-central-directory record declares (zip64 too), read before
    :mod:`zipfile` builds an object per entry: a 32 MB file can declare 700,000 of them."""
    at = data.rfind(_EOCD, max(0, len(data) - _EOCD_WINDOW))
    if at < 0 or at + 22 > len(data):
        return None
    count = int.from_bytes(data[at + 10 : at + 12], "little")
    locator = at - 20
    if count == 0xFFFF and locator >= 0 and data[locator : locator + 4] == _ZIP64_LOCATOR:
        record = int.from_bytes(data[locator + 8 : locator + 16], "little")
        if 0 <= record and record + 40 <= len(data):
            count = int.from_bytes(data[record + 32 : record + 40], "little")
    return count


def open_zip(data: bytes, name: str = "", limits: ZipLimits = DEFAULT_LIMITS) -> zipfile.ZipFile:
    """The archive over ``data`` (read from its central directory; ``data`` is not copied)."""
    entries = declared_entries(data)
    if entries is not None and entries > limits.entries:
        raise DocumentRefused("bomb", name=name, detail=f"{entries} entries declared")
    try:
        return zipfile.ZipFile(io.BufferedReader(io.BytesIO(data)))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise DocumentRefused("damaged", name=name, detail=f"zip: {exc}") from None


def read_small(archive: zipfile.ZipFile, entry: str, limit: int = _SMALL_ENTRY) -> bytes | None:
    """At most ``limit`` bytes of ``entry``, or None if it is missing or unreadable."""
    try:
        with archive.open(entry) as handle:
            return handle.read(limit)
    except (KeyError, zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError):
        return None


def identify_zip(data: bytes) -> str | None:
    """The document format in a ZIP (docx, xlsx, pptx, odt, ods, odp, epub), or None."""
    entries = declared_entries(data)
    if entries is not None and entries > DEFAULT_LIMITS.entries:
        return None  # a directory this size is refused unread; see open_zip
    try:
        archive = zipfile.ZipFile(io.BufferedReader(io.BytesIO(data)))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return None
    with archive:
        mimetype = read_small(archive, "mimetype", 256)
        if mimetype is not None:
            found = _MIMETYPE_ENTRY.get(mimetype.strip().decode("ascii", "replace").lower())
            if found:
                return found
        types = read_small(archive, "[Content_Types].xml")
        if types is None:
            return None
        lowered = types.decode("utf-8", "replace").lower()
        for fmt, markers in _OOXML_MAIN.items():
            if any(marker in lowered for marker in markers):
                return fmt
    return None


def is_encrypted_ooxml(data: bytes) -> bool:
    """An OLE file holding the streams of an encrypted OOXML package (password-protected Office)."""
    return data.startswith(CFB_MAGIC) and all(stream in data for stream in _ENCRYPTED_STREAMS)


def check_zip(archive: zipfile.ZipFile, name: str, limits: ZipLimits = DEFAULT_LIMITS) -> None:
    """Refuse a container whose directory promises more than a document needs (a zip bomb)."""
    infos = archive.infolist()
    if len(infos) > limits.entries:
        raise DocumentRefused("bomb", name=name, detail=f"{len(infos)} entries")
    total = 0
    for info in infos:
        size = info.file_size
        total += size
        if size > limits.entry_bytes or total > limits.total_bytes:
            raise DocumentRefused(
                "bomb", name=name, detail=f"unpacks to more than {megabytes(min(total, 2**62))}"
            )
        if size > limits.ratio_floor and size > limits.ratio * max(info.compress_size, 1):
            raise DocumentRefused(
                "bomb", name=name, detail=f"{info.filename}: ratio {size // max(info.compress_size, 1)}"
            )
        if info.flag_bits & 0x1:
            raise DocumentRefused("encrypted", name=name, detail=f"{info.filename} is encrypted")


def check_xml_prologues(archive: zipfile.ZipFile, name: str) -> None:
    """Refuse XML parts whose prologue declares entities or an internal DTD subset."""
    for info in archive.infolist():
        if info.filename.lower().endswith(_XML_SUFFIXES) and not info.is_dir():
            check_prologue(_head(archive, info), name, info.filename)


def _head(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    try:
        with archive.open(info) as handle:
            return handle.read(_PROLOGUE)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:
        raise DocumentRefused("damaged", detail=f"{info.filename}: {exc}") from None


def check_prologue(head: bytes, name: str, part: str = "") -> None:
    """Raise for an ``<!ENTITY`` or a ``<!DOCTYPE … [`` before the root element of ``head``."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        head = head.decode("utf-16", "replace").encode("utf-8", "replace")
    # A comment may hold anything, "<a" included: it must not end the prologue early.
    head = _COMMENT.sub(b"", head)
    root = _ROOT_START.search(head)
    prologue = head[: root.start()] if root else head
    if b"<!ENTITY" in prologue.upper() or _DTD_SUBSET.search(prologue):
        raise DocumentRefused("entities", name=name, detail=f"{part}: a DTD with entity declarations")
    if root is None and len(head) >= _PROLOGUE:
        raise DocumentRefused("damaged", name=name, detail=f"{part}: no root element in {_PROLOGUE} bytes")
