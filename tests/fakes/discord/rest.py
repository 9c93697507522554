"""The fake REST API (``/api/v10``, also ``/api/v9``) and the attachment file server.

Every API response carries ``Via: 1.1 google`` (discord.py only honours a 429 that has one) and
JSON bodies with ``Content-Type: application/json`` exactly (no charset: discord.py compares the
header verbatim). Rate-limit headers are sent all together or not at all.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from .models import JSON, ChannelType, Perm
from .ratelimit import RateLimiter, retry_after_header
from .records import RateLimitHit, RequestRecord, TypingEvent
from .rest_hooks import HookRoutes
from .rest_io import VIA, RestFault, _snowflake, json_response, no_content, read_body
from .state import ApiError, form_error, unknown

__all__ = ["RestApi", "RestFault"]

if TYPE_CHECKING:
    from .state import World

Handler = Callable[[web.Request], Awaitable[web.Response]]

API_PREFIXES = ("/api/v10", "/api/v9")


class RestApi(HookRoutes):
    """Registers the REST routes on an aiohttp application."""

    _app: web.Application

    def __init__(self, world: World) -> None:
        self.world = world
        self.limiter = RateLimiter(world.limits)
        self.faults: list[RestFault] = []  # see FakeDiscord.fail

    # ------------------------------------------------------------------ plumbing

    def install(self, app: web.Application) -> None:
        self._app = app
        add = self._add
        add("GET", "/gateway", self.get_gateway, auth=False)
        add("GET", "/gateway/bot", self.get_gateway_bot)
        add("GET", "/users/@me", self.get_me)
        add("GET", "/users/@me/guilds", self.get_my_guilds)
        add("GET", "/users/{user_id}", self.get_user)
        add("POST", "/users/@me/channels", self.create_dm)
        add("GET", "/oauth2/applications/@me", self.get_application)
        add("GET", "/applications/@me", self.get_application)
        add("GET", "/channels/{channel_id}", self.get_channel)
        add("GET", "/channels/{channel_id}/messages", self.get_messages)
        add("POST", "/channels/{channel_id}/messages", self.post_message, bucket="message_create")
        add("GET", "/channels/{channel_id}/messages/{message_id}", self.get_message)
        add(
            "PATCH", "/channels/{channel_id}/messages/{message_id}", self.patch_message, bucket="message_edit"
        )
        add("DELETE", "/channels/{channel_id}/messages/{message_id}", self.delete_message)
        add("POST", "/channels/{channel_id}/typing", self.typing)
        add("POST", "/channels/{channel_id}/messages/{message_id}/threads", self.thread_from_message)
        add("POST", "/channels/{channel_id}/threads", self.thread_without_message)
        add("PUT", "/channels/{channel_id}/thread-members/@me", self.join_thread)
        add("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", self.add_reaction)
        add(
            "DELETE",
            "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
            self.remove_reaction,
        )
        add("GET", "/applications/{application_id}/commands", self.get_commands)
        add("PUT", "/applications/{application_id}/commands", self.put_commands)
        add("GET", "/applications/{application_id}/guilds/{guild_id}/commands", self.get_commands)
        add("PUT", "/applications/{application_id}/guilds/{guild_id}/commands", self.put_commands)
        add(
            "POST",
            "/interactions/{interaction_id}/{token}/callback",
            self.interaction_callback,
            auth=False,
            global_limit=False,
        )
        add(
            "POST",
            "/webhooks/{application_id}/{token}",
            self.webhook_execute,
            auth=False,
            global_limit=False,
            bucket="webhook_message",
        )
        for method, handler in (
            ("GET", self.webhook_get),
            ("PATCH", self.webhook_patch),
            ("DELETE", self.webhook_delete),
        ):
            add(
                method,
                "/webhooks/{application_id}/{token}/messages/{message_id}",
                handler,
                auth=False,
                global_limit=False,
                bucket="webhook_message" if method == "PATCH" else "other_routes",
            )
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self.get_attachment)
        app.middlewares.append(self._not_found_middleware)

    def _add(
        self,
        method: str,
        path: str,
        handler: Handler,
        *,
        auth: bool = True,
        global_limit: bool = True,
        bucket: str = "other_routes",
    ) -> None:
        route_key = f"{method} {path}"

        async def wrapped(request: web.Request) -> web.Response:
            return await self._handle(
                request, route_key, handler, auth=auth, global_limit=global_limit, bucket=bucket
            )

        for prefix in API_PREFIXES:
            self._app.router.add_route(method, prefix + path, wrapped)

    async def _handle(
        self,
        request: web.Request,
        route_key: str,
        handler: Handler,
        *,
        auth: bool,
        global_limit: bool,
        bucket: str,
    ) -> web.Response:
        w = self.world
        now = time.monotonic()
        headers: dict[str, str] = {"Via": VIA}
        response: web.Response
        if auth and request.headers.get("Authorization") != f"Bot {w.token}":
            response = json_response({"message": "401: Unauthorized", "code": 0}, 401, headers)
            return self._log(request, route_key, response)
        if global_limit and auth:
            wait = self.limiter.check_global(now)
            if wait is not None:
                return self._log(request, route_key, self._too_many(route_key, wait, is_global=True))
        major = "+".join(
            request.match_info[k]
            for k in ("channel_id", "guild_id", "application_id", "interaction_id", "token")
            if k in request.match_info
        )
        verdict = self.limiter.check(bucket, route_key, major, now)
        if verdict is not None:
            headers.update(verdict.headers)
            if not verdict.allowed:
                response = self._too_many(route_key, verdict.retry_after, is_global=False, headers=headers)
                return self._log(request, route_key, response)
        for fault in self.faults:
            if fault.applies(route_key, request):
                fault.hits += 1
                response = json_response(
                    {"message": f"{fault.status}: Server Error", "code": 0}, fault.status
                )
                return self._log(request, route_key, response)
        try:
            response = await handler(request)
        except ApiError as exc:
            response = json_response(exc.body(), exc.status)
        except Exception as exc:  # a bug in the fake: fail the caller at once, loudly (not a retried 500)
            w.server_errors.append(f"{route_key}: {traceback.format_exc()}")
            response = json_response({"message": f"FakeDiscord internal error: {exc!r}", "code": -1}, 400)
        response.headers.update(headers)
        return self._log(request, route_key, response)

    def _too_many(
        self, route_key: str, retry_after: float, *, is_global: bool, headers: dict[str, str] | None = None
    ) -> web.Response:
        w = self.world
        retry_after = round(retry_after, 3)
        scope = "global" if is_global else "user"
        hdrs = dict(headers or {"Via": VIA})
        hdrs["Via"] = VIA
        hdrs["Retry-After"] = retry_after_header(retry_after)
        hdrs["X-RateLimit-Scope"] = scope
        if is_global:
            hdrs["X-RateLimit-Global"] = "true"
        key = "global" if is_global else route_key
        w.rate_limited[key] += 1
        w.rate_limit_log.append(RateLimitHit(time.monotonic(), key, scope, retry_after))
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": is_global}
        if is_global:
            body["code"] = 0
        return json_response(body, 429, hdrs)

    def _log(self, request: web.Request, route_key: str, response: web.Response) -> web.Response:
        w = self.world
        if response.status in (401, 403, 429):
            w.invalid_request_count += 1
        w.requests.append(
            RequestRecord(time.monotonic(), request.method, request.path, route_key, response.status)
        )
        w._notify()
        return response

    @web.middleware
    async def _not_found_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPNotFound:
            if request.path.startswith("/api/"):
                return json_response({"message": "404: Not Found", "code": 0}, 404, {"Via": VIA})
            raise
        except web.HTTPMethodNotAllowed:
            return json_response({"message": "405: Method Not Allowed", "code": 0}, 405, {"Via": VIA})

    # ------------------------------------------------------------------ users, app, gateway

    async def get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.world.gateway_url})

    async def get_gateway_bot(self, request: web.Request) -> web.Response:
        w = self.world
        return json_response(
            {
                "url": w.gateway_url,
                "shards": w.shards,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 86_400_000,
                    "max_concurrency": 1,
                },
            }
        )

    async def get_me(self, request: web.Request) -> web.Response:
        w = self.world
        return json_response(
            {
                **w.bot.payload(),
                "verified": True,
                "mfa_enabled": False,
                "locale": "en-US",
                "email": None,
                "premium_type": 0,
                "bio": "",
            }
        )

    async def get_my_guilds(self, request: web.Request) -> web.Response:
        """The bot's servers, each with its server-level permissions (roles, no channel overwrites)."""
        w = self.world
        listed = []
        for guild in w.guilds.values():
            member = guild.members.get(w.bot.id)
            if member is None:
                continue
            perms = guild.everyone.permissions
            for role_id in member.role_ids:
                role = guild.roles.get(role_id)
                perms |= role.permissions if role is not None else 0
            if guild.owner_id == w.bot.id or perms & Perm.ADMINISTRATOR:
                perms = Perm.ALL
            listed.append(
                {
                    "id": str(guild.id),
                    "name": guild.name,
                    "icon": None,
                    "owner": guild.owner_id == w.bot.id,
                    "permissions": str(perms),
                    "features": [],
                }
            )
        return json_response(listed)

    async def get_user(self, request: web.Request) -> web.Response:
        user = self.world.users.get(_snowflake(request, "user_id"))
        if user is None:
            raise unknown("User", 10013)
        return json_response(user.payload())

    async def create_dm(self, request: web.Request) -> web.Response:
        body, _ = await read_body(request)
        user = self.world.users.get(int(body.get("recipient_id") or 0))
        if user is None:
            raise form_error(("recipient_id",), "NUMBER_TYPE_COERCE", "Value is not snowflake.")
        return json_response(self.world.create_dm(user).payload())

    async def get_application(self, request: web.Request) -> web.Response:
        return json_response(self.world.application_payload())

    # ------------------------------------------------------------------ channels and messages

    async def get_channel(self, request: web.Request) -> web.Response:
        w = self.world
        channel = w.channel(_snowflake(request, "channel_id"))
        if not channel.is_dm and not w.permissions_for(w.bot.id, channel) & Perm.VIEW_CHANNEL:
            raise ApiError(403, 50001, "Missing Access")
        return json_response(channel.payload(bot_id=w.bot.id))

    async def get_messages(self, request: web.Request) -> web.Response:
        w = self.world
        channel = w.channel(_snowflake(request, "channel_id"))
        w.require(channel, Perm.READ_MESSAGE_HISTORY)
        try:
            limit = int(request.query.get("limit", "50"))
        except ValueError as exc:
            raise form_error(("limit",), "NUMBER_TYPE_COERCE", "Value is not int.") from exc
        if not 1 <= limit <= 100:
            raise form_error(("limit",), "NUMBER_TYPE_MAX", "int value should be between 1 and 100.")
        msgs = [m for m in w.channel_messages(channel) if not m.ephemeral]
        if "before" in request.query:
            before = int(request.query["before"])
            msgs = [m for m in msgs if m.id < before][-limit:]
        elif "after" in request.query:
            after = int(request.query["after"])
            msgs = [m for m in msgs if m.id > after][:limit]
        elif "around" in request.query:
            around = int(request.query["around"])
            older = [m for m in msgs if m.id <= around][-((limit + 1) // 2) :]
            newer = [m for m in msgs if m.id > around][: limit - len(older)]
            msgs = older + newer
        else:
            msgs = msgs[-limit:]
        return json_response([w.message_payload(m) for m in reversed(msgs)])

    async def get_message(self, request: web.Request) -> web.Response:
        w = self.world
        channel = w.channel(_snowflake(request, "channel_id"))
        w.require(channel, Perm.READ_MESSAGE_HISTORY)
        return json_response(w.message_payload(w.message(channel.id, _snowflake(request, "message_id"))))

    async def post_message(self, request: web.Request) -> web.Response:
        w = self.world
        channel = w.channel(_snowflake(request, "channel_id"))
        body, files = await read_body(request)
        needed = Perm.SEND_MESSAGES_IN_THREADS if channel.is_thread else Perm.SEND_MESSAGES
        if files:
            needed |= Perm.ATTACH_FILES
        w.require(channel, needed)
        if channel.is_thread and channel.locked:
            raise ApiError(403, 50083, "Thread is archived")
        channel.archived = False
        msg = w.store_message(channel, w.bot, body, files)
        return json_response(w.message_payload(msg))

    async def patch_message(self, request: web.Request) -> web.Response:
        w = self.world
        channel = w.channel(_snowflake(request, "channel_id"))
        msg = w.message(channel.id, _snowflake(request, "message_id"))
        body, files = await read_body(request)
        if msg.author.id != w.bot.id or msg.webhook_id is not None:
            editable = set(body) <= {"flags"}
            if not editable:
                raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        w.update_message(msg, body, files)
        return json_response(w.message_payload(msg))

    async def delete_message(self, request: web.Request) -> web.Response:
        w = self.world
        channel = w.channel(_snowflake(request, "channel_id"))
        msg = w.message(channel.id, _snowflake(request, "message_id"))
        if msg.author.id != w.bot.id:
            w.require(channel, Perm.MANAGE_MESSAGES)
        w.remove_message(msg)
        return no_content()

    async def typing(self, request: web.Request) -> web.Response:
        w = self.world
        channel = w.channel(_snowflake(request, "channel_id"))
        w.require(channel, Perm.SEND_MESSAGES_IN_THREADS if channel.is_thread else Perm.SEND_MESSAGES)
        w.typing_log.append(TypingEvent(time.monotonic(), channel.id, w.bot.id))
        return no_content()

    async def thread_from_message(self, request: web.Request) -> web.Response:
        w = self.world
        channel = w.channel(_snowflake(request, "channel_id"))
        msg = w.message(channel.id, _snowflake(request, "message_id"))
        body, _ = await read_body(request)
        if channel.is_thread or channel.is_dm:
            raise ApiError(400, 50024, "Cannot execute action on this channel type")
        w.require(channel, Perm.CREATE_PUBLIC_THREADS)
        name = self._thread_name(body)
        thread = w.create_thread(
            channel,
            name,
            owner=w.bot,
            message=msg,
            auto_archive_duration=int(body.get("auto_archive_duration") or 1440),
        )
        return json_response(thread.payload(bot_id=w.bot.id), 201)

    async def thread_without_message(self, request: web.Request) -> web.Response:
        w = self.world
        channel = w.channel(_snowflake(request, "channel_id"))
        body, _ = await read_body(request)
        if channel.is_thread or channel.is_dm:
            raise ApiError(400, 50024, "Cannot execute action on this channel type")
        kind = int(body.get("type") or ChannelType.PRIVATE_THREAD)
        w.require(
            channel,
            Perm.CREATE_PRIVATE_THREADS if kind == ChannelType.PRIVATE_THREAD else Perm.CREATE_PUBLIC_THREADS,
        )
        thread = w.create_thread(
            channel,
            self._thread_name(body),
            owner=w.bot,
            type=kind,
            auto_archive_duration=int(body.get("auto_archive_duration") or 1440),
        )
        return json_response(thread.payload(bot_id=w.bot.id), 201)

    @staticmethod
    def _thread_name(body: JSON) -> str:
        name = str(body.get("name") or "")
        if not 1 <= len(name) <= 100:
            raise form_error(("name",), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        return name

    async def join_thread(self, request: web.Request) -> web.Response:
        w = self.world
        thread = w.channel(_snowflake(request, "channel_id"))
        if not thread.is_thread:
            raise ApiError(400, 50024, "Cannot execute action on this channel type")
        thread.thread_member_ids.add(w.bot.id)
        return no_content()

    async def add_reaction(self, request: web.Request) -> web.Response:
        w = self.world
        channel = w.channel(_snowflake(request, "channel_id"))
        msg = w.message(channel.id, _snowflake(request, "message_id"))
        w.require(channel, Perm.ADD_REACTIONS | Perm.READ_MESSAGE_HISTORY)
        msg.reactions.setdefault(request.match_info["emoji"], set()).add(w.bot.id)
        w._notify()
        return no_content()

    async def remove_reaction(self, request: web.Request) -> web.Response:
        w = self.world
        channel = w.channel(_snowflake(request, "channel_id"))
        msg = w.message(channel.id, _snowflake(request, "message_id"))
        msg.reactions.get(request.match_info["emoji"], set()).discard(w.bot.id)
        w._notify()
        return no_content()
