"""``parley doctor``'s Discord checks: the token, the application and its Message Content intent,
the gateway address, the invite link, and Parley's permissions in each server it is in.

Plain REST calls (no gateway connection), so the check is quick and changes nothing. The Message
Content intent is required (a FAIL without it). A missing permission is a FAIL only where Parley
could not answer at all; otherwise a WARN that says what degrades.
"""

from __future__ import annotations

from dataclasses import dataclass
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
# What a server where one is missing (and Parley can still answer) loses.
DEGRADES = {
    "view_channel": "Parley sees no channel there",
    "send_messages": "Parley cannot answer in a channel where it cannot open a thread",
    "send_messages_in_threads": "Parley cannot answer follow-ups in threads",
    "create_public_threads": "Parley answers in the channel instead of opening a thread",
    "read_message_history": "Parley cannot read a thread or a reply chain back, so it answers the "
    "question alone",
}
PERMISSIONS = discord.Permissions(**dict.fromkeys(NEEDED, True))
_CONTENT_FLAGS = (1 << 18) | (1 << 19)  # GATEWAY_MESSAGE_CONTENT, GATEWAY_MESSAGE_CONTENT_LIMITED
_TIMEOUT = aiohttp.ClientTimeout(total=15)
_PORTAL = "https://discord.com/developers/applications"
_GUILD_PAGE = 200  # Discord's largest page of /users/@me/guilds; only the first is checked


def invite_url(application_id: int | str) -> str:
    return discord.utils.oauth_url(
        str(application_id), permissions=PERMISSIONS, scopes=("bot", "applications.commands")
    )


@dataclass(frozen=True, slots=True)
class Answers:
    """The REST answers the checks read: (HTTP status, JSON body) by route."""

    me: tuple[int, Any]
    app: tuple[int, Any]
    gateway: tuple[int, Any]
    guilds: tuple[int, Any]


async def check(settings: Settings) -> list[Finding]:
    if settings.discord_bot_token is None:
        return []
    api = settings.discord_api_url.rstrip("/")
    headers = {"Authorization": f"Bot {settings.discord_bot_token.get_secret_value().strip()}"}
    try:
        async with aiohttp.ClientSession(timeout=_TIMEOUT, headers=headers) as http:
            me = await _get(http, f"{api}/users/@me")
            if me[0] != 200:
                return [_refused(api, me[0])]
            answers = Answers(
                me,
                await _get(http, f"{api}/oauth2/applications/@me"),
                await _get(http, f"{api}/gateway/bot"),
                await _get(http, f"{api}/users/@me/guilds?limit={_GUILD_PAGE}"),
            )
    except (aiohttp.ClientError, TimeoutError) as exc:
        return [
            Finding(False, f"discord: could not reach {api} ({type(exc).__name__})", "check DISCORD_API_URL")
        ]
    return findings(answers, api, settings)


def findings(answers: Answers, api: str, settings: Settings) -> list[Finding]:
    """What the REST answers say, in the order a person reads them."""
    me = answers.me[1] if isinstance(answers.me[1], dict) else {}
    found = [Finding(True, f"discord: token accepted for {me.get('username', '?')} ({me.get('id', '?')})")]
    status, app = answers.app
    if status == 200 and isinstance(app, dict) and app.get("id"):
        found.extend(_application(app))
    else:
        found.append(
            Finding(
                False,
                f"discord: {api}/oauth2/applications/@me answered HTTP {status}, so the Message "
                "Content intent cannot be checked",
                "check DISCORD_API_URL (a REST proxy must pass this route through)",
            )
        )
    found.extend(_gateway(answers.gateway, api, settings))
    found.extend(_servers(answers.guilds, app.get("id") if isinstance(app, dict) else None))
    return found


def _refused(api: str, status: int) -> Finding:
    if status == 401:
        return Finding(
            False,
            "discord: DISCORD_BOT_TOKEN was rejected (401)",
            "copy the token again from the Bot page of your application in the developer "
            f"portal ({_PORTAL}); Reset Token there if you no longer have it",
        )
    return Finding(False, f"discord: {api}/users/@me answered HTTP {status}", "check DISCORD_API_URL")


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


def _gateway(answer: tuple[int, Any], api: str, settings: Settings) -> list[Finding]:
    status, gateway = answer
    if status != 200 or not isinstance(gateway, dict) or not gateway.get("url"):
        return [
            Finding(False, f"discord: {api}/gateway/bot gave no gateway address", "check DISCORD_API_URL")
        ]
    shards = gateway.get("shards", 1)
    found = [Finding(True, f"discord: gateway {gateway['url']} ({shards} shard(s) recommended)")]
    count = settings.parley_discord_shard_count
    if count is not None:
        ids = settings.parley_discord_shard_ids or tuple(range(count))
        runs = ",".join(map(str, ids))
        found.append(Finding(True, f"discord: this process runs shard(s) {runs} of {count}"))
    return found


def missing_permissions(value: int) -> list[str]:
    """The permissions Parley uses that ``value`` (server-level) lacks, by discord.py name."""
    granted = discord.Permissions(value)
    if granted.administrator:
        return []
    return [name for name in NEEDED if not getattr(granted, name)]


def can_answer(missing: list[str]) -> bool:
    """Whether Parley can still answer a mention, as the adapter goes about it: where it may open a
    thread it opens one and answers there, elsewhere it answers in the channel."""
    if "view_channel" in missing:
        return False
    if "create_public_threads" in missing:
        return "send_messages" not in missing
    return "send_messages_in_threads" not in missing


def _servers(answer: tuple[int, Any], application_id: str | None) -> list[Finding]:
    status, guilds = answer
    invite = f"invite it with {invite_url(application_id)}" if application_id else "invite it"
    if status != 200 or not isinstance(guilds, list):
        return [
            Finding.warning(
                f"discord: listing Parley's servers answered HTTP {status}, so its permissions there "
                "were not checked",
                "check DISCORD_API_URL (a REST proxy must pass /users/@me/guilds through)",
            )
        ]
    if not guilds:
        return [Finding.warning("discord: Parley is in no server yet, so it can answer DMs only", invite)]
    checked = [(guild, missing_permissions(_value(guild))) for guild in guilds]
    complete = sum(not missing for _, missing in checked)
    head = f"discord: Parley's role has every permission it uses in {complete} of {len(guilds)} server(s)"
    found = [Finding(True, head)]
    for guild, missing in checked:
        if missing:
            found.extend(_server(guild, missing, invite))
    return found


def _value(guild: Any) -> int:
    try:
        return int(guild.get("permissions") or 0)
    except (AttributeError, TypeError, ValueError):
        return 0


def _server(guild: dict[str, Any], missing: list[str], invite: str) -> list[Finding]:
    where = f"discord: in server {guild.get('name', '?')} ({guild.get('id', '?')}) Parley's role lacks"
    fix = "give Parley's role {} under Server Settings → Roles, or " + invite
    if not can_answer(missing):
        names = ", ".join(NEEDED[name] for name in missing)
        # Server-level permissions: a channel's own overrides may still grant them there.
        return [
            Finding(
                False,
                f"{where} {names}, so it cannot answer there (unless a channel's overrides allow it)",
                fix.format(names),
            )
        ]
    return [
        Finding.warning(f"{where} {NEEDED[name]}: {DEGRADES[name]}", fix.format(NEEDED[name]))
        for name in missing
    ]


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as response:
        try:
            body = await response.json(content_type=None)
        except ValueError:
            body = None
        return response.status, body if isinstance(body, dict | list) else {}
