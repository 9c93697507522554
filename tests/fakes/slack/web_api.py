"""Web API methods at ``/api/<method>``, parsed the way slack_sdk sends them.

slack_sdk sends some methods as JSON bodies (chat.postMessage, chat.update, chat.*Stream,
assistant.threads.*) and others as query parameters of a POST or GET (auth.test,
apps.connections.open, chat.delete, reactions.add, conversations.*, users.info, files.info,
files.getUploadURLExternal) or form fields (files.completeUploadExternal, views.open); all are
accepted. The token comes from ``Authorization: Bearer`` or a ``token`` parameter. Errors are HTTP
200 with ``{"ok": false, "error": ...}``, except rate limits (HTTP 429 + ``Retry-After``) and
unknown methods (HTTP 404), as on Slack.

The methods live in groups by family (``chat_api``, ``read_api``, ``agent_api``, ``files_api``,
``views``); this module is what every call goes through first: the token, the scope, scripted
faults, the rate budgets, and the record in ``fs.calls``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .agent_api import AgentApi
from .chat_api import ChatApi
from .files_api import FilesApi
from .read_api import ReadApi
from .records import ApiCall, ApiError, Handler, Params
from .views import ViewsApi

if TYPE_CHECKING:
    from .server import FakeSlack

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
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
    "reactions.add": "reactions:write",
    "assistant.threads.setStatus": "chat:write",
    "assistant.threads.setTitle": "assistant:write",
    "assistant.threads.setSuggestedPrompts": "assistant:write",
}
#: Methods that accept any one of several scopes. Slack's changelog of 2026-03-05: setStatus
#: "now accepts either the assistant:write or chat:write scope" (chat:write alone, later).
_ALSO_ACCEPTED = {"assistant.threads.setStatus": ("assistant:write",)}


class WebApi:
    def __init__(self, fs: FakeSlack):
        self.fs = fs
        self.handlers: dict[str, Handler] = {}
        for group in (ReadApi(fs), ChatApi(fs), AgentApi(fs), FilesApi(fs), ViewsApi(fs)):
            self.handlers.update(group.handlers())

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
        if method in ("conversations.info", "conversations.members"):
            return _READ_SCOPE[kind]
        return None

    def _check_scope(self, method: str, params: Params) -> None:
        needed = self._scope_for(method, params)
        if not needed:
            return
        accepted = (needed, *_ALSO_ACCEPTED.get(method, ()))
        if not any(scope in self.fs.scopes for scope in accepted):
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
        key = limits.key(method, params, fs.identity.team_id)
        retry_after = fs.limiter.check(method, key, budget, fs.now())
        if retry_after is not None:
            fs.rate_limited_count[method] += 1
            raise ApiError("ratelimited", status=429, headers={"Retry-After": str(retry_after)})


__all__ = ["ApiCall", "ApiError", "WebApi"]
