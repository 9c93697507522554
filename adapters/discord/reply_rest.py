"""A reply's posts and edits, sent to Discord's REST API by Parley itself: :class:`ReplyRest`.

discord.py paces every request from the ``X-RateLimit-*`` headers, and when an answer says the
bucket is empty (``Remaining: 0``) it makes *that caller* sleep until the bucket refills, although
its request has landed. Discord allows 5 creates and 5 edits per 5 s per channel; spending the
fifth through discord.py would hold the reply (and its final text) for up to 5 s. So the
renderer's own posts and edits go out here, and each answer's headers are handed to the renderer
(:class:`~bot.render.surface.Announced`), which then paces the key by Discord's own count — the
same book-keeping discord.py does, without the sleep (``bot.render.budget.Window.observe``).

Everything else the adapter does (threads, typing, reads, deletes, uploads, slash commands) still
goes through discord.py, whose limiter stays the safety net there. A 429 here (which means the
count was wrong) is :class:`~bot.render.surface.RateLimited`: the renderer pauses the key for
``retry_after`` and tries again, as discord.py would.

The request bodies are what discord.py sends for ``channel.send(content=…, allowed_mentions=…,
suppress_embeds=True, view=…, reference=…)`` and ``message.edit(content=…, view=…)``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
import discord
from discord.http import Route

from bot.render.surface import Announced, RateLimited, SurfaceError

log = logging.getLogger("parley.discord")

# A request that hangs this long is given up (the renderer retries it); discord.py has no limit.
TIMEOUT = aiohttp.ClientTimeout(total=30.0, sock_connect=10.0)
SUPPRESS_EMBEDS = discord.MessageFlags(suppress_embeds=True).value
NO_PINGS: dict[str, Any] = dict(discord.AllowedMentions.none().to_dict())


class DiscordRefused(SurfaceError):
    """Discord refused a post, edit, read or delete (other than a rate limit)."""

    def __init__(self, what: str, status: int, code: int, text: str) -> None:
        super().__init__(f"{what}: HTTP {status} code {code}: {text}")
        self.status = status
        self.code = code

    @classmethod
    def from_http(cls, what: str, exc: discord.HTTPException) -> DiscordRefused:
        """The refusal discord.py raised for a call made through it."""
        return cls(what, exc.status, exc.code, exc.text)


class ReplyRefused(DiscordRefused):
    """Discord refused a reply's post or edit (its count, if it gave one, in ``announced``)."""

    def __init__(self, what: str, status: int, code: int, text: str, announced: Announced | None) -> None:
        super().__init__(what, status, code, text)
        self.announced = announced


class ReplyRateLimited(RateLimited):
    """Discord answered a post or edit with 429 (its count, if it gave one, in ``announced``)."""

    def __init__(self, retry_after: float, message: str, announced: Announced | None) -> None:
        super().__init__(retry_after, message)
        self.announced = announced


@dataclass(frozen=True, slots=True)
class Answer:
    """Discord's answer to a post or edit: the message's JSON and what the headers announced."""

    data: dict[str, Any]
    announced: Announced | None


def announced(key: str, headers: Any) -> Announced | None:
    """The bucket state in an answer's ``X-RateLimit-*`` headers, for budget ``key``; None if the
    answer carried none (or garbled ones: then the renderer's own window paces the key)."""
    remaining = headers.get("X-RateLimit-Remaining")
    reset_after = headers.get("X-RateLimit-Reset-After")
    if remaining is None or reset_after is None:
        return None
    try:
        limit = headers.get("X-RateLimit-Limit")
        return Announced(key, int(remaining), float(reset_after), int(limit) if limit is not None else None)
    except ValueError:
        return None


class ReplyRest:
    """Posts and edits of replies for one bot, over a session of its own (created on first use)."""

    def __init__(self, client: discord.Client) -> None:
        self._client = client
        self._session: aiohttp.ClientSession | None = None
        self.sent = 0  # requests made, for tests and metrics

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=TIMEOUT, cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    def _headers(self) -> dict[str, str]:
        http = self._client.http
        if not http.token:
            raise SurfaceError("the Discord client is not logged in")
        return {
            "Authorization": f"Bot {http.token}",
            "User-Agent": http.user_agent,
            "Content-Type": "application/json",
        }

    async def post(self, key: str, channel_id: int, payload: dict[str, Any]) -> Answer:
        return await self._call("post", key, "POST", f"/channels/{channel_id}/messages", payload)

    async def edit(self, key: str, channel_id: int, message_id: int, payload: dict[str, Any]) -> Answer:
        path = f"/channels/{channel_id}/messages/{message_id}"
        return await self._call("edit", key, "PATCH", path, payload)

    async def _call(self, what: str, key: str, method: str, path: str, payload: dict[str, Any]) -> Answer:
        http = self._client.http
        session = self._open()
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=True)
        self.sent += 1
        try:
            async with session.request(
                method,
                Route.BASE + path,
                data=body,
                headers=self._headers(),
                proxy=http.proxy,
                proxy_auth=http.proxy_auth,
            ) as response:
                text = await response.text(encoding="utf-8")
                said = announced(key, response.headers)
                if 200 <= response.status < 300:
                    return Answer(_json(text), said)
                raise _refusal(what, response.status, response.headers, text, said)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise SurfaceError(f"{what}: {type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _json(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _refusal(
    what: str, status: int, headers: Any, text: str, said: Announced | None
) -> ReplyRefused | ReplyRateLimited:
    data = _json(text)
    if status == 429:
        retry_after = data.get("retry_after", headers.get("Retry-After", 1.0))
        try:
            seconds = float(retry_after)
        except (TypeError, ValueError):
            seconds = 1.0
        scope = "global" if data.get("global") else "bucket"
        log.warning("Discord answered a %s with 429 (%s, retry after %.2fs)", what, scope, seconds)
        return ReplyRateLimited(seconds, f"{what}: rate limited ({scope})", said)
    code = data.get("code", 0)
    message = data.get("message") or text[:200]
    return ReplyRefused(what, status, code if isinstance(code, int) else 0, str(message), said)
