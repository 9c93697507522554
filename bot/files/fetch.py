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
    fetched over plain http: test servers only. A name must be in ``names`` as well. An entry
    is ``name`` (any port) or ``name:port`` (that port only), matched exactly.
    ``any_public``: the open web (read_url): every host that resolves only to public addresses,
    over http or https, ``names`` aside. No credentials go with such fetches, and the connection
    is made to the address that was checked, so a name cannot resolve to a public address for
    the check and to an internal one for the download.
    """

    names: frozenset[str]
    private: frozenset[str] = frozenset()
    any_public: bool = False

    @classmethod
    def of(cls, names: Collection[str], *, private: Collection[str] = ()) -> AllowedHosts:
        return cls(frozenset(n.lower() for n in names), frozenset(p.lower() for p in private))

    @classmethod
    def web(cls, private: Collection[str] = ()) -> AllowedHosts:
        """Any public address, plus the ``private`` entries (``PARLEY_FETCH_ALLOW_HOSTS``)."""
        return cls(frozenset(), frozenset(p.lower() for p in private), any_public=True)

    def lists(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        listed = any(host == n or (n.startswith(".") and host.endswith(n)) for n in self.names)
        return self.any_public or listed

    def admits_internal(self, url: httpx.URL) -> bool:
        host = (url.host or "").lower().rstrip(".")
        port = url.port or (443 if url.scheme == "https" else 80)
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return host in self.private or authority in self.private


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


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


async def check_url(url: httpx.URL, allowed: AllowedHosts, *, name: str = "") -> list[Address]:
    """Raise :class:`DownloadRefused` unless ``url`` may be fetched; return the addresses checked
    (IPv4 first; empty for a platform test host allowed to be internal, not resolved here).

    Names are resolved here so that an allowed name pointing at an internal address is caught.
    For the platforms' hosts the connection resolves again, which narrows DNS rebinding rather
    than closing it (only their own host names are listed); ``any_public`` fetches connect to
    the checked address itself (:func:`fetch_url`). ``localhost`` is loopback whatever DNS says.
    """
    host = (url.host or "").lower().rstrip(".")
    if not host:
        raise DownloadRefused(f"no host in {url.scheme}://…", name=name)
    if url.scheme not in ("http", "https"):
        raise DownloadRefused(f"{url.scheme}:// is not allowed for {host}", name=name)
    if not allowed.lists(host):
        raise DownloadRefused(f"host {host} is not an allowed file host", name=name)
    if allowed.admits_internal(url):
        return await _resolve(url, host, name) if allowed.any_public else []
    if host == "localhost" or host.endswith(".localhost"):
        raise DownloadRefused(f"host {host} is an internal address", name=name)
    addresses = await _resolve(url, host, name)
    if not addresses or any(_is_internal(a) for a in addresses):
        raise DownloadRefused(f"host {host} is an internal address", name=name)
    if url.scheme != "https" and not allowed.any_public:
        # Adapters send their bot token along: it must not travel in the clear.
        raise DownloadRefused(f"{url.scheme}:// is not allowed for {host}", name=name)
    return addresses


async def _resolve(url: httpx.URL, host: str, name: str) -> list[Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, url.port or 443, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DownloadFailed("the host could not be found", name=name, detail=str(exc)) from None
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    # IPv4 first: a pinned connection tries one address, and dual-stack hosts serve both.
    return sorted(dict.fromkeys(addresses), key=lambda a: a.version)


def _pinned(url: httpx.URL, addresses: list[Address]) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """The request for ``url`` sent to the checked address: (target, headers, extensions).

    The name still goes in ``Host`` and, for https, in SNI, where the certificate is checked
    against it.
    """
    if not addresses or url.host == str(addresses[0]):
        return url, {}, {}
    authority = url.netloc.decode("ascii")
    extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
    return url.copy_with(host=str(addresses[0])), {"host": authority}, extensions


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
                addresses = await check_url(current, allowed, name=name)
                sent = dict(headers or {}) if (current.scheme, current.host, current.port) == origin else {}
                # Compressed bodies would be decoded past the cap in one chunk; files come plain.
                sent["accept-encoding"] = "identity"
                target, extensions = current, dict[str, str]()
                if allowed.any_public:
                    target, host_header, extensions = _pinned(current, addresses)
                    sent.update(host_header)
                async with client.stream(
                    "GET", target, headers=sent, extensions=extensions, follow_redirects=False
                ) as response:
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
