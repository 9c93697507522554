"""What the fake keeps about messages and requests: stored messages with their timelines,
attachments with their bytes, interactions with the bot's answers, and the request logs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .models import JSON, MessageFlag, MessageType, User, iso


@dataclass
class StoredAttachment:
    id: int
    filename: str
    data: bytes
    url: str
    content_type: str | None = None
    description: str | None = None
    #: Voice messages (and audio or video files): the length, and a base64 waveform preview.
    duration_secs: float | None = None
    waveform: str | None = None
    #: Attachment flags (``IS_SPOILER`` 1 << 3 when the upload asked ``is_spoiler``).
    flags: int = 0

    def payload(self) -> JSON:
        data: JSON = {
            "id": str(self.id),
            "filename": self.filename,
            "size": len(self.data),
            "url": self.url,
            "proxy_url": self.url,
            "content_type": self.content_type,
            "description": self.description,
            "width": None,
            "height": None,
            "content_scan_version": 0,
        }
        if self.duration_secs is not None:
            data["duration_secs"] = self.duration_secs
        if self.waveform is not None:
            data["waveform"] = self.waveform
        if self.flags:
            data["flags"] = self.flags
        return data


@dataclass(frozen=True)
class MessageState:
    """One state of a message as users saw it: at creation, then after each edit."""

    t: float  # time.monotonic() when the fake accepted the change
    content: str
    components: list[JSON]
    embeds: list[JSON]
    flags: int
    kind: str  # "create" or "edit"


@dataclass
class StoredMessage:
    id: int
    channel_id: int
    guild_id: int | None
    author: User
    content: str = ""
    type: int = MessageType.DEFAULT
    flags: int = 0
    components: list[JSON] = field(default_factory=list)
    embeds: list[JSON] = field(default_factory=list)
    attachments: list[StoredAttachment] = field(default_factory=list)
    mention_ids: list[int] = field(default_factory=list)
    mention_role_ids: list[int] = field(default_factory=list)
    mention_everyone: bool = False
    reference: JSON | None = None
    allowed_mentions: JSON | None = None
    nonce: str | None = None
    webhook_id: int | None = None
    application_id: int | None = None
    interaction_metadata: JSON | None = None
    thread_id: int | None = None
    reactions: dict[str, set[int]] = field(default_factory=dict)
    timestamp: str = field(default_factory=iso)
    edited_timestamp: str | None = None
    created_t: float = field(default_factory=time.monotonic)
    history: list[MessageState] = field(default_factory=list)
    deleted: bool = False
    deleted_t: float | None = None

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & MessageFlag.EPHEMERAL)

    @property
    def edit_count(self) -> int:
        return sum(1 for s in self.history if s.kind == "edit")

    @property
    def custom_ids(self) -> list[str]:
        """Every ``custom_id`` in the message's components (nested rows included)."""
        found: list[str] = []

        def walk(items: list[JSON]) -> None:
            for item in items:
                if isinstance(item, dict):
                    if "custom_id" in item:
                        found.append(str(item["custom_id"]))
                    walk(item.get("components", []))
                    if isinstance(item.get("accessory"), dict):
                        walk([item["accessory"]])

        walk(self.components)
        return found

    def snapshot(self, kind: str) -> None:
        self.history.append(
            MessageState(
                t=time.monotonic(),
                content=self.content,
                components=list(self.components),
                embeds=list(self.embeds),
                flags=self.flags,
                kind=kind,
            )
        )


@dataclass
class CallbackRecord:
    """One response the bot made to an interaction (callback, followup or webhook edit)."""

    t: float
    route: str  # "callback", "followup", "edit_original", "edit", "delete_original", ...
    type: int | None  # callback type for "callback", else None
    data: JSON


@dataclass
class InteractionRecord:
    id: int
    token: str
    type: int
    data: JSON
    user: User
    channel_id: int
    guild_id: int | None
    created_t: float = field(default_factory=time.monotonic)
    source_message_id: int | None = None  # the message carrying the component (type 3)
    original_message_id: int | None = None  # what @original designates once acknowledged
    followup_message_ids: list[int] = field(default_factory=list)
    responses: list[CallbackRecord] = field(default_factory=list)
    payload: JSON = field(default_factory=dict)  # the INTERACTION_CREATE data as dispatched

    @property
    def acked(self) -> bool:
        return any(r.route == "callback" for r in self.responses)

    @property
    def callback(self) -> CallbackRecord | None:
        return next((r for r in self.responses if r.route == "callback"), None)


@dataclass(frozen=True)
class TypingEvent:
    t: float
    channel_id: int
    user_id: int


@dataclass(frozen=True)
class RequestRecord:
    t: float
    method: str
    path: str
    route: str  # e.g. "PATCH /channels/{channel_id}/messages/{message_id}"
    status: int


@dataclass(frozen=True)
class RateLimitHit:
    t: float
    route: str  # route key, or "global"
    scope: str  # "user" (per-route bucket) or "global"
    retry_after: float
