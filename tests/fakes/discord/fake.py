"""``FakeDiscord``: the servers' lifecycle and the async helpers that play the users' side."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, Self, TypeVar

from aiohttp import web

from ..loopback import LoopbackServer
from .commands import command_data
from .gateway import Gateway
from .models import (
    JSON,
    Channel,
    InteractionType,
    MessageFlag,
    User,
)
from .ratelimit import Limits
from .records import (
    InteractionRecord,
    StoredAttachment,
    StoredMessage,
)
from .rest import RestApi, RestFault
from .state import World, _id

T = TypeVar("T")

AttachmentSpec = StoredAttachment | tuple[str, bytes] | tuple[str, bytes, str]


class FakeDiscord(World, LoopbackServer):
    """A loopback Discord (REST + gateway). See the package docstring for the full API.

    In :meth:`in_thread`, builders (``create_*``, ``add_*``) may be called directly from the
    test's thread; run the async helpers with ``fd.run(fd.user_says(...))``.
    """

    thread_name = "fake-discord"
    # Tests end with discord.py's sessions still open: an error closing them is not their outcome.
    ignore_stop_errors = True

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        bot_name: str = "Parley",
        limits: Limits | None = None,
        heartbeat_interval_ms: int = 41_250,
        message_content_intent: bool = True,
        members_intent: bool = False,
        presence_intent: bool = False,
        shards: int = 1,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(
            token=token,
            bot_name=bot_name,
            limits=limits,
            message_content_intent=message_content_intent,
            members_intent=members_intent,
            presence_intent=presence_intent,
            shards=shards,
        )
        self.gateway = Gateway(self, heartbeat_interval_ms=heartbeat_interval_ms)
        self.rest = RestApi(self)
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> Self:
        loop = asyncio.get_running_loop()
        self._loop, self._loop_thread = loop, threading.get_ident()
        self._changed = asyncio.Event()
        app = web.Application(client_max_size=self.limits.upload_bytes * 2 + 1024 * 1024)
        self.rest.install(app)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/gateway/resume", self.gateway.handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self.http_root = f"http://{self.host}:{self.port}"
        self.api_url = f"{self.http_root}/api/v10"
        self.gateway_url = f"ws://{self.host}:{self.port}/gateway"
        self.resume_gateway_url = f"{self.gateway_url}/resume"
        return self

    async def stop(self) -> None:
        for conn in list(self.gateway.connections):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1001, message=b"Fake Discord is going away")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def fail(
        self,
        route: str,
        *,
        status: int = 500,
        times: int | None = 1,
        match: Callable[[web.Request], bool] | None = None,
    ) -> RestFault:
        """Make the next ``times`` requests of ``route`` (a route key such as ``"PATCH
        /channels/{channel_id}/messages/{message_id}"``) answer ``status``."""
        fault = RestFault(route, status, times, match)
        self.rest.faults.append(fault)
        return fault

    def run(self, awaitable: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the fake's loop from another thread and return its result."""
        if self._loop is None:
            raise RuntimeError("the fake is not started")
        if threading.get_ident() == self._loop_thread:
            awaitable.close()
            raise RuntimeError("already on the fake's loop: await it instead")
        return asyncio.run_coroutine_threadsafe(awaitable, self._loop).result(timeout)

    def _on_fake_loop(self) -> None:
        if self._loop is None:
            raise RuntimeError("the fake is not started")
        if asyncio.get_running_loop() is not self._loop:
            raise RuntimeError(
                "this helper runs on the fake's loop: use fd.run(...) with FakeDiscord.in_thread()"
            )

    # ------------------------------------------------------------------ discord.py

    @contextlib.contextmanager
    def patch_discord_py(self) -> Iterator[None]:
        """Point discord.py's class attributes at this fake for the duration of the block."""
        from .dpy import point_discord_py

        restore = point_discord_py(self.api_url, self.gateway_url)
        try:
            yield
        finally:
            restore()

    # ------------------------------------------------------------------ users' side

    async def flush(self) -> None:
        """Wait until every queued gateway frame has been written to the sockets."""
        await self.gateway.flush()

    def _author_in(self, channel: Channel, author: User) -> None:
        if channel.guild_id is not None and author.id not in self.guilds[channel.guild_id].members:
            self.add_member(channel.guild_id, author)
        if channel.is_thread:
            channel.thread_member_ids.add(author.id)

    def _ready_attachments(self, channel: Channel, specs: Sequence[AttachmentSpec]) -> list[StoredAttachment]:
        result = []
        for spec in specs:
            if isinstance(spec, StoredAttachment):
                result.append(spec)
            else:
                ctype = spec[2] if len(spec) == 3 else None
                result.append(self.add_file(spec[0], spec[1], ctype, channel_id=channel.id))
        return result

    async def user_says(
        self,
        channel: Channel | int,
        author: User,
        content: str = "",
        *,
        mentions: Sequence[User] = (),
        reference: StoredMessage | int | None = None,
        mention_author: bool = True,
        attachments: Sequence[AttachmentSpec] = (),
        embeds: Sequence[JSON] = (),
    ) -> StoredMessage:
        """``author`` posts in ``channel``: stores the message and dispatches MESSAGE_CREATE.

        Mentions come from ``<@id>`` / ``<@&id>`` in ``content`` as on Discord (write
        ``f"{fd.bot.mention} hi"``); ``mentions=`` adds users to the mentions array without
        touching the text. ``reference`` makes it a reply (type 19, with ``referenced_message``),
        which pings the replied-to author unless ``mention_author=False``. ``attachments`` takes
        files registered with :meth:`add_file` or ``(filename, bytes[, content_type])`` tuples.
        Returns once the event is written to every connected session.
        """
        self._on_fake_loop()
        ch = self.channel(_id(channel))
        self._author_in(ch, author)
        body: JSON = {"content": content, "embeds": list(embeds)}
        if reference is not None:
            body["message_reference"] = {"message_id": str(_id(reference))}
        ready = self._ready_attachments(ch, attachments)
        if ready:
            body["attachments"] = [{"id": a.id} for a in ready]
        msg = self.store_message(
            ch,
            author,
            body,
            extra_mentions=[u.id for u in mentions],
            mention_author=mention_author,
            ready_attachments=ready,
        )
        await self.flush()
        return msg

    async def user_sends_voice(
        self,
        channel: Channel | int,
        author: User,
        audio: bytes,
        *,
        duration_secs: float = 3.0,
        waveform: bytes | None = None,
        filename: str = "voice-message.ogg",
        reference: StoredMessage | int | None = None,
    ) -> StoredMessage:
        """``author`` records a voice message: flag ``IS_VOICE_MESSAGE`` (1 << 13), no content, one
        ``audio/ogg`` attachment with ``duration_secs`` and a base64 ``waveform`` (one byte per
        100 ms, at most 256; made up when not given), its bytes served by the fake's CDN.
        Dispatches MESSAGE_CREATE like :meth:`user_says`.
        """
        self._on_fake_loop()
        ch = self.channel(_id(channel))
        self._author_in(ch, author)
        if waveform is None:
            points = max(1, min(256, int(duration_secs * 10)))
            waveform = bytes((i * 37) % 256 for i in range(points))
        att = self.add_file(filename, audio, "audio/ogg", channel_id=ch.id)
        att.duration_secs = float(duration_secs)
        att.waveform = base64.b64encode(waveform).decode()
        body: JSON = {"content": "", "flags": MessageFlag.IS_VOICE_MESSAGE, "attachments": [{"id": att.id}]}
        if reference is not None:
            body["message_reference"] = {"message_id": str(_id(reference))}
        msg = self.store_message(ch, author, body, ready_attachments=[att])
        await self.flush()
        return msg

    async def user_edits(self, message: StoredMessage | int, content: str) -> StoredMessage:
        """The author edits their message (MESSAGE_UPDATE)."""
        self._on_fake_loop()
        msg = self.messages[_id(message)]
        self.update_message(msg, {"content": content})
        await self.flush()
        return msg

    async def user_deletes(self, message: StoredMessage | int) -> None:
        """The message is deleted by its author or a moderator (MESSAGE_DELETE)."""
        self._on_fake_loop()
        self.remove_message(self.messages[_id(message)])
        await self.flush()

    async def click_button(
        self, message: StoredMessage | int, custom_id: str, user: User, *, values: Sequence[str] | None = None
    ) -> InteractionRecord:
        """``user`` clicks a button (or picks ``values`` in a select) on a message: INTERACTION_CREATE type 3.

        Raises ``ValueError`` if the message has no such enabled component (a user could not click it).
        """
        self._on_fake_loop()
        msg = self.messages.get(_id(message))
        if msg is None or msg.deleted:
            raise ValueError(f"no message {_id(message)}")
        component = _find_component(msg.components, custom_id)
        if component is None:
            raise ValueError(f"message {msg.id} has no component {custom_id!r} (has {msg.custom_ids})")
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled")
        data: JSON = {"custom_id": custom_id, "component_type": component.get("type", 2)}
        if component.get("type", 2) != 2:
            data["values"] = list(values or [])
        channel = self.channels[msg.channel_id]
        self._author_in(channel, user)
        rec = self.start_interaction(InteractionType.MESSAGE_COMPONENT, data, user, channel, source=msg)
        await self.flush()
        return rec

    async def slash_command(
        self,
        name: str,
        options: dict[str, object] | None,
        user: User,
        channel: Channel | int,
        *,
        require_registered: bool = True,
    ) -> InteractionRecord:
        """``user`` runs ``/name`` (``"group sub"`` for a subcommand) in ``channel``: INTERACTION_CREATE 2.

        ``options`` maps option names to values: str/int/float/bool, or a ``User``, ``Channel``,
        ``Role`` or ``StoredAttachment`` (sent with ``resolved`` data). The command must have been
        registered by the bot (bulk overwrite) unless ``require_registered=False``.
        """
        return await self._command(
            InteractionType.APPLICATION_COMMAND, name, options, user, channel, None, require_registered
        )

    async def autocomplete(
        self,
        name: str,
        options: dict[str, object] | None,
        focused: str,
        user: User,
        channel: Channel | int,
        *,
        require_registered: bool = True,
    ) -> InteractionRecord:
        """``user`` types in option ``focused`` of ``/name``: INTERACTION_CREATE type 4.

        The bot's choices are in ``record.callback.data["data"]["choices"]`` once it answers.
        """
        return await self._command(
            InteractionType.AUTOCOMPLETE, name, options, user, channel, focused, require_registered
        )

    async def _command(
        self,
        itype: int,
        name: str,
        options: dict[str, object] | None,
        user: User,
        channel: Channel | int,
        focused: str | None,
        require_registered: bool,
    ) -> InteractionRecord:
        self._on_fake_loop()
        ch = self.channel(_id(channel))
        self._author_in(ch, user)
        data = command_data(self, name, options or {}, ch, focused, require_registered)
        rec = self.start_interaction(itype, data, user, ch)
        await self.flush()
        return rec

    # ------------------------------------------------------------------ gateway controls

    async def reconnect(self, *, wait: bool = True, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Send op 7 RECONNECT; with ``wait``, return once the client has RESUMEd."""
        self._on_fake_loop()
        before = self.gateway.resume_count
        self.gateway.request_reconnect()
        await self.flush()
        if wait:
            await self.wait_for(lambda: self.gateway.resume_count > before, timeout, what="RESUME after op 7")

    async def invalidate_session(
        self,
        *,
        resumable: bool = False,
        wait: bool = True,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> None:
        """Send op 9 INVALID_SESSION; with ``wait``, return once the client has re-IDENTIFYed (or RESUMEd)."""
        self._on_fake_loop()
        identified, resumed = self.gateway.identify_count, self.gateway.resume_count
        self.gateway.invalidate_sessions(resumable=resumable)
        await self.flush()
        if wait:
            await self.wait_for(
                lambda: (
                    self.gateway.identify_count > identified
                    or (resumable and self.gateway.resume_count > resumed)
                ),
                timeout,
                what="re-IDENTIFY after op 9",
            )

    async def drop_connections(self, code: int = 4000, *, wait: bool = True, timeout: float = 15.0) -> None:  # noqa: ASYNC109
        """Close every gateway socket from the server side; with ``wait``, until the client resumes."""
        self._on_fake_loop()
        before = self.gateway.resume_count + self.gateway.identify_count
        self.gateway.close_connections(code)
        await self.flush()
        if wait:
            await self.wait_for(
                lambda: self.gateway.resume_count + self.gateway.identify_count > before,
                timeout,
                what="reconnect after a dropped connection",
            )

    # ------------------------------------------------------------------ waiting

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0, *, what: str = "") -> T:  # noqa: ASYNC109 (the API mirrors asyncio.wait_for)
        """Wait until ``predicate()`` is truthy and return its value; ``TimeoutError`` otherwise."""
        self._on_fake_loop()
        assert self._changed is not None
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"not met within {timeout}s: {what or predicate}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.05))

    async def wait_for_message(
        self,
        channel: Channel | int,
        predicate: Callable[[StoredMessage], bool] | None = None,
        *,
        author: User | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> StoredMessage:
        """The first live message in ``channel`` by ``author`` (default: the bot) matching ``predicate``."""
        who = (author or self.bot).id

        def find() -> StoredMessage | None:
            for msg in self.channel_messages(channel):
                if msg.author.id == who and (predicate is None or predicate(msg)):
                    return msg
            return None

        found = await self.wait_for(find, timeout, what=f"a message in {_id(channel)}")
        assert found is not None
        return found

    async def wait_for_identify(self, count: int = 1, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Until ``count`` IDENTIFYs in total have been accepted and their frames written."""
        await self.wait_for(lambda: self.gateway.identify_count >= count, timeout, what=f"{count} IDENTIFY")
        await self.flush()

    async def wait_for_response(
        self,
        interaction: InteractionRecord,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> InteractionRecord:
        """Until the bot has acknowledged ``interaction`` (any callback)."""
        await self.wait_for(
            lambda: interaction.acked, timeout, what=f"a response to interaction {interaction.id}"
        )
        return interaction


def _find_component(items: list[JSON], custom_id: str) -> JSON | None:
    for item in items:
        if not isinstance(item, dict):
            continue
        if item.get("custom_id") == custom_id and item.get("type") != 1:
            return item
        found = _find_component(list(item.get("components", [])), custom_id)
        if found is not None:
            return found
        accessory = item.get("accessory")
        if isinstance(accessory, dict) and accessory.get("custom_id") == custom_id:
            return accessory
    return None
