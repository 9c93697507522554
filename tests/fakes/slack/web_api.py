"""Web API methods at ``/api/<method>``, parsed the way slack_sdk sends them.

slack_sdk sends some methods as JSON bodies (chat.postMessage, chat.update, chat.*Stream,
assistant.threads.setStatus) and others as query parameters of a POST or GET (auth.test,
apps.connections.open, chat.delete, reactions.add, conversations.*, users.info, files.info); form
bodies are accepted too. The token comes from ``Authorization: Bearer`` or a ``token`` parameter.
Errors are HTTP 200 with ``{"ok": false, "error": ...}``, except rate limits (HTTP 429 +
``Retry-After``) and unknown methods (HTTP 404), as on Slack.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .model import Channel, Message

if TYPE_CHECKING:
    from .server import FakeSlack

Params = dict[str, Any]
Handler = Callable[[Params], Awaitable[dict[str, Any]]]


class ApiError(Exception):
    def __init__(self, error: str, status: int = 200, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(error)
        self.error = error
        self.status = status
        self.headers = headers or {}
        self.extra = extra


@dataclass(frozen=True)
class ApiCall:
    """One Web API request as the fake saw it."""

    t: float
    method: str
    params: dict[str, Any]
    token_kind: str | None
    status: int
    response: dict[str, Any]

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        err = self.response.get("error")
        return str(err) if err is not None else None


_HISTORY_SCOPE = {
    "public": "channels:history",
    "private": "groups:history",
    "im": "im:history",
    "mpim": "mpim:history",
}
_READ_SCOPE = {"public": "channels:read", "private": "groups:read", "im": "im:read", "mpim": "mpim:read"}
_STATIC_SCOPE = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.delete": "chat:write",
    "chat.startStream": "chat:write",
    "chat.appendStream": "chat:write",
    "chat.stopStream": "chat:write",
    "users.info": "users:read",
    "files.info": "files:read",
    "reactions.add": "reactions:write",
    "assistant.threads.setStatus": "assistant:write",
}


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("1", "true", "yes")


def _json_field(params: Params, name: str, error: str) -> Any:
    value = params.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ApiError(error) from exc
    return value


def _require(params: Params, name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise ApiError(
            "invalid_arguments", response_metadata={"messages": [f"[ERROR] missing required field: {name}"]}
        )
    return str(value)


class WebApi:
    def __init__(self, fs: FakeSlack):
        self.fs = fs
        self.handlers: dict[str, Handler] = {
            "auth.test": self.auth_test,
            "apps.connections.open": self.apps_connections_open,
            "chat.postMessage": self.chat_post_message,
            "chat.update": self.chat_update,
            "chat.delete": self.chat_delete,
            "chat.startStream": self.chat_start_stream,
            "chat.appendStream": self.chat_append_stream,
            "chat.stopStream": self.chat_stop_stream,
            "conversations.replies": self.conversations_replies,
            "conversations.history": self.conversations_history,
            "conversations.info": self.conversations_info,
            "users.info": self.users_info,
            "assistant.threads.setStatus": self.assistant_set_status,
            "reactions.add": self.reactions_add,
            "files.info": self.files_info,
        }

    # ------------------------------------------------------------------ plumbing

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        fs = self.fs
        params: Params = dict(request.query)
        token_kind: str | None = None
        status, headers = 200, {}
        try:
            params.update(await self._body(request))
            token = params.pop("token", None)
            auth = request.headers.get("Authorization", "")
            if auth.startswith("Bearer "):
                token = auth[len("Bearer ") :].strip()
            handler = self.handlers.get(method)
            if handler is None:
                raise ApiError("unknown_method", status=404)
            token_kind = self._auth(method, token)
            if token_kind == "bot":
                headers["x-oauth-scopes"] = ",".join(sorted(fs.scopes))
                headers["x-accepted-oauth-scopes"] = self._scope_for(method, params) or ""
                self._check_scope(method, params)
            self._check_faults(method, params)
            self._check_rate(method, params)
            body = await handler(params)
            body = {"ok": True, **body}
        except ApiError as exc:
            status = exc.status
            headers.update(exc.headers)
            body = {"ok": False, "error": exc.error, **exc.extra}
        fs.calls.append(ApiCall(fs.now(), method, params, token_kind, status, body))
        return web.json_response(body, status=status, headers=headers)

    @staticmethod
    async def _body(request: web.Request) -> Params:
        if not request.can_read_body:
            return {}
        if request.content_type == "application/json":
            try:
                data = await request.json()
            except ValueError as exc:
                raise ApiError("invalid_json") from exc
            if not isinstance(data, dict):
                raise ApiError("invalid_json")
            return data
        if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            return {k: v for k, v in form.items() if isinstance(v, str)}
        return {}

    def _auth(self, method: str, token: str | None) -> str:
        fs = self.fs
        if not token:
            raise ApiError("not_authed")
        if token == fs.app_token:
            if method != "apps.connections.open":
                raise ApiError("not_allowed_token_type")
            return "app"
        if token != fs.bot_token:
            raise ApiError("invalid_auth")
        if fs.auth_error:
            raise ApiError(fs.auth_error)
        if method == "apps.connections.open":
            raise ApiError("not_allowed_token_type")
        return "bot"

    def _scope_for(self, method: str, params: Params) -> str | None:
        if method in _STATIC_SCOPE:
            return _STATIC_SCOPE[method]
        channel = self.fs.channels.get(str(params.get("channel", "")))
        kind = channel.kind if channel else "public"
        if method in ("conversations.replies", "conversations.history"):
            return _HISTORY_SCOPE[kind]
        if method == "conversations.info":
            return _READ_SCOPE[kind]
        return None

    def _check_scope(self, method: str, params: Params) -> None:
        needed = self._scope_for(method, params)
        if needed and needed not in self.fs.scopes:
            raise ApiError("missing_scope", needed=needed, provided=",".join(sorted(self.fs.scopes)))

    def _check_faults(self, method: str, params: Params) -> None:
        for fault in self.fs.faults:
            if fault.applies(method, params):
                fault.hits += 1
                headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
                raise ApiError(fault.error, status=fault.status, headers=headers)

    def _check_rate(self, method: str, params: Params) -> None:
        fs = self.fs
        limits = fs.limits
        budget = limits.budgets.get(method)
        if not limits.enabled or budget is None:
            return
        key = str(params.get("channel", "")) if method in limits.per_channel else fs.identity.team_id
        retry_after = fs.limiter.check(method, key, budget, fs.now())
        if retry_after is not None:
            fs.rate_limited_count[method] += 1
            raise ApiError("ratelimited", status=429, headers={"Retry-After": str(retry_after)})

    def _channel(self, params: Params, name: str = "channel") -> Channel:
        channel_id = _require(params, name)
        channel = self.fs.channels.get(channel_id)
        if channel is None:
            raise ApiError("channel_not_found")
        return channel

    def _message(self, channel: Channel, ts: str, error: str = "message_not_found") -> Message:
        msg = self.fs.messages.get((channel.id, ts))
        if msg is None or msg.deleted:
            raise ApiError(error)
        return msg

    def _message_api(self, msg: Message) -> dict[str, Any]:
        replies = self.fs.replies_of(msg) if not msg.is_reply else None
        return msg.to_api(self.fs.identity.team_id, replies)

    # ------------------------------------------------------------------ content checks

    def _check_blocks(self, blocks: Any) -> list[dict[str, Any]] | None:
        if blocks is None:
            return None
        if not isinstance(blocks, list) or not all(isinstance(b, dict) and "type" in b for b in blocks):
            raise ApiError("invalid_blocks_format")
        lim = self.fs.message_limits
        errors: list[str] = []
        if len(blocks) > lim.max_blocks:
            errors.append(f"must be less than {lim.max_blocks + 1} items [json-pointer:/blocks]")
        md_total = 0
        for i, block in enumerate(blocks):
            if block["type"] == "section":
                text = block.get("text")
                if isinstance(text, dict) and len(str(text.get("text", ""))) > lim.section_text_max:
                    errors.append(
                        f"must be less than {lim.section_text_max + 1} characters "
                        f"[json-pointer:/blocks/{i}/text/text]"
                    )
            elif block["type"] == "markdown":
                md_total += len(str(block.get("text", "")))
        if md_total > lim.markdown_block_max:
            errors.append(
                f"markdown blocks exceed {lim.markdown_block_max} characters [json-pointer:/blocks]"
            )
        if errors:
            raise ApiError(
                "invalid_blocks",
                errors=errors,
                response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
            )
        return blocks

    def _check_markdown(self, markdown_text: Any) -> str | None:
        if markdown_text is None:
            return None
        text = str(markdown_text)
        if len(text) > self.fs.message_limits.markdown_text_max:
            raise ApiError(self.fs.message_limits.markdown_too_long_error)
        return text

    def _content(
        self, params: Params, text_max: int
    ) -> tuple[str | None, list[dict[str, Any]] | None, str | None]:
        text = params.get("text")
        blocks = self._check_blocks(_json_field(params, "blocks", "invalid_blocks_format"))
        markdown_text = self._check_markdown(params.get("markdown_text"))
        if markdown_text is not None and (text is not None or blocks is not None):
            raise ApiError("markdown_text_conflict")
        if text is not None and len(str(text)) > text_max:
            raise ApiError("msg_too_long")
        if text in (None, "") and not blocks and not markdown_text and not params.get("attachments"):
            raise ApiError("no_text")
        return (str(text) if text is not None else None), blocks, markdown_text

    def _chunks(self, params: Params) -> tuple[str, list[dict[str, Any]]]:
        """Split streaming chunks into appended markdown and other chunk objects."""
        chunks = _json_field(params, "chunks", "invalid_chunks")
        markdown = ""
        others: list[dict[str, Any]] = []
        if chunks is None:
            return markdown, others
        if not isinstance(chunks, list):
            raise ApiError("invalid_chunks")
        for chunk in chunks:
            if not isinstance(chunk, dict) or "type" not in chunk:
                raise ApiError("invalid_chunks")
            if chunk["type"] == "markdown_text":
                markdown += str(chunk.get("text", ""))
            elif chunk["type"] in ("task_update", "plan_update", "blocks"):
                others.append(chunk)
            else:
                raise ApiError("invalid_chunks")
        self._check_markdown(markdown)
        return markdown, others

    # ------------------------------------------------------------------ methods

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

    async def chat_post_message(self, params: Params) -> dict[str, Any]:
        fs = self.fs
        channel = self._channel(params)
        text, blocks, markdown_text = self._content(params, fs.message_limits.post_text_max)
        thread_ts = params.get("thread_ts") or None
        if thread_ts:
            parent = fs.messages.get((channel.id, str(thread_ts)))
            if parent is not None and parent.is_reply:
                thread_ts = parent.thread_ts
        metadata = _json_field(params, "metadata", "invalid_metadata_format")
        msg = fs.store_message(
            channel.id,
            user=fs.identity.bot_user_id,
            text=text or "",
            blocks=blocks,
            markdown_text=markdown_text,
            thread_ts=str(thread_ts) if thread_ts else None,
            bot=True,
            event="post",
        )
        msg.metadata = metadata
        await fs.echo(msg)
        return {"channel": channel.id, "ts": msg.ts, "message": self._message_api(msg)}

    async def chat_update(self, params: Params) -> dict[str, Any]:
        fs = self.fs
        channel = self._channel(params)
        msg = self._message(channel, _require(params, "ts"))
        fs.expire_if_due(msg)
        if msg.user != fs.identity.bot_user_id:
            raise ApiError("cant_update_message")
        if msg.streaming == "streaming" and fs.streaming.update_conflict:
            raise ApiError("streaming_state_conflict")
        text, blocks, markdown_text = self._content(params, fs.message_limits.update_text_max)
        previous = msg.to_api(fs.identity.team_id)
        if markdown_text is not None:
            msg.markdown_text, msg.text, msg.blocks = markdown_text, "", None
        else:
            msg.markdown_text = None
            if text is not None:
                msg.text = text
                msg.blocks = blocks  # text without blocks removes the old blocks
            elif blocks is not None:
                msg.blocks = blocks
        msg.edited_ts = fs.new_ts()
        msg.snapshot("update", fs.now())
        await fs.echo(msg, previous)
        return {"channel": channel.id, "ts": msg.ts, "text": msg.text, "message": self._message_api(msg)}

    async def chat_delete(self, params: Params) -> dict[str, Any]:
        fs = self.fs
        channel = self._channel(params)
        msg = self._message(channel, _require(params, "ts"))
        if msg.user != fs.identity.bot_user_id:
            raise ApiError("cant_delete_message")
        msg.deleted = True
        msg.snapshot("delete", fs.now())
        return {"channel": channel.id, "ts": msg.ts}

    async def chat_start_stream(self, params: Params) -> dict[str, Any]:
        fs = self.fs
        cfg = fs.streaming
        channel = self._channel(params)
        thread_ts = _require(params, "thread_ts")
        if cfg.refuse:
            raise ApiError(cfg.refuse)
        if cfg.dm_only and not channel.is_dm:
            raise ApiError("channel_type_not_supported")
        if cfg.require_recipient_outside_dm and not channel.is_dm:
            if not params.get("recipient_team_id"):
                raise ApiError("missing_recipient_team_id")
            if not params.get("recipient_user_id"):
                raise ApiError("missing_recipient_user_id")
        markdown = self._check_markdown(params.get("markdown_text")) or ""
        chunk_text, others = self._chunks(params)
        msg = fs.store_message(
            channel.id,
            user=fs.identity.bot_user_id,
            text="",
            markdown_text=markdown + chunk_text,
            thread_ts=thread_ts,
            bot=True,
            event=None,
        )
        msg.chunks.extend(others)
        msg.streaming = "streaming"
        msg.stream_started_at = fs.now()
        msg.snapshot("start_stream", fs.now())
        return {"channel": channel.id, "ts": msg.ts}

    def _streaming_message(self, params: Params) -> tuple[Channel, Message]:
        channel = self._channel(params)
        msg = self._message(channel, _require(params, "ts"))
        self.fs.expire_if_due(msg)
        if msg.user != self.fs.identity.bot_user_id:
            raise ApiError("message_not_owned_by_app")
        if msg.streaming == "stopped_by_user":
            raise ApiError("stopped_by_user")
        if msg.streaming != "streaming":
            raise ApiError("message_not_in_streaming_state")
        return channel, msg

    async def chat_append_stream(self, params: Params) -> dict[str, Any]:
        channel, msg = self._streaming_message(params)
        markdown = self._check_markdown(params.get("markdown_text")) or ""
        chunk_text, others = self._chunks(params)
        if not markdown and not chunk_text and not others:
            raise ApiError("no_text")
        msg.markdown_text = (msg.markdown_text or "") + markdown + chunk_text
        msg.chunks.extend(others)
        msg.snapshot("append_stream", self.fs.now())
        return {"channel": channel.id, "ts": msg.ts}

    async def chat_stop_stream(self, params: Params) -> dict[str, Any]:
        channel, msg = self._streaming_message(params)
        markdown = self._check_markdown(params.get("markdown_text")) or ""
        chunk_text, others = self._chunks(params)
        blocks = self._check_blocks(_json_field(params, "blocks", "invalid_blocks_format"))
        msg.markdown_text = (msg.markdown_text or "") + markdown + chunk_text
        msg.chunks.extend(others)
        if blocks is not None:
            msg.blocks = blocks
        metadata = _json_field(params, "metadata", "invalid_metadata_format")
        if metadata is not None:
            msg.metadata = metadata
        msg.streaming = "stopped"
        msg.snapshot("stop_stream", self.fs.now())
        return {"channel": channel.id, "ts": msg.ts, "message": self._message_api(msg)}

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
        inclusive = _bool(params.get("inclusive", False))
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
        channel = self._channel(params)
        ts = _require(params, "ts")
        msg = fs.messages.get((channel.id, ts))
        if msg is None:
            raise ApiError("thread_not_found")
        parent_ts = msg.thread_ts if msg.is_reply and msg.thread_ts else msg.ts
        thread = [m for m in fs.thread_messages(channel.id, parent_ts) if not m.deleted]
        thread = self._window(thread, params)
        page, cursor = self._page(thread, params, 1000)
        return {
            "messages": [self._message_api(m) for m in page],
            "has_more": bool(cursor),
            "response_metadata": {"next_cursor": cursor},
        }

    async def conversations_history(self, params: Params) -> dict[str, Any]:
        fs = self.fs
        channel = self._channel(params)
        top = [m for m in fs.channel_messages(channel.id) if not m.is_reply and not m.deleted]
        top = self._window(list(reversed(top)), params)  # newest first, like Slack
        page, cursor = self._page(top, params, 100)
        return {
            "messages": [self._message_api(m) for m in page],
            "has_more": bool(cursor),
            "pin_count": 0,
            "response_metadata": {"next_cursor": cursor},
        }

    async def conversations_info(self, params: Params) -> dict[str, Any]:
        return {"channel": self._channel(params).to_api()}

    async def users_info(self, params: Params) -> dict[str, Any]:
        user = self.fs.users.get(_require(params, "user"))
        if user is None:
            raise ApiError("user_not_found")
        return {"user": user.to_api(self.fs.identity.team_id)}

    async def assistant_set_status(self, params: Params) -> dict[str, Any]:
        fs = self.fs
        channel = self._channel(params, "channel_id")
        thread_ts = _require(params, "thread_ts")
        if "status" not in params:
            raise ApiError("invalid_arguments")
        fs.status_log.append(
            StatusCall(
                t=fs.now(),
                channel=channel.id,
                thread_ts=thread_ts,
                status=str(params["status"]),
                loading_messages=_json_field(params, "loading_messages", "invalid_arguments"),
            )
        )
        return {}

    async def reactions_add(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params)
        msg = self._message(channel, _require(params, "timestamp"))
        name = _require(params, "name").strip(":")
        users = msg.reactions.setdefault(name, [])
        if self.fs.identity.bot_user_id in users:
            raise ApiError("already_reacted")
        users.append(self.fs.identity.bot_user_id)
        return {}

    async def files_info(self, params: Params) -> dict[str, Any]:
        f = self.fs.files.get(_require(params, "file"))
        if f is None:
            raise ApiError("file_not_found")
        return {
            "file": f.to_api(self.fs.identity.team_id),
            "comments": [],
            "response_metadata": {"next_cursor": ""},
        }


@dataclass(frozen=True)
class StatusCall:
    """One ``assistant.threads.setStatus`` call (an empty status clears the indicator)."""

    t: float
    channel: str
    thread_ts: str
    status: str
    loading_messages: Any
