"""Interactions: INTERACTION_CREATE, the callback endpoint (types 1, 4–9) with the 3-second rule,
and the follow-up webhook (the token lasts 15 minutes)."""

from __future__ import annotations

import secrets
import time

from .builders import Builders
from .core import ApiError, form_error, unknown
from .models import (
    JSON,
    CallbackType,
    Channel,
    InteractionType,
    MessageFlag,
    MessageType,
    User,
)
from .records import (
    CallbackRecord,
    InteractionRecord,
    StoredMessage,
)


class Interactions(Builders):
    """Interactions the users start and the bot's answers to them."""

    def member_payload_with_permissions(self, user: User, channel: Channel) -> JSON:
        guild = self.guilds[channel.guild_id or 0]
        member = guild.members.get(user.id) or self.add_member(guild, user)
        return {**member.payload(), "permissions": str(self.permissions_for(user.id, channel))}

    def start_interaction(
        self, type: int, data: JSON, user: User, channel: Channel, source: StoredMessage | None = None
    ) -> InteractionRecord:
        """Create an interaction and dispatch INTERACTION_CREATE (delivered whatever the intents)."""
        rec = InteractionRecord(
            self.ids.next(),
            f"aW50ZXJhY3Rpb246{secrets.token_urlsafe(48)}",
            type,
            data,
            user,
            channel.id,
            channel.guild_id,
            source_message_id=source.id if source else None,
        )
        payload: JSON = {
            "id": str(rec.id),
            "application_id": str(self.application_id),
            "type": type,
            "data": data,
            "channel_id": str(channel.id),
            "channel": channel.payload(bot_id=self.bot.id),
            "token": rec.token,
            "version": 1,
            "app_permissions": str(self.permissions_for(self.bot.id, channel)),
            "locale": "en-US",
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": self.limits.upload_bytes,
        }
        if channel.guild_id is not None:
            payload.update(
                guild_id=str(channel.guild_id),
                guild={"id": str(channel.guild_id), "locale": "en-US", "features": []},
                guild_locale="en-US",
                member=self.member_payload_with_permissions(user, channel),
                authorizing_integration_owners={"0": str(channel.guild_id)},
                context=0,
            )
        else:
            payload.update(user=user.payload(), authorizing_integration_owners={"0": "0"}, context=1)
        if source is not None:
            payload["message"] = self.message_payload(source)
        rec.payload = payload
        self.interactions[rec.id] = rec
        self._interactions_by_token[rec.token] = rec
        self.emit("INTERACTION_CREATE", payload, guild_id=channel.guild_id, intent=0)
        return rec

    def _interaction_metadata(self, rec: InteractionRecord) -> JSON:
        meta: JSON = {
            "id": str(rec.id),
            "type": rec.type,
            "user": rec.user.payload(),
            "authorizing_integration_owners": rec.payload.get("authorizing_integration_owners", {}),
        }
        if rec.type == InteractionType.APPLICATION_COMMAND:
            meta.update(name=rec.data.get("name", ""), command_type=rec.data.get("type", 1))
        if rec.source_message_id is not None:
            meta["interacted_message_id"] = str(rec.source_message_id)
        return meta

    def interaction_callback(
        self,
        interaction_id: int,
        token: str,
        body: JSON,
        files: dict[int, tuple[str, bytes, str | None]],
        with_response: bool,
    ) -> JSON | None:
        rec = self.interactions.get(interaction_id)
        if rec is None or rec.token != token:
            raise unknown("interaction", 10062)
        if rec.acked:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        if time.monotonic() - rec.created_t > self.limits.interaction_ack_seconds:
            raise unknown("interaction", 10062)
        ctype = int(body.get("type", 0))
        data = body.get("data") or {}
        channel = self.channels[rec.channel_id]
        message: StoredMessage | None = None
        if ctype in (CallbackType.CHANNEL_MESSAGE, CallbackType.DEFERRED_CHANNEL_MESSAGE):
            if ctype == CallbackType.DEFERRED_CHANNEL_MESSAGE:
                data = {
                    "flags": (int(data.get("flags") or 0) & MessageFlag.EPHEMERAL) | MessageFlag.LOADING,
                    "content": "",
                }
            message = self._interaction_message(
                rec, channel, data, files, MessageType.CHAT_INPUT_COMMAND if rec.type == 2 else 0
            )
            rec.original_message_id = message.id
        elif ctype in (CallbackType.DEFERRED_UPDATE_MESSAGE, CallbackType.UPDATE_MESSAGE):
            if rec.source_message_id is None:
                raise form_error(
                    ("type",), "INTERACTION_RESPONSE_TYPE_INVALID", "Invalid interaction response type"
                )
            rec.original_message_id = rec.source_message_id
            if ctype == CallbackType.UPDATE_MESSAGE:
                message = self.update_message(self.messages[rec.source_message_id], data, files)
        elif ctype == CallbackType.AUTOCOMPLETE_RESULT:
            if rec.type != InteractionType.AUTOCOMPLETE:
                raise form_error(
                    ("type",), "INTERACTION_RESPONSE_TYPE_INVALID", "Invalid interaction response type"
                )
        elif ctype not in (CallbackType.PONG, CallbackType.MODAL):
            raise form_error(("type",), "BASE_TYPE_CHOICES", "Value must be one of {1, 4, 5, 6, 7, 8, 9}.")
        rec.responses.append(CallbackRecord(time.monotonic(), "callback", ctype, body))
        self._notify()
        if not with_response:
            return None
        info: JSON = {"id": str(rec.id), "type": rec.type}
        resource: JSON = {"type": ctype}
        if message is not None:
            info.update(
                response_message_id=str(message.id),
                response_message_loading=bool(message.flags & MessageFlag.LOADING),
                response_message_ephemeral=message.ephemeral,
            )
            resource["message"] = self.message_payload(message)
        return {"interaction": info, "resource": resource}

    def _interaction_message(
        self,
        rec: InteractionRecord,
        channel: Channel,
        data: JSON,
        files: dict[int, tuple[str, bytes, str | None]],
        type: int,
    ) -> StoredMessage:
        body = dict(data)
        if body.get("flags") and int(body["flags"]) & MessageFlag.LOADING:
            # a "thinking" placeholder has no content yet; skip the empty-message rule
            msg = StoredMessage(
                self.ids.next(),
                channel.id,
                channel.guild_id,
                self.bot,
                type=type,
                flags=int(body["flags"]),
                webhook_id=self.application_id,
                application_id=self.application_id,
                interaction_metadata=self._interaction_metadata(rec),
            )
            msg.snapshot("create")
            self.messages[msg.id] = msg
            if not msg.ephemeral:
                channel.last_message_id = msg.id
                self._dispatch_message("MESSAGE_CREATE", msg)
            return msg
        return self.store_message(
            channel,
            self.bot,
            body,
            files,
            type=type,
            webhook_id=self.application_id,
            interaction_metadata=self._interaction_metadata(rec),
        )

    def interaction_by_token(self, application_id: int, token: str) -> InteractionRecord:
        rec = self._interactions_by_token.get(token)
        if rec is None or application_id != self.application_id:
            raise unknown("Webhook", 10015)
        if time.monotonic() - rec.created_t > self.limits.interaction_token_seconds:
            raise ApiError(401, 50027, "Invalid Webhook Token")
        return rec

    def webhook_message(self, rec: InteractionRecord, message_ref: str) -> StoredMessage:
        if message_ref == "@original":
            if rec.original_message_id is None:
                raise unknown("Webhook", 10015)
            mid = rec.original_message_id
        else:
            mid = int(message_ref)
            if mid != rec.original_message_id and mid not in rec.followup_message_ids:
                raise unknown("Message", 10008)
        msg = self.messages.get(mid)
        if msg is None or msg.deleted:
            raise unknown("Message", 10008)
        return msg

    def webhook_execute(
        self, rec: InteractionRecord, body: JSON, files: dict[int, tuple[str, bytes, str | None]]
    ) -> StoredMessage:
        """A follow-up. After a "thinking" defer, the first one fills the placeholder (as on Discord)."""
        if not rec.acked:
            raise unknown("Webhook", 10015)
        original = self.messages.get(rec.original_message_id or 0)
        if original is not None and original.flags & MessageFlag.LOADING and not original.deleted:
            msg = self.webhook_edit(rec, original, body, files)
        else:
            channel = self.channels[rec.channel_id]
            msg = self.store_message(
                channel,
                self.bot,
                body,
                files,
                webhook_id=self.application_id,
                interaction_metadata=self._interaction_metadata(rec),
            )
            rec.followup_message_ids.append(msg.id)
        rec.responses.append(CallbackRecord(time.monotonic(), "followup", None, body))
        return msg

    def webhook_edit(
        self,
        rec: InteractionRecord,
        msg: StoredMessage,
        body: JSON,
        files: dict[int, tuple[str, bytes, str | None]],
    ) -> StoredMessage:
        was_loading = bool(msg.flags & MessageFlag.LOADING)
        if was_loading:
            msg.flags &= ~MessageFlag.LOADING
        try:
            self.update_message(msg, body, files)
        except ApiError:
            if was_loading:
                msg.flags |= MessageFlag.LOADING
            raise
        return msg
