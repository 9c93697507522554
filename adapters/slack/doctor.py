"""``parley doctor``'s Slack check: the tokens work and the bot token has every scope Parley uses."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.manifest import SCOPES
from bot.doctor import Finding
from bot.settings import Settings


async def check(settings: Settings) -> list[Finding]:
    if settings.slack_bot_token is None:
        return []
    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
    )
    try:
        response = await client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error") or exc.response.status_code
        return [
            Finding(
                False,
                f"slack: auth.test refused SLACK_BOT_TOKEN ({error})",
                "copy the Bot User OAuth Token (xoxb-…) again from OAuth & Permissions; if the app was "
                "uninstalled or the token revoked, reinstall the app to the workspace first",
            )
        ]
    except (OSError, TimeoutError) as exc:
        return [
            Finding(
                False,
                f"slack: {settings.slack_api_url} unreachable ({type(exc).__name__})",
                "check SLACK_API_URL",
            )
        ]
    workspace = f"workspace {response.get('team') or '?'} ({response.get('team_id')})"
    found = [Finding(True, f"slack: bot token accepted in {workspace} as {response.get('user_id')}")]
    granted = {
        s.strip() for s in str((response.headers or {}).get("x-oauth-scopes", "")).split(",") if s.strip()
    }
    missing = [s for s in SCOPES if s not in granted]
    if not granted:
        found.append(Finding(True, "slack: Slack did not report the token's scopes; not checked"))
    elif missing:
        found.append(
            Finding(
                False,
                "slack: the bot token lacks "
                + ", ".join(missing)
                + " ("
                + "; ".join(SCOPES[s] for s in missing)
                + ")",
                "add them under OAuth & Permissions → Bot Token Scopes (docs/slack-manifest.yaml lists "
                "every scope Parley needs), then reinstall the app to the workspace",
            )
        )
    else:
        found.append(Finding(True, f"slack: the bot token has all {len(SCOPES)} scopes Parley needs"))
    if settings.slack_app_token is not None:
        try:
            await client.apps_connections_open(app_token=settings.slack_app_token.get_secret_value())
            found.append(Finding(True, "slack: app token opens Socket Mode"))
        except SlackApiError as exc:
            error = exc.response.get("error") or exc.response.status_code
            found.append(
                Finding(
                    False,
                    f"slack: Socket Mode refused the app token ({error})",
                    "check SLACK_APP_TOKEN (xapp-…, scope connections:write) and that Socket Mode is on",
                )
            )
    elif settings.slack_signing_secret is None:
        found.append(
            Finding(
                False,
                "slack: neither SLACK_APP_TOKEN (Socket Mode) nor SLACK_SIGNING_SECRET (HTTP mode) is set",
                "set one of them",
            )
        )
    return found
