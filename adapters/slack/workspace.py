"""What every Slack listener shares: who the bot is, the Web API client, caches and background tasks.

Slack wants an answer to every event within 3 seconds, and a reply takes far longer, so listeners
acknowledge at once and hand the work to :meth:`Workspace.spawn`. The tasks are tracked so that
shutdown can wait for them, and a task that fails is logged rather than lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.directory import Directory
from adapters.slack.files import FileFetcher
from adapters.slack.surface import NativeStreaming, SlackBudgets, SlackSurface, StatusSwitch
from bot.access import admitted
from bot.context import AdapterContext, OrphanedReply
from bot.errors import UserFacingError
from bot.tasks import TaskSet

log = logging.getLogger("parley.slack")

# auth.test errors that mean the bot token itself is wrong.
_TOKEN_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "not_allowed_token_type",
    }
)


# Either lets assistant.threads.setStatus through (Slack's change of 2026-03: chat:write, and
# assistant:write for the time being).
STATUS_SCOPES = frozenset({"chat:write", "assistant:write"})


@dataclass(frozen=True, slots=True)
class Identity:
    team_id: str
    user_id: str  # the bot's user id: mentions look like <@user_id>
    bot_id: str
    scopes: frozenset[str]


@dataclass(slots=True)
class SlackStats:
    events: int = 0  # user messages considered
    answered: int = 0  # handed to the core and answered
    duplicates: int = 0  # deliveries the core (or the in-flight check) found already handled
    ignored: int = 0  # not for Parley: no mention, not followed, denied, other bots…


class Workspace:
    def __init__(
        self,
        ctx: AdapterContext,
        client: AsyncWebClient,
        *,
        budgets: SlackBudgets | None = None,
        stream_max_age: float | None = None,
    ) -> None:
        settings = ctx.settings
        self.ctx = ctx
        self.settings = settings
        self.client = client
        self.budgets = budgets or SlackBudgets()
        self.streaming = NativeStreaming(settings.parley_slack_native_streaming)
        if stream_max_age is not None:
            self.streaming.max_age = stream_max_age
        agent = settings.parley_slack.agent
        self.status = StatusSwitch(agent.status, tuple(agent.loading_messages))
        self.directory = Directory(client)
        assert settings.slack_bot_token is not None
        self.files = FileFetcher(
            settings.slack_bot_token.get_secret_value(),
            settings.slack_api_url,
            file_info=self._file_info,
            time_limit=settings.parley_file_timeout,
        )
        self.stats = SlackStats()
        self._identity: Identity | None = None
        self._identity_lock = asyncio.Lock()
        self.tasks = TaskSet(log)

    # -- identity -----------------------------------------------------------------------------

    async def identity(self) -> Identity:
        """Who the bot is (auth.test, once). Raises UserFacingError when Slack rejects the token."""
        if self._identity is not None:
            return self._identity
        async with self._identity_lock:
            if self._identity is None:
                self._identity = await self._auth_test()
                if self._identity.scopes and not self._identity.scopes & STATUS_SCOPES:
                    self.status.off = True  # setStatus takes chat:write (or, for now, assistant:write)
        return self._identity

    async def _auth_test(self) -> Identity:
        api = self.settings.slack_api_url
        try:
            response = await self.client.auth_test()
        except SlackApiError as exc:
            error = str(exc.response.get("error") or exc.response.status_code)
            if error in _TOKEN_ERRORS:
                raise UserFacingError(f"SLACK_BOT_TOKEN: Slack rejected the token ({error})") from None
            raise UserFacingError(f"Slack auth.test failed ({error}) at {api}") from None
        except (OSError, TimeoutError) as exc:
            raise UserFacingError(
                f"cannot reach Slack at {api} ({type(exc).__name__}): check SLACK_API_URL"
            ) from None
        scopes = str((response.headers or {}).get("x-oauth-scopes", "") or "")
        return Identity(
            team_id=str(response["team_id"]),
            user_id=str(response["user_id"]),
            bot_id=str(response.get("bot_id") or ""),
            scopes=frozenset(s.strip() for s in scopes.split(",") if s.strip()),
        )

    # -- access -------------------------------------------------------------------------------

    def admits(self, *, user_id: str, channel: str, is_bot: bool = False) -> bool:
        return admitted(
            self.settings, user_id=user_id, channel_id=channel, is_dm=is_dm_channel(channel), is_bot=is_bot
        )

    # -- background work ------------------------------------------------------------------------

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        self.tasks.spawn(work, name)

    @property
    def busy(self) -> int:
        return self.tasks.busy

    async def wait_idle(self, within: float | None = None) -> None:
        await self.tasks.wait_idle(within)

    async def drain(self, deadline: float) -> None:
        """Let the tasks finish for ``deadline`` seconds, then cancel what is left."""
        await self.tasks.drain(deadline)

    async def aclose(self) -> None:
        await self.files.aclose()

    # -- helpers ------------------------------------------------------------------------------

    def surface(self, *, team_id: str, channel: str, thread_ts: str | None, user_id: str) -> SlackSurface:
        return SlackSurface(
            self.client,
            team_id=team_id,
            channel=channel,
            thread_ts=thread_ts,
            recipient_user_id=user_id,
            budgets=self.budgets,
            streaming=self.streaming,
            status=self.status,
            spawn=self.spawn,
            # Slack's own stop control on a native stream: same effect as our Stop button.
            on_user_stop=self.ctx.stop,
        )

    def surface_for(self, reply: OrphanedReply) -> SlackSurface | None:
        """A surface for a reply a crashed process left open (see ConversationService.recover)."""
        described = (reply.surface or {}).get("surface")
        info: Mapping[str, Any] = described if isinstance(described, Mapping) else {}
        channel = str(info.get("channel") or reply.key.channel)
        if not channel:
            return None
        thread_ts = info.get("thread_ts") if "thread_ts" in info else (reply.key.thread or None)
        return self.surface(
            team_id=str(info.get("team") or reply.key.workspace),
            channel=channel,
            thread_ts=str(thread_ts) if thread_ts else None,
            user_id=str(info.get("user") or ""),
        )

    async def _file_info(self, file_id: str) -> dict[str, Any]:
        response = await self.client.files_info(file=file_id)
        return dict(response["file"])


def is_dm_channel(channel: str) -> bool:
    """DM channel ids start with D (group DMs are mpim channels and need a mention, like channels)."""
    return channel.startswith("D")
