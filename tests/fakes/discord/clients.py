"""The real discord.py pointed at a :class:`FakeDiscord`, for tests of the fake itself and of
code built on discord.py (Parley's own adapter points itself from DISCORD_API_URL instead)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from .dpy import configure_discord_py

if TYPE_CHECKING:
    import discord

    from .fake import FakeDiscord


@contextlib.asynccontextmanager
async def pointed(fake: FakeDiscord) -> AsyncIterator[None]:
    """discord.py's class attributes aimed at ``fake`` (the adapter's production recipe), then
    put back."""
    restore = await configure_discord_py(fake.api_url, fake.token)
    try:
        yield
    finally:
        restore()


def content_intents() -> discord.Intents:
    import discord

    intents = discord.Intents.default()
    intents.message_content = True
    return intents


class Harness:
    """A real discord.py client plus a record of the events it received."""

    def __init__(self, client: discord.Client) -> None:

        self.client = client
        self.ready = asyncio.Event()
        self.ready_count = 0
        self.resumed_count = 0
        self.messages: list[discord.Message] = []
        self.threads: list[discord.Thread] = []
        self.errors: list[BaseException] = []

        @client.event
        async def on_ready() -> None:
            self.ready_count += 1
            self.ready.set()

        @client.event
        async def on_resumed() -> None:
            self.resumed_count += 1

        @client.event
        async def on_message(message: discord.Message) -> None:
            self.messages.append(message)

        @client.event
        async def on_thread_create(thread: discord.Thread) -> None:
            self.threads.append(thread)

    def contents(self) -> list[str]:
        return [m.content for m in self.messages]

    async def wait(self, predicate: Callable[[], object], within: float = 5.0) -> None:
        deadline = time.monotonic() + within
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("client-side condition not met")
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(
    fd: FakeDiscord,
    *,
    intents: discord.Intents | None = None,
    cls: type[discord.Client] | None = None,
    setup: Callable[[discord.Client], None] | None = None,
    **client_kwargs: Any,
) -> AsyncIterator[Harness]:
    """A discord.py client (``AutoShardedClient`` unless ``cls``) logged in to ``fd`` until the
    block ends; ``setup`` runs before it connects (register views, a command tree…)."""
    import discord

    kind = cls or discord.AutoShardedClient
    client = kind(intents=intents or content_intents(), guild_ready_timeout=0.1, **client_kwargs)
    harness = Harness(client)
    if setup is not None:
        setup(client)
    task = asyncio.create_task(client.start(fd.token))
    ready = asyncio.create_task(harness.ready.wait())
    try:
        done, _ = await asyncio.wait({task, ready}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # raises what made the client stop
        assert ready in done, "no on_ready within 10 s"
        yield harness
    finally:
        ready.cancel()
        await client.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)
