"""Why a file could not be used, each as one sentence that names the file.

Fetchers (the adapters' and the console's) raise these; the service turns them into notes for
the user. A fetcher often does not know the file's display name, so the sentence is rendered
with whatever name the service knows (:meth:`FileError.sentence`).
"""

from __future__ import annotations

import math


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
