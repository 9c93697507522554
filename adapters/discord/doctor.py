"""``parley doctor``'s Discord checks: the token, the application and its Message Content intent,
the gateway address, and the invite link with the permissions Parley needs.

Plain REST calls (no gateway connection), so the check is quick and changes nothing.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import discord

from bot.doctor import Finding
from bot.settings import Settings

# What Parley needs in a server, by discord.py's name and the portal's (docs/discord.md explains
# each); the adapter checks the same ones per channel before it posts, opens a thread or reads.
NEEDED = {
    "view_channel": "View Channels",
    "send_messages": "Send Messages",
    "send_messages_in_threads": "Send Messages in Threads",
    "create_public_threads": "Create Public Threads",
    "read_message_history": "Read Message History",
}
PERMISSIONS = discord.Permissions(**dict.fromkeys(NEEDED, True))
_CONTENT_FLAGS = (1 << 18) | (1 << 19)  # GATEWAY_MESSAGE_CONTENT, GATEWAY_MESSAGE_CONTENT_LIMITED
_TIMEOUT = aiohttp.ClientTimeout(total=15)
_PORTAL = "https://discord.com/developers/applications"


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
                        "copy the token again from the Bot page of your application in the developer "
                        f"portal ({_PORTAL}); Reset Token there if you no longer have it",
                    )
                ]
            if status != 200:
                return [
                    Finding(
                        False, f"discord: {api}/users/@me answered HTTP {status}", "check DISCORD_API_URL"
                    )
                ]
            app_status, app = await _get(http, f"{api}/oauth2/applications/@me")
            gateway_status, gateway = await _get(http, f"{api}/gateway/bot")
    except (aiohttp.ClientError, TimeoutError) as exc:
        return [
            Finding(False, f"discord: could not reach {api} ({type(exc).__name__})", "check DISCORD_API_URL")
        ]
    found = [Finding(True, f"discord: token accepted for {me.get('username', '?')} ({me.get('id', '?')})")]
    if app_status == 200 and app.get("id"):
        found.extend(_application(app))
    else:
        found.append(
            Finding(
                False,
                f"discord: {api}/oauth2/applications/@me answered HTTP {app_status}, so the Message "
                "Content intent cannot be checked",
                "check DISCORD_API_URL (a REST proxy must pass this route through)",
            )
        )
    if gateway_status == 200 and gateway.get("url"):
        shards = gateway.get("shards", 1)
        found.append(Finding(True, f"discord: gateway {gateway['url']} ({shards} shard(s) recommended)"))
        count = settings.parley_discord_shard_count
        if count is not None:
            ids = settings.parley_discord_shard_ids or tuple(range(count))
            runs = ",".join(map(str, ids))
            found.append(Finding(True, f"discord: this process runs shard(s) {runs} of {count}"))
    else:
        found.append(
            Finding(False, f"discord: {api}/gateway/bot gave no gateway address", "check DISCORD_API_URL")
        )
    return found


def _application(app: dict[str, Any]) -> list[Finding]:
    found = [Finding(True, f"discord: application {app.get('name', '?')} ({app['id']})")]
    if int(app.get("flags") or 0) & _CONTENT_FLAGS:
        found.append(Finding(True, "discord: Message Content intent enabled"))
    else:
        found.append(
            Finding(
                False,
                "discord: the Message Content intent is not enabled, so Discord would send Parley "
                "empty messages (and `parley run` stops)",
                f"developer portal ({_PORTAL}/{app['id']}/bot) → Bot → Privileged Gateway Intents → "
                "enable Message Content Intent, then Save Changes",
            )
        )
    needed = ", ".join(NEEDED.values())
    found.append(
        Finding(
            True,
            f"discord: invite Parley with {invite_url(app['id'])} "
            f"(permissions {PERMISSIONS.value}: {needed})",
        )
    )
    return found


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with http.get(url) as response:
        try:
            body = await response.json(content_type=None)
        except ValueError:
            body = None
        return response.status, body if isinstance(body, dict) else {}
