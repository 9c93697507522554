"""Slack files → lazy :class:`~bot.types.Attachment` fetchers.

A file is downloaded only when the core asks (``fetch(max_bytes)``), through the core's bounded
:func:`~bot.files.fetch_url`: with the bot token, from Slack's file host or the host of
``SLACK_API_URL`` only (a proxy or test server the operator chose), never from an address named
in a message, every redirect re-checked, the body capped at ``max_bytes``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from bot.files import SLACK_FILE_HOSTS, AllowedHosts, DownloadFailed, FileTooLarge, fetch_url
from bot.types import Attachment

# Files Slack does not host (Google Drive links …) have nothing to download; deleted ones are gone.
_EXTERNAL_MODES = frozenset({"external"})
_GONE_MODES = frozenset({"tombstone", "hidden_by_limit"})
_HTML_START = (b"<!doctype html", b"<html")

FileInfo = Callable[[str], Awaitable[Mapping[str, Any]]]


def allowed_hosts(api_url: str) -> AllowedHosts:
    """Slack's file host, plus the API host the operator configured (which may be local)."""
    host = (urlsplit(api_url).hostname or "").lower()
    if not host or host == "slack.com":
        return AllowedHosts.of(SLACK_FILE_HOSTS)
    return AllowedHosts.of([*SLACK_FILE_HOSTS, host], private=[host])


class FileFetcher:
    def __init__(
        self, token: str, api_url: str, *, file_info: FileInfo | None = None, time_limit: float = 60.0
    ) -> None:
        self._headers = {"Authorization": f"Bearer {token}"}
        self._time_limit = time_limit
        self.allowed = allowed_hosts(api_url)
        self._file_info = file_info
        self._client: httpx.AsyncClient | None = None

    def attachments(self, files: Iterable[Mapping[str, Any]]) -> list[Attachment]:
        out: list[Attachment] = []
        for f in files:
            if not isinstance(f, Mapping) or _text(f.get("mode")) in _GONE_MODES or not _text(f.get("id")):
                continue
            name = _text(f.get("name")) or _text(f.get("title")) or _text(f["id"])
            size = f.get("size")
            out.append(
                Attachment(
                    name=name,
                    declared_type=_text(f.get("mimetype")) or None,
                    size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
                    fetch=self._fetcher(dict(f), name),
                    source_id=str(f["id"]),
                )
            )
        return out

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _fetcher(self, info: dict[str, Any], name: str) -> Callable[[int], Awaitable[bytes]]:
        async def fetch(max_bytes: int) -> bytes:
            return await self.download(info, name, max_bytes)

        return fetch

    async def download(self, info: Mapping[str, Any], name: str, max_bytes: int) -> bytes:
        if _text(info.get("mode")) in _EXTERNAL_MODES or info.get("is_external"):
            raise DownloadFailed("it is a link to a file Slack does not host", name=name)
        size = info.get("size")
        if isinstance(size, int) and size > max_bytes:
            raise FileTooLarge(max_bytes, size=size, name=name)  # no need to download to know
        url = _text(info.get("url_private_download")) or _text(info.get("url_private"))
        if not url and info.get("file_access") == "check_file_info" and self._file_info is not None:
            # Files shared from other organisations arrive without URLs; files.info has them.
            full = await self._file_info(str(info["id"]))
            url = _text(full.get("url_private_download")) or _text(full.get("url_private"))
        if not url:
            raise DownloadFailed("Slack gave no download address", name=name)
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self._time_limit, connect=10.0))
        data = await fetch_url(
            self._client,
            str(url),
            allowed=self.allowed,
            max_bytes=max_bytes,
            headers=self._headers,
            name=name,
            time_limit=self._time_limit,
        )
        if data[:20].lstrip().lower().startswith(_HTML_START) and "html" not in str(info.get("mimetype")):
            # What Slack serves a token it will not give the file to: its sign-in page.
            raise DownloadFailed(
                "Slack sent its sign-in page instead; the app may lack files:read", name=name
            )
        return data


def _text(value: Any) -> str:
    """A string field of a file object, or "" when it is missing or not a string."""
    return value if isinstance(value, str) else ""
