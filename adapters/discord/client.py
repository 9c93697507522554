"""The Discord adapter: a discord.py ``AutoShardedClient`` pointed at ``DISCORD_API_URL``.

discord.py keeps its REST root (``Route.BASE``) and the gateway it dials after an op 9 invalid
session (``DiscordWebSocket.DEFAULT_GATEWAY``) in class attributes. Both are set from the
settings at start (the gateway address from ``GET {DISCORD_API_URL}/gateway/bot``, as the
contract says) and restored at stop: without the second, a re-IDENTIFY would quietly go to
discord.com whatever ``DISCORD_API_URL`` says.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiohttp
import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord.commands import Commands
from adapters.discord.events import MessageEvents
from adapters.discord.feedback import FeedbackButtons
from adapters.discord.hub import Hub
from adapters.discord.pacing import DiscordBudgets
from adapters.discord.surface import DiscordSurface, recovered_surface
from bot.context import AdapterContext, OrphanedReply
from bot.errors import UserFacingError
from bot.settings import SettingsError

log = logging.getLogger("parley.discord")
# How often the REST share is split again by the Discord processes alive (several instances).
_SHARE_EVERY = 1.0

MESSAGE_CONTENT_HELP = (
    "DISCORD_BOT_TOKEN: Discord refuses Parley the Message Content intent — enable "
    "'Message Content Intent' under Bot → Privileged Gateway Intents for this application in the "
    "Discord developer portal (https://discord.com/developers/applications)"
)
BAD_TOKEN = (
    "DISCORD_BOT_TOKEN: Discord rejected the token (401 Unauthorized) — copy it again from the Bot "
    "page of your application in the Discord developer portal"
)


def intents() -> discord.Intents:
    """Guild channels and threads, DMs, and message text (privileged: enable it in the portal)."""
    return discord.Intents(guilds=True, guild_messages=True, dm_messages=True, message_content=True)


class _Client(discord.AutoShardedClient):
    """Hands discord.py's events to the adapter (a plain Client has no listener registry)."""

    def __init__(self, adapter: DiscordAdapter, **options: Any) -> None:
        super().__init__(**options)
        self._adapter = adapter

    async def on_ready(self) -> None:
        self._adapter._ready.set()

    async def on_resumed(self) -> None:
        log.info("Discord gateway session resumed")

    async def on_message(self, message: discord.Message) -> None:
        await self._adapter.events.on_message(message)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        adapter = self._adapter
        if await adapter.feedback.on_interaction(interaction, adapter.commands.admits(interaction)):
            return
        await adapter.commands.on_interaction(interaction)


