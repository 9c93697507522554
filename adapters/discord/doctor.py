"""``parley doctor``'s Discord checks: the token, the Message Content intent, the gateway address.

Plain REST calls (no gateway connection), so the check is quick and changes nothing.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import discord

from bot.doctor import Finding
from bot.settings import Settings

# What Parley needs in a server: see docs/discord.md.
PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    read_message_history=True,
    create_public_threads=True,
    send_messages_in_threads=True,
)
_CONTENT_FLAGS = (1 << 18) | (1 << 19)  # GATEWAY_MESSAGE_CONTENT, GATEWAY_MESSAGE_CONTENT_LIMITED
_TIMEOUT = aiohttp.ClientTimeout(total=15)


def invite_url(application_id: int | str) -> str:
    return discord.utils.oauth_url(
        str(application_id), permissions=PERMISSIONS, scopes=("bot", "applications.commands")
    )


async def check(settings: Settings) -> list[Finding]:
    if settings.discord_bot_token is None:
        return []
    api = settings.discord_api_url.rstrip("/")
    headers = {"Authorization": f"Bot {settings.discord_bot_token.get_secret_value().strip()}"}
    try:
        async with aiohttp.ClientSession(timeout=_TIMEOUT, headers=headers) as http:
            status, me = await _get(http, f"{api}/users/@me")
            if status == 401:
                return [
                    Finding(
                        False,
                        "discord: DISCORD_BOT_TOKEN was rejected (401)",
                        "copy the token again from the Bot page of your application in the developer portal",
                    )
                ]
            if status != 200:
                return [
                    Finding(
                        False, f"discord: {api}/users/@me answered HTTP {status}", "check DISCORD_API_URL"
                    )
                ]
            _, app = await _get(http, f"{api}/oauth2/applications/@me")
            gateway_status, gateway = await _get(http, f"{api}/gateway/bot")
    except (aiohttp.ClientError, TimeoutError) as exc:
        return [
            Finding(False, f"discord: could not reach {api} ({type(exc).__name__})", "check DISCORD_API_URL")
        ]
    found = [Finding(True, f"discord: token accepted for {me.get('username', '?')} ({me.get('id', '?')})")]
    if int(app.get("flags") or 0) & _CONTENT_FLAGS:
        found.append(Finding(True, "discord: Message Content intent enabled"))
    else:
        found.append(
            Finding(
                False,
                "discord: the Message Content intent is not enabled",
                "developer portal → your application → Bot → Privileged Gateway Intents → "
                "enable Message Content Intent",
            )
        )
    if gateway_status == 200 and gateway.get("url"):
        found.append(
            Finding(True, f"discord: gateway {gateway['url']} ({gateway.get('shards', 1)} shard(s))")
        )
    else:
        found.append(
            Finding(False, f"discord: {api}/gateway/bot gave no gateway address", "check DISCORD_API_URL")
        )
    if app.get("id"):
        found.append(Finding(True, f"discord: invite Parley with {invite_url(app['id'])}"))
    return found


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with http.get(url) as response:
        try:
            body = await response.json(content_type=None)
        except ValueError:
            body = None
        return response.status, body if isinstance(body, dict) else {}
