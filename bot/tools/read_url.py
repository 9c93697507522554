"""``read_url``: fetch a public web page, PDF, document or text file and give the model its text.

The fetch is the file pipeline's bounded one (:func:`bot.files.fetch.fetch_url`) on the open-web
policy: any public address over http(s); private, loopback, link-local and metadata addresses
refused unless the operator lists the host in ``PARLEY_FETCH_ALLOW_HOSTS``; every redirect
checked again; no credentials sent. A URL comes from the model, which read it from a chat
message anyone may have written, so it is treated as hostile.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from bot.files.errors import DownloadFailed, DownloadRefused, FileTooLarge, megabytes
from bot.files.fetch import AllowedHosts, fetch_url
from bot.providers.base import ToolSpec
from bot.tools.base import Output, ToolContext, ToolFailed
from bot.tools.page import read_body

SPEC = ToolSpec(
    name="read_url",
    description=(
        "Fetch a web page, PDF, office document (Word, Excel, PowerPoint, OpenDocument), EPUB or "
        "plain-text file from a public http(s) address and read its main text (a page's navigation "
        "and adverts are left out). Use it when the user shares a link or asks what a page says."
    ),
    parameters={
        "type": "object",
        "properties": {
            "url": {"type": "string", "description": "The full address, e.g. https://example.com/page"},
        },
        "required": ["url"],
        "additionalProperties": False,
    },
)
_STATUS_CHARS = 48


def normalise(raw: str) -> httpx.URL:
    """The model's URL as one to fetch: Slack's ``<url|label>`` unwrapped, https assumed."""
    text = raw.strip().strip("<>").split("|", 1)[0].strip()
    if not text:
        raise ToolFailed("read_url needs a URL, and the url argument was empty.")
    if "://" not in text:
        text = "https://" + text
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL:
        raise ToolFailed(f"{text[:200]} is not a valid web address.") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ToolFailed(f"read_url reads http and https addresses only, not {text[:200]}.")
    return url


def short(url: str) -> str:
    """``example.com/path/…`` for a status line: the host, and as much of the path as fits."""
    try:
        parsed = httpx.URL(url.strip().strip("<>").split("|", 1)[0])
    except httpx.InvalidURL:
        return "a web page"
    if not parsed.host:
        return "a web page"
    shown = parsed.host + (parsed.path if parsed.path != "/" else "")
    return shown if len(shown) <= _STATUS_CHARS else shown[: _STATUS_CHARS - 1] + "…"


class ReadUrl:
    """The built-in tool. ``client`` is shared and never carries credentials."""

    source = "built-in"
    timeout: float | None = None

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        allow_hosts: frozenset[str],
        max_bytes: int,
        time_limit: float,
        max_chars: int,
    ) -> None:
        self._client = client
        self._allowed = AllowedHosts.web(allow_hosts)
        self._max_bytes = max_bytes
        self._time_limit = time_limit
        self._max_chars = max_chars

    @property
    def spec(self) -> ToolSpec:
        return SPEC

    def status(self, arguments: Mapping[str, Any]) -> str:
        url = arguments.get("url")
        return f"Reading {short(url) if isinstance(url, str) else 'a web page'}"

    async def run(self, arguments: dict[str, Any], ctx: ToolContext) -> Output:
        url = normalise(str(arguments.get("url", "")))
        shown = str(url)
        try:
            data = await fetch_url(
                self._client,
                shown,
                allowed=self._allowed,
                max_bytes=self._max_bytes,
                time_limit=self._time_limit,
            )
        except DownloadRefused as exc:
            raise ToolFailed(
                f"read_url did not fetch {shown}: {_refusal(exc.detail)}. It reads public addresses only."
            ) from None
        except FileTooLarge:
            raise ToolFailed(
                f"{shown} is larger than the {megabytes(self._max_bytes)} read_url reads."
            ) from None
        except DownloadFailed as exc:
            raise ToolFailed(f"Fetching {shown} failed ({exc.reason}).") from None
        page = await read_body(data, shown, max_chars=self._max_chars)
        return Output(text=page.text, source=f"{shown} ({page.kind})")


def _refusal(detail: str) -> str:
    if detail.endswith("is an internal address"):
        return detail.removesuffix("is an internal address") + "is a private, loopback or link-local address"
    return detail
