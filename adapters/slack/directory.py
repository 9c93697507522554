"""Who a Slack user is (display name, bot, admin), from ``users.info`` with a bounded cache.

Every message names its author by id; looking each one up would spend a Web API call per
message (and a thread backfill names many), so answers are kept for an hour and concurrent
look-ups of one id share a single call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger("parley.slack")


@dataclass(frozen=True, slots=True)
class SlackUser:
    id: str
    name: str
    is_bot: bool = False
    is_admin: bool = False  # workspace admin or owner


class Directory:
    def __init__(self, client: AsyncWebClient, *, ttl: float = 3600.0, max_entries: int = 10_000) -> None:
        self._client = client
        self._ttl = ttl
        self._max = max_entries
        self._cache: OrderedDict[str, tuple[float, SlackUser]] = OrderedDict()
        self._pending: dict[str, asyncio.Task[SlackUser]] = {}

    async def user(self, user_id: str) -> SlackUser:
        """Never raises: an unknown or unreachable user is named by their id (and not cached)."""
        hit = self._cache.get(user_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        task = self._pending.get(user_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch(user_id))
            self._pending[user_id] = task
            task.add_done_callback(lambda _t: self._pending.pop(user_id, None))
        return await asyncio.shield(task)

    async def names(self, user_ids: Iterable[str]) -> dict[str, str]:
        ids = list(dict.fromkeys(user_ids))
        users = await asyncio.gather(*(self.user(u) for u in ids))
        return {u.id: u.name for u in users}

    async def _fetch(self, user_id: str) -> SlackUser:
        try:
            data = (await self._client.users_info(user=user_id))["user"]
        except Exception as exc:
            log.warning("users.info %s failed: %s", user_id, _short(exc))
            return SlackUser(user_id, user_id)
        profile = data.get("profile") or {}
        name = (
            profile.get("display_name")
            or profile.get("real_name")
            or data.get("real_name")
            or data.get("name")
            or user_id
        )
        user = SlackUser(
            user_id,
            str(name),
            is_bot=bool(data.get("is_bot")),
            is_admin=bool(data.get("is_admin") or data.get("is_owner") or data.get("is_primary_owner")),
        )
        self._cache[user_id] = (time.monotonic() + self._ttl, user)
        self._cache.move_to_end(user_id)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return user


def _short(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    error = response.get("error") if response is not None and hasattr(response, "get") else None
    return str(error or type(exc).__name__)
