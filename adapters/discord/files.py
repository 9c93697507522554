"""Discord attachments → lazy, size-capped :class:`~bot.types.Attachment` fetchers.

Nothing is downloaded until the core's file pipeline asks. ``discord.Attachment.read()`` would
read the whole body whatever its size, so downloads go through the core's bounded fetcher
instead: only from Discord's CDN hosts or the host of ``DISCORD_API_URL`` (a proxy or a test
server the operator chose), never from an address named in a message; every redirect is
re-checked and the body is cut off at ``max_bytes``. A file Discord says is larger than the cap
is refused without downloading. Attachment URLs are signed, so no token is sent with them.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

import discord
import httpx

from bot.files import DISCORD_FILE_HOSTS, AllowedHosts, FileTooLarge, fetch_url
from bot.types import Attachment, Fetcher

_PUBLIC_API_HOSTS = frozenset({"discord.com", "discordapp.com"})
VOICE_MESSAGE = "Voice message"


def topic(message: discord.Message) -> str:
    """What a message without text is about, to name a thread after: its files' names, or
    "Voice message" for a recording made in Discord (its one file is always voice-message.ogg)."""
    if message.flags.voice:
        return VOICE_MESSAGE
    return ", ".join(a.filename for a in message.attachments)


def allowed_hosts(api_url: str) -> AllowedHosts:
    """Discord's CDN hosts, plus the configured API host (which may be a local server)."""
    host = (urlsplit(api_url).hostname or "").lower()
    if not host or host in _PUBLIC_API_HOSTS:
        return AllowedHosts.of(DISCORD_FILE_HOSTS)
    return AllowedHosts.of([*DISCORD_FILE_HOSTS, host], private=[host])


class AttachmentReader:
    """Builds fetchers; owns the HTTP client they share (closed with the adapter)."""

    def __init__(self, api_url: str, *, time_limit: float = 60.0) -> None:
        self.allowed = allowed_hosts(api_url)
        self._time_limit = time_limit
        self._client: httpx.AsyncClient | None = None

    def attachments(self, items: Iterable[discord.Attachment]) -> list[Attachment]:
        return [
            Attachment(
                name=a.filename,
                declared_type=a.content_type,
                size=a.size,
                fetch=self._fetcher(a.url, a.filename, a.size),
                source_id=str(a.id),
            )
            for a in items
        ]

    def _fetcher(self, url: str, name: str, size: int | None) -> Fetcher:
        async def fetch(max_bytes: int) -> bytes:
            if size is not None and size > max_bytes:
                raise FileTooLarge(max_bytes, size=size, name=name)
            return await fetch_url(
                self._http(),
                url,
                allowed=self.allowed,
                max_bytes=max_bytes,
                name=name,
                time_limit=self._time_limit,
            )

        return fetch

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self._time_limit, connect=10.0))
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
