"""Why a file could not be used, each as one sentence that names the file.

Fetchers (the adapters' and the console's) raise these; the service turns them into notes for
the user. A fetcher often does not know the file's display name, so the sentence is rendered
with whatever name the service knows (:meth:`FileError.sentence`).
"""

from __future__ import annotations

import math

WHAT_PARLEY_READS = (
    "PDFs; Word, Excel, PowerPoint and OpenDocument files; EPUB books, web pages (HTML) and CSV; "
    "PNG, JPEG, GIF and WebP images; UTF-8 text files; and voice notes and audio "
    "(Ogg, MP3, M4A, WAV, WebM, FLAC)"
)


def megabytes(size: int, *, up: bool = False) -> str:
    """A size as users read it, to one decimal, in MB (of 1024², as the platforms count) or KB.

    Limits round down and file sizes up (``up=True``), so a file just over a limit never reads
    as equal to it.
    """
    unit, scale = ("MB", 1024 * 1024) if size >= 1024 * 1024 else ("KB", 1024)
    tenths = size * 10 / scale
    shown = math.ceil(tenths) if up else math.floor(tenths)
    return f"{shown / 10:.1f} {unit}"


class FileError(Exception):
    """A file Parley could not use; :meth:`sentence` is safe to show in chat."""

    def __init__(self, detail: str = "", *, name: str = "") -> None:
        super().__init__(detail or type(self).__name__)
        self.detail = detail
        self.name = name

    def sentence(self, name: str | None = None) -> str:
        return f"I couldn't read {name or self.name or 'a file'}."

    def __str__(self) -> str:
        return self.sentence()


class FileTooLarge(FileError):
    """Over a byte limit: ``limit`` is the one that applied, ``size`` the file's, if known."""

    def __init__(
        self,
        limit: int,
        *,
        size: int | None = None,
        per_request: bool = False,
        name: str = "",
        detail: str = "",
    ) -> None:
        super().__init__(detail or f"over {limit} bytes", name=name)
        self.limit = limit
        self.size = size
        self.per_request = per_request

    def sentence(self, name: str | None = None) -> str:
        label = name or self.name or "a file"
        if self.per_request:
            return (
                f"I couldn't read {label}: the files of one message can total at most "
                f"{megabytes(self.limit)}."
            )
        if self.size is not None and self.size > self.limit:
            return (
                f"I couldn't read {label}: it is {megabytes(self.size, up=True)}, and Parley reads files "
                f"up to {megabytes(self.limit)}."
            )
        return f"I couldn't read {label}: it is larger than the {megabytes(self.limit)} Parley reads."


class DownloadRefused(FileError):
    """The address (or a redirect's) is not one Parley may fetch from."""

    def sentence(self, name: str | None = None) -> str:
        label = name or self.name or "a file"
        return f"I didn't download {label}: its address is not on the platform's file host."


class DownloadFailed(FileError):
    """The platform did not hand the file over: an HTTP error, a timeout, a broken connection."""

    def __init__(self, reason: str, *, name: str = "", detail: str = "") -> None:
        super().__init__(detail or reason, name=name)
        self.reason = reason

    def sentence(self, name: str | None = None) -> str:
        label = name or self.name or "a file"
        return f"I couldn't download {label} ({self.reason})."


class EncryptedPdf(FileError):
    def sentence(self, name: str | None = None) -> str:
        label = name or self.name or "the PDF"
        return f"I couldn't read {label}: it is password-protected. Send a copy without a password."


class CorruptPdf(FileError):
    def sentence(self, name: str | None = None) -> str:
        label = name or self.name or "the PDF"
        return f"I couldn't read {label}: the PDF is damaged and can't be opened."


_DOCUMENT_REASONS = {
    "damaged": "the file is damaged and can't be opened",
    "bomb": "it would unpack to far more than any document needs (it looks like a zip bomb)",
    "entities": "it contains XML entity declarations, which Parley refuses for safety",
    "encrypted": "it is password-protected. Send a copy without a password",
    "too_big": "it holds more than Parley unpacks from one document",
    "legacy": (
        "it is an old-style Office file (.doc, .xls or .ppt), which Parley can't read; "
        "save it as .docx, .xlsx or .pptx and send it again"
    ),
    "drm": "the book is DRM-protected",
}


class DocumentRefused(FileError):
    """An office document, book or web page that can't be used; ``reason`` picks the sentence."""

    def __init__(self, reason: str, *, name: str = "", detail: str = "") -> None:
        super().__init__(detail or reason, name=name)
        self.reason = reason

    def sentence(self, name: str | None = None) -> str:
        label = name or self.name or "the document"
        why = _DOCUMENT_REASONS.get(self.reason, _DOCUMENT_REASONS["damaged"])
        return f"I couldn't read {label}: {why}."


class AudioRefused(FileError):
    """A voice note or audio file that can't be transcribed; ``why`` finishes the sentence."""

    def __init__(self, why: str, *, name: str = "", detail: str = "") -> None:
        super().__init__(detail or why, name=name)
        self.why = why

    def sentence(self, name: str | None = None) -> str:
        return f"I couldn't transcribe {name or self.name or 'the audio'}: {self.why}."


class EmptyFile(FileError):
    def sentence(self, name: str | None = None) -> str:
        return f"I couldn't read {name or self.name}: it is empty."


class NotAPdf(FileError):
    def sentence(self, name: str | None = None) -> str:
        return (
            f"{name or self.name} is not a PDF despite its name, and not a file Parley can read "
            f"({WHAT_PARLEY_READS})."
        )


class Unsupported(FileError):
    def __init__(self, label: str = "", *, name: str = "") -> None:
        super().__init__(label, name=name)
        self.label = label

    def sentence(self, name: str | None = None) -> str:
        what = f" ({self.label})" if self.label and self.label != "an unsupported file" else ""
        return f"I can't read {name or self.name}{what}: Parley reads {WHAT_PARLEY_READS}."
