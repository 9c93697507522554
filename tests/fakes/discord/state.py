"""The fake's world: users, guilds, channels, messages, interactions, and the rules Discord applies.

``World`` is synchronous and runs on the fake's event loop; see :mod:`.core` for the layers it
is built from. ``FakeDiscord`` adds the servers and the async helpers that play the users.
"""

from __future__ import annotations

from .core import ApiError, EventData, _id, form_error, on_loop, unknown
from .interactions import Interactions
from .models import (
    JSON,
    Channel,
)
from .records import (
    StoredMessage,
)

__all__ = ["ApiError", "EventData", "World", "_id", "form_error", "on_loop", "unknown"]


class World(Interactions):
    """All the fake's state. ``FakeDiscord`` adds the servers and the async test helpers."""

    # ------------------------------------------------------------------ commands

    def overwrite_commands(self, guild_id: int | None, payload: list[JSON]) -> list[JSON]:
        previous = {
            (c["name"], c.get("type", 1)): c for c in self.commands.values() if c.get("_guild") == guild_id
        }
        for stale in previous.values():
            self.commands.pop(int(stale["id"]))
        result = []
        for spec in payload:
            ctype = spec.get("type", 1)
            old = previous.get((spec["name"], ctype))
            cmd_id = int(old["id"]) if old else self.ids.next()
            cmd: JSON = {
                "id": str(cmd_id),
                "application_id": str(self.application_id),
                "version": str(self.ids.next()),
                "default_member_permissions": spec.get("default_member_permissions"),
                "type": ctype,
                "name": spec["name"],
                "name_localizations": spec.get("name_localizations"),
                "description": spec.get("description", ""),
                "description_localizations": spec.get("description_localizations"),
                "dm_permission": spec.get("dm_permission", True),
                "contexts": spec.get("contexts"),
                "integration_types": spec.get("integration_types", [0]),
                "nsfw": spec.get("nsfw", False),
            }
            if spec.get("options"):
                cmd["options"] = spec["options"]
            if guild_id is not None:
                cmd["guild_id"] = str(guild_id)
            self.commands[cmd_id] = {**cmd, "_guild": guild_id}
            result.append(cmd)
        self._notify()
        return result

    def list_commands(self, guild_id: int | None) -> list[JSON]:
        return [
            {k: v for k, v in c.items() if k != "_guild"}
            for c in self.commands.values()
            if c.get("_guild") == guild_id
        ]

    # ------------------------------------------------------------------ timelines

    def channel_messages(
        self, channel: Channel | int, *, include_deleted: bool = False
    ) -> list[StoredMessage]:
        """Messages of a channel, oldest first (ephemeral ones included, flagged ``ephemeral``)."""
        cid = _id(channel)
        return sorted(
            (m for m in self.messages.values() if m.channel_id == cid and (include_deleted or not m.deleted)),
            key=lambda m: m.id,
        )

    def visible_text(self, channel: Channel | int) -> str:
        """What everybody sees now: the current content of live, non-ephemeral messages, one per line."""
        return "\n".join(m.content for m in self.channel_messages(channel) if not m.ephemeral)

    def bot_messages(self, channel: Channel | int) -> list[StoredMessage]:
        return [m for m in self.channel_messages(channel) if m.author.id == self.bot.id]

    def pinged_user_ids(self, msg: StoredMessage) -> list[int]:
        """Users the message notifies, after ``allowed_mentions`` (what users experience as a ping)."""
        allowed = msg.allowed_mentions
        if allowed is None:
            return list(msg.mention_ids)
        parse = allowed.get("parse") or []
        explicit = {int(u) for u in allowed.get("users") or []}
        ref_author = None
        if msg.reference is not None:
            ref = self.messages.get(int(msg.reference["message_id"]))
            ref_author = ref.author.id if ref else None
        result = []
        for uid in msg.mention_ids:
            if uid == ref_author and allowed.get("replied_user"):
                result.append(uid)
            elif "users" in parse or uid in explicit:
                result.append(uid)
        return result
