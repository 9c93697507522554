"""A Parley Slack bot on loopback: FakeGateway + FakeSlack + a Runtime + the real Slack adapter.

::

    async with slack_bench(tmp_path, mode="socket") as bench:
        event = bench.fs.app_mention("hi")
        await bench.deliver(event)
        reply = await bench.reply_in(event["channel"], event["ts"])

Socket Mode connects slack-bolt's websocket client to the fake; HTTP mode serves the adapter's
``POST /slack/events`` on Parley's own HTTP server (bot/http.py) and the fake posts signed
events there. The SQLite file lives in ``tmp_path``, so :meth:`SlackBench.restart` gives a new
process's view of the same history.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.slack.app import SlackAdapter
from adapters.slack.surface import STOP_ACTION, SlackBudgets
from bot.http import HttpServer
from bot.runtime import Runtime
from bot.store import StoredMessage
from bot.types import ConversationKey
from tests.fakes.gateway import FakeGateway
from tests.fakes.slack_api import Delivery, FakeSlack, Message
from tests.stack import (
    TEST_SETTINGS,
    RecordingFiles,
    open_runtime,
    parley_env,
    shut_down,
    slack_env,
    start_socket_mode,
)
from tests.stack import SlackMode as Mode

__all__ = ["MODES", "Mode", "RecordingFiles", "SlackBench", "bench_env", "is_live", "slack_bench"]

MODES: tuple[Mode, ...] = ("socket", "http")


@dataclass
class SlackBench:
    fs: FakeSlack
    gw: FakeGateway
    tmp: Path
    mode: Mode
    env: dict[str, str]
    budgets: SlackBudgets | None
    adapter_kwargs: dict[str, Any]
    runtime: Runtime = field(init=False)
    adapter: SlackAdapter = field(init=False)
    files: RecordingFiles = field(default_factory=RecordingFiles)
    real_files: bool = False  # True: the real file pipeline instead of ``files``
    server: HttpServer | None = None
    _port: int | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self.runtime = await open_runtime(self.env, self.tmp, None if self.real_files else self.files)
        adapter = SlackAdapter(
            self.runtime.adapter_context(), budgets=self.budgets, ping_interval=1.0, **self.adapter_kwargs
        )
        self.adapter = adapter
        if self.mode == "socket":
            await start_socket_mode(adapter, self.fs)
        else:
            self.server = HttpServer(self.runtime, [adapter])
            await self.server.start("127.0.0.1", 0)
            self.fs.events_url = f"http://127.0.0.1:{self.server.port}/slack/events"
            await adapter.start()

    async def stop(self) -> None:
        stops = [self.adapter.stop]
        if self.server is not None:
            stops.append(self.server.stop)
            self.server = None
        await shut_down(self.runtime, *stops)

    async def restart(self) -> None:
        """A new process on the same database: new Runtime, new adapter, new connection."""
        await self.stop()
        await self.start()

    async def pause_intake(self) -> None:
        """Parley stops receiving (socket closed / HTTP server down); the rest keeps running."""
        if self.mode == "socket":
            await self.adapter.stop()
        else:
            assert self.server is not None
            self._port = self.server.port
            await self.server.stop()

    async def resume_intake(self) -> None:
        if self.mode == "socket":
            await start_socket_mode(self.adapter, self.fs)
        else:
            assert self.server is not None and self._port is not None
            await self.server.start("127.0.0.1", self._port)

    async def stored(self, key: ConversationKey) -> list[StoredMessage]:
        conversation = await self.runtime.store.conversations.find(key)
        assert conversation is not None, f"no conversation {key}"
        return await self.runtime.store.history.load(conversation.id, 100)

    # -- driving -------------------------------------------------------------------------------

    async def deliver(self, event: dict[str, Any], **kwargs: Any) -> Delivery:
        delivery = await self.fs.deliver_event(event, mode=self.mode, **kwargs)
        await delivery.wait_acked(within=3)
        return delivery

    async def settle(self, answered: int | None = None, within: float = 20.0) -> None:
        """Wait until ``answered`` replies are done (when given) and the adapter has no work left."""
        ws = self.adapter.ws
        if answered is not None:
            await self.fs.wait_for(lambda: ws.stats.answered >= answered, within=within)
        await asyncio.sleep(0.05)  # a delivery acked a moment ago may still be scheduling its task
        await ws.wait_idle(within)

    async def reply_in(
        self, channel: str, thread_ts: str | None, *, count: int = 1, within: float = 20.0
    ) -> list[Message]:
        """The bot's finished messages in a thread (top level of a DM when ``thread_ts`` is None)."""

        def done() -> list[Message] | None:
            msgs = self.bot_messages(channel, thread_ts)
            if len(msgs) < count or any(is_live(m) for m in msgs):
                return None
            # A stream ended on the way (fall back) looks finished until its chat.update lands.
            busy = self.runtime.pacer.active or self.runtime.service.in_flight
            return None if busy else msgs

        found = await self.fs.wait_for(done, within=within)
        assert found is not None
        return found

    def bot_messages(self, channel: str, thread_ts: str | None) -> list[Message]:
        msgs = self.fs.bot_messages(channel)
        return [m for m in msgs if m.thread_ts == thread_ts]

    def thread_text(self, channel: str, thread_ts: str | None) -> str:
        return "".join(self.fs.visible_text(channel, m.ts) for m in self.bot_messages(channel, thread_ts))

    def slack_errors(self) -> list[tuple[str, str | None]]:
        return [(c.method, c.error) for c in self.fs.calls if not c.ok]

    def gateway_text(self, index: int = -1) -> str:
        """The whole body of a chat request, to look for context in it."""
        return json.dumps(self.gw.stream_requests[index].json, ensure_ascii=False)


def is_live(message: Message) -> bool:
    """Still streaming, or still showing the Stop button."""
    if message.streaming == "streaming":
        return True
    return any(b.get("block_id") == STOP_ACTION for b in message.blocks or [])


def bench_env(
    fs: FakeSlack, gw: FakeGateway, tmp: Path, mode: Mode, extra: Mapping[str, str] | None
) -> dict[str, str]:
    return parley_env(gw, tmp, {**slack_env(fs, mode), **TEST_SETTINGS}, extra)


@asynccontextmanager
async def slack_bench(
    tmp: Path,
    mode: Mode = "socket",
    *,
    env: Mapping[str, str] | None = None,
    budgets: SlackBudgets | None = None,
    ack_timeout: float = 1.0,
    real_files: bool = False,
    **adapter_kwargs: Any,
) -> AsyncIterator[SlackBench]:
    async with FakeGateway() as gw, FakeSlack(ack_timeout=ack_timeout) as fs:
        bench = SlackBench(fs, gw, tmp, mode, bench_env(fs, gw, tmp, mode, env), budgets, adapter_kwargs)
        bench.real_files = real_files
        await bench.start()
        try:
            yield bench
        finally:
            await bench.stop()
