"""Payloads as Discord sends them: messages (with the MESSAGE_CONTENT rules), GUILD_CREATE, the
application object."""

from __future__ import annotations

import time

from .core import WorldBase
from .models import (
    JSON,
    PRIVILEGED_INTENTS,
    ChannelType,
    Guild,
    Intent,
    InteractionType,
    MessageType,
)
from .records import (
    StoredMessage,
)


class Payloads(WorldBase):
    """JSON the REST API answers and the gateway dispatches."""

    def content_visible(self, msg: StoredMessage, intents: int | None) -> bool:
        """Whether the bot may see ``msg``'s content (the MESSAGE_CONTENT rules).

        ``intents=None`` is for REST, where the application's flags decide.
        """
        if msg.guild_id is None or msg.author.id == self.bot.id or self.bot.id in msg.mention_ids:
            return True
        if intents is None:
            return bool(self.app_flags & PRIVILEGED_INTENTS[Intent.MESSAGE_CONTENT])
        return bool(intents & Intent.MESSAGE_CONTENT)

    def message_payload(
        self, msg: StoredMessage, *, gateway: bool = False, intents: int | None = None, nested: bool = False
    ) -> JSON:
        """A message object. Gateway events add ``guild_id`` and ``member`` (and members on mentions)."""
        visible = self.content_visible(msg, intents)
        guild = self.guilds.get(msg.guild_id) if msg.guild_id else None
        mentions: list[JSON] = []
        for uid in msg.mention_ids:
            user = self.users.get(uid)
            if user is None:
                continue
            entry = user.payload()
            if gateway and guild is not None and uid in guild.members:
                entry["member"] = guild.members[uid].payload(with_user=False)
            mentions.append(entry)
        data: JSON = {
            "type": msg.type,
            "content": msg.content if visible else "",
            "mentions": mentions,
            "mention_roles": [str(r) for r in msg.mention_role_ids],
            "attachments": [a.payload() for a in msg.attachments] if visible else [],
            "embeds": msg.embeds if visible else [],
            "timestamp": msg.timestamp,
            "edited_timestamp": msg.edited_timestamp,
            "flags": msg.flags,
            "components": msg.components if visible else [],
            "id": str(msg.id),
            "channel_id": str(msg.channel_id),
            "author": msg.author.payload(),
            "pinned": False,
            "mention_everyone": msg.mention_everyone,
            "tts": False,
        }
        if msg.nonce is not None:
            data["nonce"] = msg.nonce
        if msg.webhook_id is not None:
            data["webhook_id"] = str(msg.webhook_id)
        if msg.application_id is not None:
            data["application_id"] = str(msg.application_id)
        if msg.interaction_metadata is not None:
            data["interaction_metadata"] = msg.interaction_metadata
            if msg.interaction_metadata.get("type") == InteractionType.APPLICATION_COMMAND:
                data["interaction"] = {k: msg.interaction_metadata[k] for k in ("id", "type", "name", "user")}
        if msg.reactions:
            data["reactions"] = [
                {
                    "emoji": {"id": None, "name": emoji},
                    "count": len(users),
                    "me": self.bot.id in users,
                    "count_details": {"burst": 0, "normal": len(users)},
                    "burst_colors": [],
                    "me_burst": False,
                    "burst_me": False,
                    "burst_count": 0,
                }
                for emoji, users in msg.reactions.items()
                if users
            ]
        if msg.thread_id is not None and msg.thread_id in self.channels:
            data["thread"] = self.channels[msg.thread_id].payload(bot_id=self.bot.id)
        if msg.reference is not None:
            data["message_reference"] = msg.reference
            if not nested and msg.type == MessageType.REPLY:
                ref = self.messages.get(int(msg.reference["message_id"]))
                data["referenced_message"] = (
                    None
                    if ref is None or ref.deleted
                    else self.message_payload(ref, gateway=gateway, intents=intents, nested=True)
                )
        if gateway and msg.guild_id is not None:
            data["guild_id"] = str(msg.guild_id)
            member = guild.members.get(msg.author.id) if guild else None
            if member is not None and msg.webhook_id is None:
                data["member"] = member.payload(with_user=False)
        return data

    def guild_create_payload(self, guild: Guild) -> JSON:
        """GUILD_CREATE: like Discord without the presence intent, ``members`` holds only the bot."""
        channels = [self.channels[c] for c in guild.channel_ids]
        threads = [
            c for c in self.channels.values() if c.guild_id == guild.id and c.is_thread and not c.archived
        ]
        general = next((c.id for c in channels if c.type == ChannelType.GUILD_TEXT), None)
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "region": "deprecated",
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "features": [],
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "system_channel_id": str(general) if general else None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "application_id": None,
            "max_members": 25000000,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "nsfw": False,
            "lazy": True,
            "large": len(guild.members) > 250,
            "unavailable": False,
            "member_count": len(guild.members),
            "joined_at": guild.joined_at,
            "roles": [r.payload() for r in guild.roles.values()],
            "emojis": [],
            "stickers": [],
            "channels": [c.payload(include_guild_id=False) for c in channels],
            "threads": [t.payload(bot_id=self.bot.id) for t in threads],
            "members": [guild.members[self.bot.id].payload()],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "embedded_activities": [],
            "activity_instances": [],
            "incidents_data": None,
            "latest_onboarding_question_id": None,
            "home_header": None,
            "hub_type": None,
            "inventory_settings": None,
            "version": int(time.time() * 1000),
        }

    def application_payload(self) -> JSON:
        return {
            "id": str(self.application_id),
            "name": self.bot.username,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "owner": self.app_owner.payload(),
            "team": None,
            "flags": self.app_flags,
            "tags": [],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "approximate_guild_count": len(self.guilds),
            "bot": self.bot.payload(),
            "integration_types_config": {"0": {}},
        }