class DiscordAdapter:
    name = "discord"

    def __init__(
        self,
        ctx: AdapterContext,
        *,
        budgets: DiscordBudgets | None = None,
        guild_ready_timeout: float = 2.0,
        ready_timeout: float | None = None,
        drain_timeout: float = 10.0,
    ) -> None:
        settings = ctx.settings
        token = settings.discord_bot_token
        if token is None or not token.get_secret_value().strip():
            raise SettingsError(["DISCORD_BOT_TOKEN: not set"])
        self._token = token.get_secret_value().strip()
        self._api_url = settings.discord_api_url.rstrip("/")
        # Unset, discord.py runs every shard /gateway/bot recommends; set, only this process's.
        self._shard_ids = list(settings.parley_discord_shard_ids) or None
        self.client = _Client(
            self,
            shard_count=settings.parley_discord_shard_count,
            shard_ids=self._shard_ids,
            intents=intents(),
            chunk_guilds_at_startup=False,  # no members intent: nothing to chunk, no op 8 wait
            guild_ready_timeout=guild_ready_timeout,
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.hub = Hub(ctx, self.client, budgets or DiscordBudgets())
        self.events = MessageEvents(self.hub)
        # Several instances: a message another one took and left waiting is answered here.
        ctx.revive_with("discord", self.events.rebuild)
        self.commands = Commands(self.hub)
        self.feedback = FeedbackButtons(self.hub)
        self.tree = self.commands.tree(self.client)
        self._ready = asyncio.Event()
        self._ready_timeout = ready_timeout
        self._drain_timeout = drain_timeout
        self._runner: asyncio.Task[None] | None = None
        self._restore: tuple[str, yarl.URL] | None = None

    # -- the Adapter protocol ---------------------------------------------------------------------

    async def start(self) -> None:
        """Log in, check the intent, sync the slash commands, connect; return once READY."""
        self._point_discord_py()
        try:
            shards = await self._login()
            if self._shard_ids is not None:
                shards = len(self._shard_ids)  # the ones this process connects
            try:
                async with self.hub.throttle.slot():
                    synced = await self.tree.sync()
                log.info("Discord: %d slash commands synced", len(synced))
            except discord.HTTPException as exc:
                log.warning("Discord: could not sync the slash commands (%s); they may be missing", exc)
            await self._connect(self._ready_timeout or 30.0 + 6.0 * shards)
        except BaseException:
            await self._shutdown()
            raise
        user = self.client.user
        log.info(
            "Discord: connected as %s (%s) to %d guild(s) on shard(s) %s of %d",
            user,
            user.id if user else "?",
            len(self.client.guilds),
            ",".join(str(i) for i in sorted(self.client.shards)) or "0",
            self.client.shard_count or 1,
        )
        # Replies a crashed Parley left streaming get their "interrupted" note now.
        self.hub.spawn(self.hub.ctx.recover("discord", self._recovered_surface), "discord recovery")
        self.hub.spawn(self._share_rest_budget(), "discord rest budget", background=True)

    async def _share_rest_budget(self) -> None:
        """Keep the adapter's own REST share split by the shard processes alive (docs/deploy.md)."""
        while True:
            self.hub.share_rest_budget()
            await asyncio.sleep(_SHARE_EVERY)

    def _recovered_surface(self, reply: OrphanedReply) -> DiscordSurface | None:
        return recovered_surface(self.hub, reply)

    async def stop_intake(self) -> None:
        """Start no new answers; replies in flight, their Stop buttons and slash commands go on.

        Discord does not redeliver gateway events, so a message arriving from here on is not
        answered (the log counts them); the gateway stays up until :meth:`stop` for the rest.
        """
        self.hub.accepting = False

    async def stop(self) -> None:
        await self.stop_intake()
        # Handlers return once the core has finished their replies; the REST session must stay
        # open until then for the final edits.
        await self.hub.drain(self._drain_timeout)
        await self._shutdown()
        if self.events.unanswered:
            log.info(
                "Discord: %d message(s) arrived during shutdown and were not answered", self.events.unanswered
            )

    @property
    def connected(self) -> bool:
        client = self.client
        if not self._ready.is_set() or client.is_closed() or not client.shards:
            return False
        return all(not shard.is_closed() for shard in client.shards.values())

    # -- start-up ---------------------------------------------------------------------------------

    def _point_discord_py(self) -> None:
        if self._restore is None:
            self._restore = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
        Route.BASE = self._api_url

    async def _login(self) -> int:
        """Log in and point the gateway at ``/gateway/bot``'s address; returns the shard count."""
        client = self.client
        throttle = self.hub.throttle
        try:
            await client.login(self._token)
            # Start-up calls count against the global limit too: a burst of events queued while
            # Parley was down arrives right after them.
            throttle.charge(2)  # GET /users/@me, GET /oauth2/applications/@me
            flags = client.application_flags
            if not (flags.gateway_message_content or flags.gateway_message_content_limited):
                raise UserFacingError(MESSAGE_CONTENT_HELP)
            async with throttle.slot():
                shards, url, _ = await client.http.get_bot_gateway()
        except discord.LoginFailure:
            raise UserFacingError(BAD_TOKEN) from None
        except discord.GatewayNotFound:
            raise UserFacingError(
                f"DISCORD_API_URL: {self._api_url}/gateway/bot did not give a gateway address"
            ) from None
        except discord.HTTPException as exc:
            raise UserFacingError(
                f"DISCORD_API_URL: Discord answered HTTP {exc.status} at {self._api_url} ({exc.text[:120]})"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UserFacingError(
                f"DISCORD_API_URL: could not reach Discord at {self._api_url} ({type(exc).__name__}: {exc})"
            ) from None
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        return max(1, int(shards))

    async def _connect(self, within: float) -> None:
        self.hub.throttle.charge(1)  # AutoShardedClient asks GET /gateway/bot again
        runner = asyncio.get_running_loop().create_task(
            self.client.connect(reconnect=True), name="discord gateway"
        )
        self._runner = runner
        ready = asyncio.get_running_loop().create_task(self._ready.wait())
        try:
            done, _ = await asyncio.wait({runner, ready}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if runner in done:
            exc = runner.exception()
            if isinstance(exc, discord.PrivilegedIntentsRequired):
                raise UserFacingError(MESSAGE_CONTENT_HELP)
            raise UserFacingError(f"Discord gateway: the connection ended ({type(exc).__name__}: {exc})")
        if not self._ready.is_set():
            raise UserFacingError(f"Discord gateway: not READY within {within:.0f} s (check DISCORD_API_URL)")
        runner.add_done_callback(_log_end)

    async def _shutdown(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.close()
        runner, self._runner = self._runner, None
        if runner is not None and not runner.done():
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(runner, 5)
        self._ready.clear()
        if self._restore is not None:
            Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = self._restore
            self._restore = None
        await self.hub.aclose()


def _log_end(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("Discord gateway stopped: %s: %s", type(exc).__name__, exc)
