"""REST routes outside channels: application commands, interaction callbacks, follow-up
webhooks, and the attachment file server (the CDN)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aiohttp import web

from .core import ApiError, form_error
from .records import CallbackRecord
from .rest_io import _snowflake, json_response, no_content, read_body

if TYPE_CHECKING:
    from .state import World


class HookRoutes:
    """Handlers of the routes that are not a channel's; mixed into :class:`~.rest.RestApi`."""

    world: World

    # ------------------------------------------------------------------ application commands

    def _guild_param(self, request: web.Request) -> int | None:
        if _snowflake(request, "application_id") != self.world.application_id:
            raise ApiError(403, 50001, "Missing Access")
        if "guild_id" not in request.match_info:
            return None
        guild_id = _snowflake(request, "guild_id")
        if guild_id not in self.world.guilds:
            raise ApiError(403, 50001, "Missing Access")
        return guild_id

    async def get_commands(self, request: web.Request) -> web.Response:
        return json_response(self.world.list_commands(self._guild_param(request)))

    async def put_commands(self, request: web.Request) -> web.Response:
        guild_id = self._guild_param(request)
        body, _ = await read_body(request)
        commands = body.get("_list")
        if not isinstance(commands, list):
            raise form_error((), "LIST_TYPE_CONVERT", "Must be an array.")
        return json_response(self.world.overwrite_commands(guild_id, commands))

    # ------------------------------------------------------------------ interactions and webhooks

    async def interaction_callback(self, request: web.Request) -> web.Response:
        body, files = await read_body(request)
        with_response = request.query.get("with_response", "").lower() in ("1", "true")
        result = self.world.interaction_callback(
            _snowflake(request, "interaction_id"), request.match_info["token"], body, files, with_response
        )
        return no_content() if result is None else json_response(result)

    def _interaction(self, request: web.Request) -> tuple[int, str]:
        return _snowflake(request, "application_id"), request.match_info["token"]

    async def webhook_execute(self, request: web.Request) -> web.Response:
        w = self.world
        rec = w.interaction_by_token(*self._interaction(request))
        body, files = await read_body(request)
        msg = w.webhook_execute(rec, body, files)
        if request.query.get("wait", "").lower() in ("1", "true"):
            return json_response(w.message_payload(msg))
        return no_content()

    async def webhook_get(self, request: web.Request) -> web.Response:
        w = self.world
        rec = w.interaction_by_token(*self._interaction(request))
        return json_response(w.message_payload(w.webhook_message(rec, request.match_info["message_id"])))

    async def webhook_patch(self, request: web.Request) -> web.Response:
        w = self.world
        rec = w.interaction_by_token(*self._interaction(request))
        msg = w.webhook_message(rec, request.match_info["message_id"])
        body, files = await read_body(request)
        w.webhook_edit(rec, msg, body, files)
        route = "edit_original" if request.match_info["message_id"] == "@original" else "edit"
        rec.responses.append(CallbackRecord(time.monotonic(), route, None, body))
        return json_response(w.message_payload(msg))

    async def webhook_delete(self, request: web.Request) -> web.Response:
        w = self.world
        rec = w.interaction_by_token(*self._interaction(request))
        msg = w.webhook_message(rec, request.match_info["message_id"])
        w.remove_message(msg)
        rec.responses.append(CallbackRecord(time.monotonic(), "delete", None, {}))
        return no_content()

    # ------------------------------------------------------------------ files

    async def get_attachment(self, request: web.Request) -> web.Response:
        w = self.world
        att_id = request.match_info["attachment_id"]
        att = w.attachments.get(int(att_id)) if att_id.isdigit() else None
        if att is None or att.filename != request.match_info["filename"]:
            return web.Response(status=404, text="Not Found")
        w.attachment_downloads[att.id] += 1
        return web.Response(
            body=att.data, headers={"Content-Type": att.content_type or "application/octet-stream"}
        )
