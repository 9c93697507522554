"""``parley doctor``'s Slack check: the tokens work, and the bot token has the scopes Parley uses.

A scope Parley's main job needs (answering mentions, thread follow-ups and DMs) missing is a
FAIL; one that only an optional feature needs is a WARN that names the feature.
"""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from adapters.slack.manifest import SCOPES
from bot.doctor import Finding
from bot.settings import Settings


@dataclass(frozen=True, slots=True)
class Need:
    """What a bot token scope is for: the main job (``required``) or one optional ``feature``."""

    required: bool
    feature: str  # what works only with it, e.g. "/parley and the message shortcuts"
    also: str = ""  # a step the fix needs besides adding the scope


SCOPE_NEEDS: dict[str, Need] = {
    "app_mentions:read": Need(True, "hearing @mentions"),
    "chat:write": Need(True, "posting and streaming replies"),
    "channels:history": Need(True, "follow-ups and thread history in public channels"),
    "im:history": Need(True, "answering DMs"),
    "groups:history": Need(False, "answering in private channels"),
    "mpim:history": Need(False, "answering in group DMs"),
    "users:read": Need(False, "people's names in the model's context and admin rights for /parley settings"),
    "files:read": Need(False, "reading files shared with Parley"),
    "files:write": Need(False, "pictures in replies (generate_image)"),
    "commands": Need(False, "/parley and the message shortcuts"),
    "assistant:write": Need(
        False,
        "Slack's agent experience: suggested prompts and thread titles in the Messages tab",
        also=(
            "turn on Agents & AI Apps in the app settings (agent_view) and subscribe to the "
            "app_home_opened and app_context_changed events"
        ),
    ),
    "channels:read": Need(False, 'answering about "this channel" (a public one) in the Messages tab'),
    "groups:read": Need(False, 'answering about "this channel" (a private one) in the Messages tab'),
}
_ADD = "add {scopes} under OAuth & Permissions → Bot Token Scopes, then reinstall the app to the workspace"


def checked_scopes() -> list[str]:
    """Every scope doctor checks: the manifest's and the optional ones it leaves to the user."""
    return [*SCOPE_NEEDS, *(s for s in SCOPES if s not in SCOPE_NEEDS)]


def need(scope: str) -> Need:
    # A scope the manifest gains before it is listed above is still checked, as optional.
    return SCOPE_NEEDS.get(scope) or Need(False, SCOPES.get(scope, "a feature of Parley"))


async def check(settings: Settings) -> list[Finding]:
    if settings.slack_bot_token is None:
        return []
    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
    )
    response, found = await _auth(client, settings)
    if response is None:
        return found
    found.extend(scope_findings(_granted(response)))
    found.extend(await _receiving(client, settings))
    return found


async def _auth(
    client: AsyncWebClient, settings: Settings
) -> tuple[AsyncSlackResponse | None, list[Finding]]:
    """auth.test's response (None if it failed) and what it says."""
    try:
        response = await client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error") or exc.response.status_code
        refused = Finding(
            False,
            f"slack: auth.test refused SLACK_BOT_TOKEN ({error})",
            "copy the Bot User OAuth Token (xoxb-…) again from OAuth & Permissions; if the app was "
            "uninstalled or the token revoked, reinstall the app to the workspace first",
        )
        return None, [refused]
    except (OSError, TimeoutError) as exc:
        unreachable = Finding(
            False,
            f"slack: {settings.slack_api_url} unreachable ({type(exc).__name__})",
            "check SLACK_API_URL",
        )
        return None, [unreachable]
    workspace = f"workspace {response.get('team') or '?'} ({response.get('team_id')})"
    return response, [Finding(True, f"slack: bot token accepted in {workspace} as {response.get('user_id')}")]


def _granted(response: AsyncSlackResponse) -> frozenset[str]:
    header = str((response.headers or {}).get("x-oauth-scopes", ""))
    return frozenset(s.strip() for s in header.split(",") if s.strip())


def scope_findings(granted: frozenset[str]) -> list[Finding]:
    """A FAIL for the main job's missing scopes (together), a WARN for each optional one."""
    if not granted:
        return [Finding(True, "slack: Slack did not report the token's scopes; not checked")]
    scopes = checked_scopes()
    missing = [s for s in scopes if s not in granted]
    required = [s for s in missing if need(s).required]
    if not missing:
        return [Finding(True, f"slack: the bot token has all {len(scopes)} scopes Parley uses")]
    if required:
        found = [
            Finding(
                False,
                "slack: the bot token lacks "
                + ", ".join(f"{s} ({need(s).feature})" for s in required)
                + ", which Parley's main job needs",
                _ADD.format(scopes=", ".join(required)) + " (docs/slack-manifest.yaml lists every scope)",
            )
        ]
    else:
        main = sum(need(s).required for s in scopes)
        found = [Finding(True, f"slack: the bot token has the {main} scopes Parley's main job needs")]
    for scope in missing:
        if not need(scope).required:
            found.append(_optional(scope))
    return found


def _optional(scope: str) -> Finding:
    what = need(scope)
    fix = _ADD.format(scopes=scope)
    if what.also:
        fix = f"{what.also}; {fix}"
    return Finding.warning(
        f"slack: the bot token lacks {scope}, needed for {what.feature} "
        "(the rest of Parley works without it)",
        fix,
    )


async def _receiving(client: AsyncWebClient, settings: Settings) -> list[Finding]:
    """How events reach Parley: Socket Mode's app token, or HTTP mode's signing secret."""
    if settings.slack_app_token is not None:
        try:
            await client.apps_connections_open(app_token=settings.slack_app_token.get_secret_value())
        except SlackApiError as exc:
            error = exc.response.get("error") or exc.response.status_code
            return [
                Finding(
                    False,
                    f"slack: Socket Mode refused the app token ({error})",
                    "check SLACK_APP_TOKEN (xapp-…, scope connections:write) and that Socket Mode is on",
                )
            ]
        return [Finding(True, "slack: app token opens Socket Mode")]
    if settings.slack_signing_secret is None:
        return [
            Finding(
                False,
                "slack: neither SLACK_APP_TOKEN (Socket Mode) nor SLACK_SIGNING_SECRET (HTTP mode) is set",
                "set one of them",
            )
        ]
    return []
