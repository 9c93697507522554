"""Parley on loopback: what the Slack and Discord harnesses and the benchmark build alike.

The environment that points Parley at the fakes, a :class:`~bot.runtime.Runtime` as ``parley run``
builds it, Socket Mode's start, the shutdown order, and discord.py's class attributes put back
afterwards. ``bench/platforms.py`` imports it too, as it imports the fakes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from discord.gateway import DiscordWebSocket
from discord.http import Ratelimit, Route

from adapters.slack.app import SlackAdapter
from bot.files import FileError, PreparedFiles
from bot.runtime import Runtime
from bot.settings import load_settings
from bot.turn import FilePipeline
from bot.types import Attachment, ContextMessage
from tests.fakes.discord import FakeDiscord
from tests.fakes.gateway import FakeGateway, RecordedRequest, Reply
from tests.fakes.slack import FakeSlack

SlackMode = Literal["socket", "http"]

#: What the test harnesses add: anyone may change settings, a failed reply is not retried, and no
#: turn waits for a burst to gather (the merge window's own tests turn it on).
TEST_SETTINGS: Mapping[str, str] = {
    "PARLEY_ADMIN_ONLY_SETTINGS": "false",
    "PARLEY_MAX_RETRIES": "0",
    "PARLEY_MERGE_WINDOW": "0",
}


def parley_env(
    gw: FakeGateway, tmp: Path, platform: Mapping[str, str], extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Parley's environment: the fake gateway, a SQLite file in ``tmp``, ``platform``, then ``extra``."""
    env = {
        "APICORE_API_KEY": gw.api_key or "",
        "APICORE_BASE_URL": gw.url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'parley.db'}",
        **platform,
    }
    env.update(extra or {})
    return env


def slack_env(fs: FakeSlack, mode: SlackMode) -> dict[str, str]:
    """The fake Slack's tokens and URL; Socket Mode needs the app token, HTTP the signing secret."""
    env = {"SLACK_BOT_TOKEN": fs.bot_token, "SLACK_API_URL": fs.api_url}
    if mode == "socket":
        env["SLACK_APP_TOKEN"] = fs.app_token
    else:
        env["SLACK_SIGNING_SECRET"] = fs.signing_secret
    return env


def discord_env(fd: FakeDiscord) -> dict[str, str]:
    return {"DISCORD_BOT_TOKEN": fd.token, "DISCORD_API_URL": fd.api_url}


async def open_runtime(env: Mapping[str, str], tmp: Path, files: FilePipeline | None = None) -> Runtime:
    """A Runtime as ``parley run`` builds it from ``env`` (``files`` None: the real file pipeline)."""
    return await Runtime.create(load_settings(env, cwd=tmp), files=files)


async def start_socket_mode(adapter: SlackAdapter, fs: FakeSlack) -> None:
    """Start the adapter and return once its new Socket Mode connection is open on the fake."""
    connects = fs.socket_connect_count
    await adapter.start()
    await fs.wait_for_connect_count(connects + 1)


async def shut_down(runtime: Runtime, *stops: Callable[[], Awaitable[object]]) -> None:
    """``parley run``'s shutdown: replies in flight drain, then ``stops`` in order, then the Runtime."""
    await runtime.service.drain(5)
    for stop in stops:
        await stop()
    await runtime.aclose()


@asynccontextmanager
async def count_discord_py_waits() -> AsyncIterator[list[int]]:
    """Counts the times discord.py makes a caller sleep on a rate-limit bucket (in ``[0]``)."""
    original = Ratelimit._refresh
    count = [0]

    async def counting(self: Ratelimit) -> None:
        count[0] += 1
        await original(self)

    Ratelimit._refresh = counting  # type: ignore[method-assign]
    try:
        yield count
    finally:
        Ratelimit._refresh = original  # type: ignore[method-assign]


@asynccontextmanager
async def discord_fakes(
    default: Reply | Callable[[RecordedRequest], Reply] | None = None, **fake_kwargs: Any
) -> AsyncIterator[tuple[FakeGateway, FakeDiscord, list[int]]]:
    """The fake gateway and a FakeDiscord, with discord.py's waits counted; discord.py's class
    attributes (``Route.BASE``, ``DEFAULT_GATEWAY``), which the adapter points at the fake, are
    restored afterwards."""
    saved = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    try:
        async with (
            FakeGateway(default=default) as gw,
            FakeDiscord(**fake_kwargs) as fd,
            count_discord_py_waits() as waits,
        ):
            yield gw, fd, waits
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved


@dataclass
class Fetched:
    name: str
    data: bytes | None
    error: str | None


@dataclass
class RecordingFiles:
    """A file pipeline that fetches every attachment with a byte cap and records what came back.

    The adapter's job ends at the fetchers; what the model receives is the file pipeline's, so
    the tests look at the bytes the fetchers delivered.
    """

    max_bytes: int = 1024 * 1024
    fetched: list[Fetched] = field(default_factory=list)

    async def prepare(
        self,
        conversation_id: int,
        attachments: Sequence[Attachment],
        model: str,
        *,
        question: str,
        context: Sequence[ContextMessage] = (),
    ) -> PreparedFiles:
        out = PreparedFiles(question=question)
        for a in [*(a for c in context for a in c.attachments), *attachments]:
            try:
                self.fetched.append(Fetched(a.name, await a.fetch(self.max_bytes), None))
            except FileError as exc:
                self.fetched.append(Fetched(a.name, None, exc.sentence(a.name)))
                out.notes.append(exc.sentence(a.name))
        return out
