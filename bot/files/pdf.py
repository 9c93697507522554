"""PDF checks and local text extraction with pypdf.

Everything here is synchronous and CPU-bound: callers run it in a worker thread
(``asyncio.to_thread``) so a large PDF never stalls the event loop. The input bytes are wrapped,
not copied (see :func:`_shared_stream`).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import io
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.files.errors import CorruptPdf, EncryptedPdf

# pypdf (with the cryptography it loads for AES) adds about 16 MB to every process that imports
# it, so it is imported by the functions that read a PDF, not by a bot that never sees one.
if TYPE_CHECKING:
    from pypdf import PdfReader

log = logging.getLogger("parley.files")

# pypdf warns about every small defect it repairs; those are not Parley's problems to log.
logging.getLogger("pypdf").setLevel(logging.ERROR)


@dataclass(frozen=True, slots=True)
class PdfInfo:
    pages: int
    encrypted: bool  # opened with the empty password: send a decrypted copy, not these bytes


@dataclass(frozen=True, slots=True)
class ExtractedText:
    text: str  # page by page, each headed "[page N]"
    pages_read: int
    pages: int
    truncated: bool  # stopped at the character budget

    @property
    def empty(self) -> bool:
        return not self.text.strip()


class UnsupportedEncryption(EncryptedPdf):
    """Opens with the empty password, but only with a crypto library this install lacks (AES)."""

    def sentence(self, name: str | None = None) -> str:
        label = name or self.name or "the PDF"
        return (
            f"I couldn't read {label}: it is encrypted in a way Parley can't open here. "
            "Send an unprotected copy."
        )


def _load_malloc_trim() -> object | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to do
        return None


_MALLOC_TRIM = _load_malloc_trim()


def _trim() -> None:
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)  # type: ignore[operator]


async def release_free_memory() -> None:
    """Give memory freed by a large file back to the system.

    pypdf and the database driver work in their own threads, and glibc keeps what a thread
    freed in that thread's arena, where the next large file (handled by another thread) can't
    reuse it: without this, each big PDF left its size behind in resident memory.
    """
    if _MALLOC_TRIM is not None:
        await asyncio.to_thread(_trim)


def _shared_stream(data: bytes) -> io.BufferedReader:
    """A seekable stream over ``data`` that never copies it.

    pypdf asks a stream with ``getbuffer`` for its buffer, which makes a ``BytesIO`` take a
    private copy of the whole file; a buffered reader in front of it has no ``getbuffer``.
    """
    return io.BufferedReader(io.BytesIO(data))


def _open(data: bytes, name: str) -> PdfReader:
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import DependencyError

    try:
        reader = PdfReader(_shared_stream(data))
    except Exception as exc:  # pypdf raises many kinds on damaged files
        raise CorruptPdf(f"{type(exc).__name__}: {exc}", name=name) from None
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")
        except DependencyError as exc:
            raise UnsupportedEncryption(str(exc), name=name) from None
        except Exception as exc:
            raise CorruptPdf(f"decrypt: {type(exc).__name__}: {exc}", name=name) from None
        if opened == PasswordType.NOT_DECRYPTED:
            raise EncryptedPdf("a password is needed", name=name)
    return reader


def _forget(reader: PdfReader) -> None:
    """Drop the objects pypdf parsed: they and the reader reference each other, so without this
    they (images included) wait for the cyclic garbage collector."""
    reader.resolved_objects.clear()
    reader.flattened_pages = None


def inspect_pdf(data: bytes, *, name: str = "") -> PdfInfo:
    """Page count and encryption; raises :class:`EncryptedPdf` or :class:`CorruptPdf`."""
    from pypdf.errors import FileNotDecryptedError

    reader = _open(data, name)
    try:
        pages = len(reader.pages)
    except FileNotDecryptedError as exc:
        raise EncryptedPdf(str(exc), name=name) from None
    except Exception as exc:
        raise CorruptPdf(f"pages: {type(exc).__name__}: {exc}", name=name) from None
    finally:
        _forget(reader)
    if pages == 0:
        raise CorruptPdf("no pages", name=name)
    return PdfInfo(pages=pages, encrypted=reader.is_encrypted)


def decrypted_copy(data: bytes, *, name: str = "") -> bytes:
    """The PDF without its (empty-password) encryption: the models refuse encrypted documents."""
    from pypdf import PdfWriter

    reader = _open(data, name)
    try:
        writer = PdfWriter(clone_from=reader)
        out = io.BytesIO()
        writer.write(out)
    except Exception as exc:
        raise CorruptPdf(f"rewrite: {type(exc).__name__}: {exc}", name=name) from None
    return out.getvalue()


def extract_text(data: bytes, *, max_chars: int, name: str = "") -> ExtractedText:
    """The text layer, page by page, stopping once ``max_chars`` is reached.

    Stopping early matters: extraction costs far more than parsing, and a 500-page PDF whose
    first 40 pages fill the budget need not be read to the end.
    """
    reader = _open(data, name)
    try:
        pages = reader.pages
        count = len(pages)
    except Exception as exc:
        raise CorruptPdf(f"pages: {type(exc).__name__}: {exc}", name=name) from None
    chunks: list[str] = []
    used = 0
    read = 0
    truncated = False
    try:
        for number in range(count):
            try:
                page_text = pages[number].extract_text() or ""
            except Exception as exc:
                # One bad page should not cost the rest of the document.
                log.warning("%s: page %d: text extraction failed: %s", name or "PDF", number + 1, exc)
                page_text = ""
            read += 1
            page_text = page_text.strip()
            if not page_text:
                continue
            chunk = f"[page {number + 1}]\n{page_text}"
            if chunks:
                chunk = "\n\n" + chunk
            if used + len(chunk) > max_chars:
                chunks.append(chunk[: max(0, max_chars - used)])
                truncated = True
                break
            chunks.append(chunk)
            used += len(chunk)
    finally:
        _forget(reader)
    return ExtractedText("".join(chunks), read, count, truncated)
