"""Reading the workspace: ``auth.test``, ``apps.connections.open``, ``conversations.*``,
``users.info``, ``files.info``, and ``reactions.add``.

Channel membership (``Channel.members``; None: everyone): ``conversations.members`` lists it,
``conversations.info`` says ``is_member`` for the bot, and reading a channel the bot is not in
answers ``not_in_channel``.

slack_sdk sends most of these as query parameters; history pages newest first, replies oldest
first, both with Slack's cursor pagination.
"""

from __future__ import annotations

import base64
from typing import Any

from .api_group import ApiGroup
from .model import Channel, Message
from .records import ApiError, Handler, Params, as_bool, require


class ReadApi(ApiGroup):
    def handlers(self) -> dict[str, Handler]:
        return {
            "auth.test": self.auth_test,
            "apps.connections.open": self.apps_connections_open,
            "conversations.replies": self.conversations_replies,
            "conversations.history": self.conversations_history,
            "conversations.info": self.conversations_info,
            "conversations.members": self.conversations_members,
            "users.info": self.users_info,
            "reactions.add": self.reactions_add,
            "files.info": self.files_info,
        }

    async def auth_test(self, params: Params) -> dict[str, Any]:
        ident = self.fs.identity
        return {
            "url": f"https://{ident.team_domain}.slack.com/",
            "team": "Fake Workspace",
            "user": ident.bot_name,
            "team_id": ident.team_id,
            "user_id": ident.bot_user_id,
            "bot_id": ident.bot_id,
            "is_enterprise_install": False,
        }

    async def apps_connections_open(self, params: Params) -> dict[str, Any]:
        return {"url": self.fs.issue_socket_url()}

    @staticmethod
    def _page(items: list[Message], params: Params, default_limit: int) -> tuple[list[Message], str]:
        try:
            limit = int(params.get("limit") or default_limit)
            offset = (
                int(base64.b64decode(str(params["cursor"])).decode().split(":")[1])
                if params.get("cursor")
                else 0
            )
        except (ValueError, IndexError) as exc:
            raise ApiError("invalid_cursor") from exc
        limit = max(1, min(limit, 1000))
        page = items[offset : offset + limit]
        more = offset + limit < len(items)
        cursor = base64.b64encode(f"offset:{offset + limit}".encode()).decode() if more else ""
        return page, cursor

    @staticmethod
    def _window(items: list[Message], params: Params) -> list[Message]:
        inclusive = as_bool(params.get("inclusive", False))
        oldest = float(params["oldest"]) if params.get("oldest") else None
        latest = float(params["latest"]) if params.get("latest") else None

        def keep(m: Message) -> bool:
            ts = float(m.ts)
            if oldest is not None and (ts < oldest or (ts == oldest and not inclusive)):
                return False
            return not (latest is not None and (ts > latest or (ts == latest and not inclusive)))

        return [m for m in items if keep(m)]

    async def conversations_replies(self, params: Params) -> dict[str, Any]:
        fs = self.fs
        channel = self.channel(params)
        ts = require(params, "ts")
        msg = fs.messages.get((channel.id, ts))
        if msg is None:
            raise ApiError("thread_not_found")
        parent_ts = msg.thread_ts if msg.is_reply and msg.thread_ts else msg.ts
        thread = [m for m in fs.thread_messages(channel.id, parent_ts) if not m.deleted]
        thread = self._window(thread, params)
        page, cursor = self._page(thread, params, 1000)
        return {
            "messages": [self.message_api(m) for m in page],
            "has_more": bool(cursor),
            "response_metadata": {"next_cursor": cursor},
        }

    def readable(self, params: Params) -> Channel:
        channel = self.channel(params)
        if not channel.is_dm and not channel.has_member(self.fs.identity.bot_user_id):
            raise ApiError("not_in_channel")
        return channel

    async def conversations_history(self, params: Params) -> dict[str, Any]:
        fs = self.fs
        channel = self.readable(params)
        top = [m for m in fs.channel_messages(channel.id) if not m.is_reply and not m.deleted]
        top = self._window(list(reversed(top)), params)  # newest first, like Slack
        page, cursor = self._page(top, params, 100)
        return {
            "messages": [self.message_api(m) for m in page],
            "has_more": bool(cursor),
            "pin_count": 0,
            "response_metadata": {"next_cursor": cursor},
        }

    async def conversations_info(self, params: Params) -> dict[str, Any]:
        return {"channel": self.channel(params).to_api(self.fs.identity.bot_user_id)}

    async def conversations_members(self, params: Params) -> dict[str, Any]:
        channel = self.channel(params)
        if channel.is_dm:
            members = sorted({channel.user or "", self.fs.identity.bot_user_id} - {""})
        elif channel.members is None:
            members = sorted(self.fs.users)
        else:
            members = sorted(channel.members)
        try:
            limit = max(1, min(int(params.get("limit") or 100), 1000))
            offset = int(base64.b64decode(str(params["cursor"])).decode()) if params.get("cursor") else 0
        except (ValueError, TypeError) as exc:
            raise ApiError("invalid_cursor") from exc
        more = offset + limit < len(members)
        cursor = base64.b64encode(str(offset + limit).encode()).decode() if more else ""
        return {"members": members[offset : offset + limit], "response_metadata": {"next_cursor": cursor}}

    async def users_info(self, params: Params) -> dict[str, Any]:
        user = self.fs.users.get(require(params, "user"))
        if user is None:
            raise ApiError("user_not_found")
        return {"user": user.to_api(self.fs.identity.team_id)}

    async def reactions_add(self, params: Params) -> dict[str, Any]:
        channel = self.channel(params)
        msg = self.message(channel, require(params, "timestamp"))
        name = require(params, "name").strip(":")
        users = msg.reactions.setdefault(name, [])
        if self.fs.identity.bot_user_id in users:
            raise ApiError("already_reacted")
        users.append(self.fs.identity.bot_user_id)
        return {}

    async def files_info(self, params: Params) -> dict[str, Any]:
        f = self.fs.files.get(require(params, "file"))
        if f is None:
            raise ApiError("file_not_found")
        return {
            "file": f.to_api(self.fs.identity.team_id),
            "comments": [],
            "response_metadata": {"next_cursor": ""},
        }
