"""What the Discord adapter's parts share: the client, the core's context, limits and tasks."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Coroutine, Iterable
from typing import Any

import discord

from adapters.discord.files import AttachmentReader
from adapters.discord.pacing import DiscordBudgets, RestThrottle
from adapters.discord.reply_rest import ReplyRest
from bot.access import admitted
from bot.context import AdapterContext
from bot.tasks import TaskSet

log = logging.getLogger("parley.discord")

# Message ids seen by this process, so a redelivered event is dropped before any work (thread
# creation) is done for it; the core's claim in the database covers other processes.
_RECENT_IDS = 10_000


class Hub:
    def __init__(self, ctx: AdapterContext, client: discord.Client, budgets: DiscordBudgets) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.client = client
        self.budgets = budgets
        self.throttle = RestThrottle(*budgets.other)
        self.replies = ReplyRest(client)  # the renderer's posts and edits, paced by their headers
        self.files = AttachmentReader(
            self.settings.discord_api_url, time_limit=self.settings.parley_file_timeout
        )
        self._tasks = TaskSet(log)
        self._recent: OrderedDict[int, None] = OrderedDict()
        self.accepting = True

    @property
    def me(self) -> discord.ClientUser:
        user = self.client.user
        if user is None:
            raise RuntimeError("the Discord client is not logged in")
        return user

    def share_rest_budget(self) -> None:
        """Split the adapter's own calls' share of the bot-wide 50 a second between the processes
        running Discord on this database (shard processes): the renderer's share is booked for
        all of them in the database, this one is not."""
        self.throttle.capacity = max(1, self.budgets.other[0] // self.ctx.peers("discord"))

    # -- tasks -------------------------------------------------------------------------------------

    def spawn(
        self, coro: Coroutine[Any, Any, Any], name: str, *, background: bool = False
    ) -> asyncio.Task[Any]:
        """Run ``coro`` as a task the adapter waits for at stop; ``background`` ones (typing) are
        only cancelled."""
        return self._tasks.spawn(coro, name, background=background)

    async def drain(self, within: float) -> None:
        """Let running work finish for ``within`` seconds, then cancel what is left."""
        await self._tasks.drain(within)

    @property
    def busy(self) -> int:
        return self._tasks.busy

    # -- exactly once, access -----------------------------------------------------------------------

    def first_sight(self, message_id: int) -> bool:
        """False if this process has seen the message already (a redelivered event)."""
        if message_id in self._recent:
            return False
        self._recent[message_id] = None
        if len(self._recent) > _RECENT_IDS:
            self._recent.popitem(last=False)
        return True

    def admits(
        self,
        *,
        user_id: int,
        channel_id: int,
        thread_id: int | None = None,
        guild_id: int | None,
        role_ids: Iterable[int] = (),
        is_bot: bool = False,
    ) -> bool:
        """The access policy. In a thread the channel lists apply to its parent channel, and a
        thread may also be denied by its own id."""
        settings = self.settings
        if thread_id is not None and str(thread_id) in settings.parley_deny_channels:
            return False
        return admitted(
            settings,
            user_id=str(user_id),
            channel_id=str(channel_id),
            is_dm=guild_id is None,
            guild_id=None if guild_id is None else str(guild_id),
            role_ids=[str(r) for r in role_ids],
            is_bot=is_bot,
        )

    def admits_author(
        self,
        author: discord.User | discord.Member,
        channel: object,
        channel_id: int,
        *,
        guild_id: int | None,
        is_bot: bool,
    ) -> bool:
        """:meth:`admits` for ``author`` writing in ``channel`` (id ``channel_id``), a message or
        an interaction alike: a thread answers for its parent channel, roles come from a member."""
        thread_id = None
        if isinstance(channel, discord.Thread):
            thread_id, channel_id = channel.id, channel.parent_id
        roles = [r.id for r in author.roles] if isinstance(author, discord.Member) else []
        return self.admits(
            user_id=author.id,
            channel_id=channel_id,
            thread_id=thread_id,
            guild_id=guild_id,
            role_ids=roles,
            is_bot=is_bot,
        )

    async def aclose(self) -> None:
        await self.files.aclose()
        await self.replies.aclose()
