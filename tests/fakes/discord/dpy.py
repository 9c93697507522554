"""Pointing discord.py (2.7) at a Discord-compatible server other than discord.com.

discord.py keeps both addresses in class attributes, so the change is process-wide:

- ``discord.http.Route.BASE``: the REST root (``http://127.0.0.1:PORT/api/v10``), read when each
  ``Route`` is built; interaction callbacks and webhooks use it too.
- ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY``: a ``yarl.URL``. A plain ``Client`` dials it
  directly; ``AutoShardedClient`` dials the ``url`` from ``GET /gateway/bot`` at start-up, but every
  shard goes back to ``DEFAULT_GATEWAY`` after an op 9 INVALID_SESSION or a failed reconnect, so it
  must be set too or the bot silently reconnects to the real Discord. Resumes use READY's
  ``resume_gateway_url``, which the server controls.
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import yarl


def point_discord_py(api_url: str, gateway_url: str) -> Callable[[], None]:
    """Set ``Route.BASE`` and ``DEFAULT_GATEWAY``; returns a function restoring the previous values."""
    from discord.gateway import DiscordWebSocket
    from discord.http import Route

    previous = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    Route.BASE = api_url.rstrip("/")
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)

    def restore() -> None:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = previous

    return restore


async def configure_discord_py(api_url: str, token: str) -> Callable[[], None]:
    """The production recipe, from ``DISCORD_API_URL`` alone.

    Sets ``Route.BASE`` to ``api_url``, asks ``GET {api_url}/gateway/bot`` for the gateway address
    and sets ``DEFAULT_GATEWAY`` to it. Returns the restore function of :func:`point_discord_py`.
    """
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{api_url.rstrip('/')}/gateway/bot", headers={"Authorization": f"Bot {token}"}
        ) as response,
    ):
        response.raise_for_status()
        data = await response.json(content_type=None)
    return point_discord_py(api_url, str(data["url"]))
