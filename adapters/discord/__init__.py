"""Parley in Discord: mentions answered in threads, streamed within Discord's rate limits.

The core finds this adapter through the ``parley.adapters`` entry point ``discord`` and hands it
one :class:`~bot.context.AdapterContext`; when to answer (:mod:`bot.routing`) and what the
commands do (:mod:`bot.controls`) are decided there. Modules:

- ``client``: the discord.py client, start/stop, pointing discord.py at ``DISCORD_API_URL``;
- ``events``: messages parsed for the routing decision, then → the core (threads, DMs);
- ``history``: a thread's messages and reply chains read back as context;
- ``surface``: writing a reply (Stop button, typing); ``pacing``: the budgets it declares;
- ``commands``: ``/model``, ``/reset``, ``/system``, ``/usage`` and the Stop button (Discord's
  UI for the controls);
- ``markdown``: Markdown Discord cannot show, rewritten; ``text``: mentions and thread names;
- ``files``: attachments as lazy, size-capped downloads; ``hub``: what the parts share;
- ``doctor``: ``parley doctor``'s checks (token, Message Content intent, gateway, invite link).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adapters.discord.client import DiscordAdapter
    from bot.context import AdapterContext


def create(ctx: AdapterContext) -> DiscordAdapter | None:
    """The Discord adapter, or None when ``DISCORD_BOT_TOKEN`` is not set."""
    if not ctx.settings.discord_enabled():
        return None
    from adapters.discord.client import DiscordAdapter

    return DiscordAdapter(ctx)
