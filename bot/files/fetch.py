"""Bounded downloads from the platforms' own file hosts.

A message names files by URL, and a URL in a message is attacker-controlled: Parley only
fetches from the hosts an adapter lists (Slack's and Discord's file hosts), re-checks every
redirect hop, and refuses loopback, private and link-local addresses unless a host is
explicitly allowed to be one (tests). Bodies stream into memory with a hard byte cap, so a
server that sends more than it declared cannot make Parley hold more than the cap.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass

import httpx

from bot.files.errors import DownloadFailed, DownloadRefused, FileTooLarge
from bot.types import Fetcher

# Where the platforms serve attachments (redirects included). Adapters pass these, or their own.
SLACK_FILE_HOSTS = ("files.slack.com",)
DISCORD_FILE_HOSTS = ("cdn.discordapp.com", "media.discordapp.net")

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5


@dataclass(frozen=True, slots=True)
class AllowedHosts:
    """The hosts a fetcher may download from.

    ``names``: exact host names, or ``.example.com`` for that domain and every subdomain.
    ``private``: hosts allowed to be (or resolve to) loopback/private addresses and to be
    fetched over plain http: test servers only. A name must be in ``names`` as well.
    """

    names: frozenset[str]
    private: frozenset[str] = frozenset()

    @classmethod
    def of(cls, names: Collection[str], *, private: Collection[str] = ()) -> AllowedHosts:
        return cls(frozenset(n.lower() for n in names), frozenset(p.lower() for p in private))

    def lists(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(host == n or (n.startswith(".") and host.endswith(n)) for n in self.names)


def _is_internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )


async def check_url(url: httpx.URL, allowed: AllowedHosts, *, name: str = "") -> None:
    """Raise :class:`DownloadRefused` unless ``url`` may be fetched.

    Names are resolved here so that an allowed name pointing at an internal address is caught;
    the connection resolves again, so this narrows DNS rebinding rather than closing it, which
    is acceptable because only the platforms' own host names are ever listed.
    """
    host = (url.host or "").lower().rstrip(".")
    if not host:
        raise DownloadRefused(f"no host in {url.scheme}://…", name=name)
    if not allowed.lists(host):
        raise DownloadRefused(f"host {host} is not an allowed file host", name=name)
    if host in allowed.private:
        if url.scheme not in ("http", "https"):
            raise DownloadRefused(f"{url.scheme}:// is not allowed for {host}", name=name)
        return
    try:
        literal: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, url.port or 443, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise DownloadFailed("the file host could not be found", name=name, detail=str(exc)) from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if any(_is_internal(a) for a in addresses):
        raise DownloadRefused(f"host {host} is an internal address", name=name)
    if url.scheme != "https":
        # Adapters send their bot token along: it must not travel in the clear.
        raise DownloadRefused(f"{url.scheme}:// is not allowed for {host}", name=name)


async def read_capped(chunks: AsyncIterator[bytes], max_bytes: int, *, name: str = "") -> bytes:
    """Collect ``chunks`` but stop, raising :class:`FileTooLarge`, once they pass ``max_bytes``."""
    parts: list[bytes] = []
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise FileTooLarge(max_bytes, name=name, detail=f"the body passed {max_bytes} bytes")
        parts.append(chunk)
    # A list joined once: growing one buffer would copy the file over and over.
    return b"".join(parts)


async def fetch_url(
    client: httpx.AsyncClient,
    url: str,
    *,
    allowed: AllowedHosts,
    max_bytes: int,
    headers: Mapping[str, str] | None = None,
    name: str = "",
    time_limit: float = 60.0,
    max_redirects: int = _MAX_REDIRECTS,
) -> bytes:
    """Download ``url`` into memory, at most ``max_bytes``, following redirects by hand.

    Every hop is checked with :func:`check_url`. ``headers`` (the bot token) go only to the
    first hop's origin: a redirect elsewhere never receives them. The whole download, redirects
    included, must finish within ``time_limit`` seconds.
    """
    current = httpx.URL(url)
    origin = (current.scheme, current.host, current.port)
    try:
        async with asyncio.timeout(time_limit):
            for _ in range(max_redirects + 1):
                await check_url(current, allowed, name=name)
                sent = dict(headers or {}) if (current.scheme, current.host, current.port) == origin else {}
                # Compressed bodies would be decoded past the cap in one chunk; files come plain.
                sent["accept-encoding"] = "identity"
                async with client.stream("GET", current, headers=sent, follow_redirects=False) as response:
                    if response.status_code in _REDIRECTS and "location" in response.headers:
                        current = current.join(response.headers["location"])
                        continue
                    if response.status_code != 200:
                        raise DownloadFailed(f"HTTP {response.status_code}", name=name)
                    declared = _content_length(response)
                    if declared is not None and declared > max_bytes:
                        raise FileTooLarge(max_bytes, size=declared, name=name)
                    return await read_capped(response.aiter_bytes(), max_bytes, name=name)
            raise DownloadFailed("too many redirects", name=name)
    except TimeoutError:
        raise DownloadFailed("the download timed out", name=name) from None
    except httpx.TimeoutException as exc:
        raise DownloadFailed("the download timed out", name=name, detail=str(exc)) from None
    except httpx.HTTPError as exc:
        raise DownloadFailed(
            "the connection failed", name=name, detail=f"{type(exc).__name__}: {exc}"
        ) from None


def _content_length(response: httpx.Response) -> int | None:
    try:
        value = int(response.headers.get("content-length", ""))
    except ValueError:
        return None
    return value if value >= 0 else None


def url_fetcher(
    client: httpx.AsyncClient,
    url: str,
    *,
    allowed: AllowedHosts,
    headers: Mapping[str, str] | None = None,
    name: str = "",
    time_limit: float = 60.0,
) -> Fetcher:
    """An :class:`~bot.types.Attachment` fetcher for one platform URL (nothing is fetched yet)."""

    async def fetch(max_bytes: int) -> bytes:
        return await fetch_url(
            client,
            url,
            allowed=allowed,
            max_bytes=max_bytes,
            headers=headers,
            name=name,
            time_limit=time_limit,
        )

    return fetch


class DownloadBudget:
    """The per-message limits: how many files, and how many bytes in all."""

    def __init__(self, *, per_file: int, total: int, count: int) -> None:
        self.per_file = per_file
        self.total = total
        self.count = count
        self.files = 0
        self.spent = 0

    def admit(self) -> bool:
        """Count one more file; False once the message has had its share."""
        if self.files >= self.count:
            return False
        self.files += 1
        return True

    def allowance(self) -> tuple[int, bool]:
        """(bytes the next file may have, whether that is the message's remainder rather than the
        per-file cap)."""
        left = max(0, self.total - self.spent)
        return (left, True) if left < self.per_file else (self.per_file, False)

    def spend(self, size: int) -> None:
        self.spent += size
