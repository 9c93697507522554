"""Messages: Discord's checks on a body (lengths, embeds, components, voice messages), mentions,
attachments from multipart uploads, and storing, editing and deleting with their gateway events."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from .core import ROLE_MENTION, USER_MENTION, ApiError, form_error
from .models import (
    JSON,
    AttachmentFlag,
    Channel,
    Intent,
    MessageFlag,
    MessageType,
    User,
    iso,
)
from .payloads import Payloads
from .records import (
    StoredAttachment,
    StoredMessage,
)


class Messages(Payloads):
    """Creating, editing and deleting messages."""

    def _validate_body(self, body: JSON, *, path: tuple[str | int, ...] = ()) -> None:
        content = body.get("content")
        if content is not None and not isinstance(content, str):
            raise form_error(
                (*path, "content"), "STRING_TYPE_CONVERT", "Could not interpret value as string."
            )
        if content and len(content) > self.limits.content_chars:
            raise form_error(
                (*path, "content"),
                "BASE_TYPE_MAX_LENGTH",
                f"Must be {self.limits.content_chars} or fewer in length.",
            )
        embeds = body.get("embeds") or []
        if len(embeds) > 10:
            raise form_error((*path, "embeds"), "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        total = 0
        for i, embed in enumerate(embeds):
            description = embed.get("description") or ""
            if len(description) > self.limits.embed_description_chars:
                raise form_error(
                    (*path, "embeds", i, "description"),
                    "BASE_TYPE_MAX_LENGTH",
                    f"Must be {self.limits.embed_description_chars} or fewer in length.",
                )
            if len(embed.get("title") or "") > 256:
                raise form_error(
                    (*path, "embeds", i, "title"), "BASE_TYPE_MAX_LENGTH", "Must be 256 or fewer in length."
                )
            total += len(description) + len(embed.get("title") or "")
            total += sum(len(f.get("name", "")) + len(f.get("value", "")) for f in embed.get("fields") or [])
            total += len((embed.get("footer") or {}).get("text", "")) + len(
                (embed.get("author") or {}).get("name", "")
            )
        if total > self.limits.embeds_total_chars:
            raise form_error(
                (*path, "embeds"), "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
            )
        components = body.get("components") or []
        flags = int(body.get("flags") or 0)
        if not flags & MessageFlag.IS_COMPONENTS_V2:
            if len(components) > 5:
                raise form_error(
                    (*path, "components"), "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."
                )
            for r, row in enumerate(components):
                children = row.get("components") or []
                if row.get("type") != 1 or not 1 <= len(children) <= 5:
                    raise form_error(
                        (*path, "components", r),
                        "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                        "An action row must contain between 1 and 5 components",
                    )
                for c, child in enumerate(children):
                    if len(str(child.get("custom_id", ""))) > 100:
                        raise form_error(
                            (*path, "components", r, "components", c, "custom_id"),
                            "BASE_TYPE_MAX_LENGTH",
                            "Must be 100 or fewer in length.",
                        )
                    if len(str(child.get("label", ""))) > 80:
                        raise form_error(
                            (*path, "components", r, "components", c, "label"),
                            "BASE_TYPE_MAX_LENGTH",
                            "Must be 80 or fewer in length.",
                        )

    def _mentions(self, content: str, guild_id: int | None) -> tuple[list[int], list[int], bool]:
        users = [int(u) for u in USER_MENTION.findall(content) if int(u) in self.users]
        roles: list[int] = []
        if guild_id is not None:
            guild = self.guilds[guild_id]
            roles = [int(r) for r in ROLE_MENTION.findall(content) if int(r) in guild.roles]
        return (
            list(dict.fromkeys(users)),
            list(dict.fromkeys(roles)),
            ("@everyone" in content or "@here" in content),
        )

    def _new_attachment(
        self, channel_id: int, spec: JSON, file: tuple[str, bytes, str | None]
    ) -> StoredAttachment:
        name, data, ctype = file
        if len(data) > self.limits.upload_bytes:  # the limit applies to each file of a request
            raise ApiError(413, 40005, "Request entity too large")
        att = self.add_file(spec.get("filename") or name, data, ctype, channel_id=channel_id)
        att.description = spec.get("description")
        if spec.get("duration_secs") is not None and (ctype or "").startswith("audio/"):
            att.duration_secs = float(spec["duration_secs"])
        if spec.get("waveform") is not None and (ctype or "").startswith("audio/"):
            att.waveform = str(spec["waveform"])
        if spec.get("is_spoiler"):
            att.flags |= AttachmentFlag.IS_SPOILER
        return att

    def _attachments_from(
        self,
        channel_id: int,
        specs: list[JSON],
        files: dict[int, tuple[str, bytes, str | None]],
        keep: Iterable[StoredAttachment] = (),
        *,
        append_unlisted: bool = True,
    ) -> list[StoredAttachment]:
        """The attachments a message has after a create or edit.

        ``specs`` is the ``attachments`` array: an existing attachment's id keeps it (its
        ``description`` may change), a number ``n`` takes the upload ``files[n]``. Uploads the
        array does not name are appended on create; on an edit that sends the array they are
        dropped ("only files listed in the attachments parameter will be appended", API v10).
        """
        kept = {a.id: a for a in keep}
        result: list[StoredAttachment] = []
        for i, spec in enumerate(specs):
            raw = spec.get("id", i)
            index = int(raw) if isinstance(raw, int | str) and str(raw).isdigit() else -1
            if index in kept:
                if "description" in spec:
                    kept[index].description = spec["description"]
                result.append(kept[index])
            elif index in files:
                result.append(self._new_attachment(channel_id, spec, files.pop(index)))
            else:
                raise form_error(("attachments", i), "ATTACHMENT_NOT_FOUND", "Attachment data not found")
        if append_unlisted:
            result += [self._new_attachment(channel_id, {}, f) for _, f in sorted(files.items())]
        return result

    def _check_voice(self, flags: int, body: JSON, attachments: list[StoredAttachment]) -> None:
        """Discord's rules for a message with ``IS_VOICE_MESSAGE``: one audio attachment with its
        ``duration_secs`` and ``waveform``, and nothing else."""
        if not flags & MessageFlag.IS_VOICE_MESSAGE:
            return
        if any(body.get(k) for k in ("content", "embeds", "components", "sticker_ids", "poll")):
            raise ApiError(400, 50159, "Voice messages do not support additional content.")
        if len(attachments) != 1 or not (attachments[0].content_type or "").startswith("audio/"):
            raise ApiError(400, 50160, "Voice messages must have a single audio attachment.")
        if attachments[0].duration_secs is None or attachments[0].waveform is None:
            raise ApiError(400, 50161, "Voice messages must have supporting metadata.")

    def store_message(
        self,
        channel: Channel,
        author: User,
        body: JSON,
        files: dict[int, tuple[str, bytes, str | None]] | None = None,
        *,
        type: int | None = None,
        webhook_id: int | None = None,
        interaction_metadata: JSON | None = None,
        extra_mentions: Iterable[int] = (),
        mention_author: bool = True,
        ready_attachments: Sequence[StoredAttachment] = (),
    ) -> StoredMessage:
        """Validate and store a new message, then dispatch MESSAGE_CREATE (not for ephemeral ones)."""
        self._validate_body(body)
        files = dict(files or {})
        content = body.get("content") or ""
        if not (
            content
            or body.get("embeds")
            or body.get("components")
            or files
            or body.get("sticker_ids")
            or body.get("poll")
            or body.get("attachments")
        ):
            raise ApiError(400, 50006, "Cannot send an empty message")
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce"):
            for existing in self.messages.values():
                if (
                    existing.nonce == str(nonce)
                    and existing.author.id == author.id
                    and existing.channel_id == channel.id
                    and time.monotonic() - existing.created_t < 120
                ):
                    return existing
        reference = body.get("message_reference")
        ref_msg: StoredMessage | None = None
        if reference and reference.get("message_id"):
            ref_msg = self.messages.get(int(reference["message_id"]))
            if ref_msg is None or ref_msg.deleted:
                if reference.get("fail_if_not_exists", True):
                    raise form_error(
                        ("message_reference",), "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                    )
                reference = None
            else:
                reference = {"type": 0, "channel_id": str(ref_msg.channel_id), "message_id": str(ref_msg.id)}
                if ref_msg.guild_id is not None:
                    reference["guild_id"] = str(ref_msg.guild_id)
        else:
            reference = None
        guild_id = channel.guild_id
        user_ids, role_ids, everyone = self._mentions(content, guild_id)
        user_ids.extend(u for u in extra_mentions if u not in user_ids)
        allowed = body.get("allowed_mentions")
        replied_user = mention_author if allowed is None else bool(allowed.get("replied_user", False))
        if ref_msg is not None and replied_user and ref_msg.author.id not in user_ids:
            user_ids.append(ref_msg.author.id)
        msg = StoredMessage(
            id=self.ids.next(),
            channel_id=channel.id,
            guild_id=guild_id,
            author=author,
            content=content,
            type=type if type is not None else (MessageType.REPLY if reference else MessageType.DEFAULT),
            flags=int(body.get("flags") or 0),
            components=list(body.get("components") or []),
            embeds=list(body.get("embeds") or []),
            mention_ids=user_ids,
            mention_role_ids=role_ids,
            mention_everyone=everyone,
            reference=reference,
            allowed_mentions=allowed,
            nonce=str(nonce) if nonce is not None else None,
            webhook_id=webhook_id,
            application_id=self.application_id if webhook_id is not None else None,
            interaction_metadata=interaction_metadata,
        )
        if ready_attachments:
            msg.attachments = list(ready_attachments)
        else:
            msg.attachments = self._attachments_from(channel.id, list(body.get("attachments") or []), files)
        self._check_voice(msg.flags, body, msg.attachments)
        msg.snapshot("create")
        self.messages[msg.id] = msg
        if not msg.ephemeral:
            channel.last_message_id = msg.id
            if channel.is_thread:
                channel.message_count += 1
                channel.total_message_sent += 1
            self._dispatch_message("MESSAGE_CREATE", msg)
        self._notify()
        return msg

    def update_message(
        self, msg: StoredMessage, body: JSON, files: dict[int, tuple[str, bytes, str | None]] | None = None
    ) -> StoredMessage:
        """Apply a PATCH: present keys replace, then record the new state and dispatch MESSAGE_UPDATE."""
        if msg.flags & MessageFlag.IS_VOICE_MESSAGE:
            raise ApiError(400, 50162, "Voice messages cannot be edited.")
        self._validate_body(body)
        content = msg.content
        if "content" in body:
            content = body["content"] or ""
        embeds = list(body["embeds"] or []) if "embeds" in body else msg.embeds
        components = list(body["components"] or []) if "components" in body else msg.components
        files = dict(files or {})
        attachments = msg.attachments
        if "attachments" in body or files:
            listed = "attachments" in body
            specs = list(body.get("attachments") or []) if listed else [{"id": a.id} for a in msg.attachments]
            attachments = self._attachments_from(
                msg.channel_id, specs, files, keep=msg.attachments, append_unlisted=not listed
            )
        if not (content or embeds or components or attachments):
            raise ApiError(400, 50006, "Cannot send an empty message")
        msg.content = content
        msg.embeds = embeds
        msg.components = components
        msg.attachments = attachments
        if "flags" in body and body["flags"] is not None:
            keep = msg.flags & ~4  # only SUPPRESS_EMBEDS may change
            msg.flags = keep | (int(body["flags"]) & 4)
        if "allowed_mentions" in body:
            msg.allowed_mentions = body["allowed_mentions"]
        msg.mention_ids, msg.mention_role_ids, msg.mention_everyone = self._mentions(content, msg.guild_id)
        msg.edited_timestamp = iso()
        msg.snapshot("edit")
        if not msg.ephemeral:
            self._dispatch_message("MESSAGE_UPDATE", msg)
        self._notify()
        return msg

    def remove_message(self, msg: StoredMessage) -> None:
        msg.deleted = True
        msg.deleted_t = time.monotonic()
        if not msg.ephemeral:
            data: JSON = {"id": str(msg.id), "channel_id": str(msg.channel_id)}
            if msg.guild_id is not None:
                data["guild_id"] = str(msg.guild_id)
            intent = Intent.GUILD_MESSAGES if msg.guild_id else Intent.DIRECT_MESSAGES
            self.emit("MESSAGE_DELETE", data, guild_id=msg.guild_id, intent=intent)
        self._notify()

    def _dispatch_message(self, event: str, msg: StoredMessage) -> None:
        intent = Intent.GUILD_MESSAGES if msg.guild_id is not None else Intent.DIRECT_MESSAGES
        self.emit(
            event,
            lambda intents: self.message_payload(msg, gateway=True, intents=intents),
            guild_id=msg.guild_id,
            intent=intent,
        )
