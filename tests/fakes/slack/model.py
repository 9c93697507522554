"""The fake workspace: users, channels, files and messages, each message with its timeline."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

ChannelKind = Literal["public", "private", "im", "mpim"]
#: ``none``: an ordinary message; ``streaming``: a native stream still open; ``stopped``: closed by
#: chat.stopStream; ``expired``: the stream outlived its lifetime; ``stopped_by_user``: the user
#: pressed stop in the client.
StreamState = Literal["none", "streaming", "stopped", "expired", "stopped_by_user"]


@dataclass
class User:
    id: str
    name: str
    real_name: str = ""
    display_name: str = ""
    is_bot: bool = False
    bot_id: str | None = None
    tz: str = "Europe/London"

    def to_api(self, team_id: str) -> dict[str, Any]:
        real = self.real_name or self.name
        profile: dict[str, Any] = {
            "real_name": real,
            "real_name_normalized": real,
            "display_name": self.display_name,
            "display_name_normalized": self.display_name,
            "first_name": real.split(" ")[0],
            "image_48": f"https://avatars.invalid/{self.id}_48.png",
            "team": team_id,
        }
        if self.bot_id:
            profile["bot_id"] = self.bot_id
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": False,
            "real_name": real,
            "tz": self.tz,
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1700000000,
        }


@dataclass
class Channel:
    id: str
    name: str
    kind: ChannelKind = "public"
    #: The other member of a DM.
    user: str | None = None
    #: Who is in the channel (user ids, the bot's included); None: everyone in the workspace.
    members: set[str] | None = None

    def has_member(self, user: str) -> bool:
        return self.members is None or user in self.members

    @property
    def is_dm(self) -> bool:
        return self.kind == "im"

    @property
    def channel_type(self) -> str:
        """The ``channel_type`` field of message events."""
        return {"public": "channel", "private": "group", "im": "im", "mpim": "mpim"}[self.kind]

    def to_api(self, bot_user: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "created": 1700000000,
            "is_archived": False,
            "is_org_shared": False,
            "context_team_id": None,
        }
        if self.kind == "im":
            data.update({"is_im": True, "user": self.user, "is_user_deleted": False, "priority": 0})
            return data
        data.update(
            {
                "name": self.name,
                "name_normalized": self.name,
                "is_channel": self.kind == "public",
                "is_group": self.kind == "private",
                "is_im": False,
                "is_mpim": self.kind == "mpim",
                "is_private": self.kind != "public",
                "is_general": self.name == "general",
                "is_member": bot_user is None or self.has_member(bot_user),
                "is_shared": False,
                "is_ext_shared": False,
                "topic": {"value": "", "creator": "", "last_set": 0},
                "purpose": {"value": "", "creator": "", "last_set": 0},
            }
        )
        return data


@dataclass
class FakeFile:
    id: str
    name: str
    mimetype: str
    filetype: str
    content: bytes
    user: str
    url_private: str
    url_private_download: str
    title: str = ""
    created: int = field(default_factory=lambda: int(time.time()))
    #: More fields of the file object, as Slack sends them for this kind of file (an audio clip's
    #: ``subtype``, ``duration_ms`` and ``transcription``; an upload's ``alt_txt``; ``shares``).
    extra: dict[str, Any] = field(default_factory=dict)

    def to_api(self, team_id: str) -> dict[str, Any]:
        data = self._base(team_id)
        media = self.mimetype.split("/", 1)[0]
        if media in ("audio", "video"):
            data["media_display_type"] = media
        data.update(self.extra)
        return data

    def _base(self, team_id: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "created": self.created,
            "timestamp": self.created,
            "name": self.name,
            "title": self.title or self.name,
            "mimetype": self.mimetype,
            "filetype": self.filetype,
            "pretty_type": self.filetype.upper(),
            "user": self.user,
            "user_team": team_id,
            "editable": False,
            "size": len(self.content),
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": True,
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": self.url_private,
            "url_private_download": self.url_private_download,
            "permalink": f"https://fake.slack.invalid/files/{self.user}/{self.id}/{self.name}",
            "permalink_public": f"https://slack-files.invalid/{team_id}-{self.id}-public",
            "has_rich_preview": False,
            "file_access": "visible",
        }


@dataclass(frozen=True)
class MessageState:
    """One state of a message as users saw it, from ``t`` (``time.monotonic()``) on."""

    t: float
    #: What produced the state: post, update, start_stream, append_stream, stop_stream, expire,
    #: user_stop, delete, user_post, user_edit.
    event: str
    text: str
    blocks: list[dict[str, Any]] | None
    markdown_text: str | None
    streaming: StreamState
    deleted: bool
    #: The text a user reads (see :meth:`Message.visible_text`).
    visible: str


@dataclass
class Message:
    channel: str
    ts: str
    user: str
    text: str = ""
    blocks: list[dict[str, Any]] | None = None
    markdown_text: str | None = None
    thread_ts: str | None = None
    bot_id: str | None = None
    app_id: str | None = None
    subtype: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    #: Non-markdown streaming chunks (task_update, plan_update, blocks) in arrival order.
    chunks: list[dict[str, Any]] = field(default_factory=list)
    streaming: StreamState = "none"
    stream_started_at: float | None = None
    edited_ts: str | None = None
    deleted: bool = False
    reactions: dict[str, list[str]] = field(default_factory=dict)
    metadata: dict[str, Any] | None = None
    history: list[MessageState] = field(default_factory=list)

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def visible_text(self) -> str:
        """What a reader sees: markdown_text (plus stream footer blocks), else the blocks, else text."""
        if self.deleted:
            return ""
        if self.markdown_text is not None:
            parts = [self.markdown_text]
            if self.blocks:
                parts.append(blocks_text(self.blocks))
            return "\n".join(p for p in parts if p)
        if self.blocks:
            return blocks_text(self.blocks)
        return self.text

    def snapshot(self, event: str, t: float) -> None:
        self.history.append(
            MessageState(
                t=t,
                event=event,
                text=self.text,
                blocks=[dict(b) for b in self.blocks] if self.blocks is not None else None,
                markdown_text=self.markdown_text,
                streaming=self.streaming,
                deleted=self.deleted,
                visible=self.visible_text(),
            )
        )

    def to_api(self, team_id: str, replies: list[Message] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": "message",
            "ts": self.ts,
            "user": self.user,
            "text": self.markdown_text if self.markdown_text is not None else self.text,
            "team": team_id,
        }
        if self.subtype:
            data["subtype"] = self.subtype
        if self.bot_id:
            data["bot_id"] = self.bot_id
        if self.app_id:
            data["app_id"] = self.app_id
        if self.blocks is not None:
            data["blocks"] = self.blocks
        if self.files:
            data["files"] = self.files
            data["upload"] = False
            data["display_as_bot"] = False
        if self.thread_ts:
            data["thread_ts"] = self.thread_ts
        if self.edited_ts:
            data["edited"] = {"user": self.user, "ts": self.edited_ts}
        if self.reactions:
            data["reactions"] = [
                {"name": name, "users": users, "count": len(users)} for name, users in self.reactions.items()
            ]
        if self.metadata:
            data["metadata"] = self.metadata
        if replies is not None and replies:
            data["reply_count"] = len(replies)
            data["reply_users"] = sorted({r.user for r in replies})
            data["reply_users_count"] = len(data["reply_users"])
            data["latest_reply"] = replies[-1].ts
            data["thread_ts"] = self.ts
        return data


def blocks_text(blocks: list[dict[str, Any]]) -> str:
    """Rough rendering of Block Kit to the text a reader sees."""
    out: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "section":
            text = block.get("text")
            if isinstance(text, dict):
                out.append(str(text.get("text", "")))
            for fld in block.get("fields") or []:
                out.append(str(fld.get("text", "")))
        elif kind == "markdown":
            out.append(str(block.get("text", "")))
        elif kind == "header":
            out.append(str((block.get("text") or {}).get("text", "")))
        elif kind == "context":
            out.extend(str(e.get("text", "")) for e in block.get("elements") or [] if "text" in e)
        elif kind == "rich_text":
            out.append(_rich_text(block.get("elements") or []))
    return "\n".join(o for o in out if o)


def _rich_text(elements: list[dict[str, Any]]) -> str:
    parts: list[str] = []
    for el in elements:
        kind = el.get("type")
        if kind == "text":
            parts.append(str(el.get("text", "")))
        elif kind == "user":
            parts.append(f"<@{el.get('user_id')}>")
        elif kind == "channel":
            parts.append(f"<#{el.get('channel_id')}>")
        elif kind == "link":
            parts.append(str(el.get("text") or el.get("url", "")))
        elif kind == "emoji":
            parts.append(f":{el.get('name')}:")
        elif "elements" in el:
            parts.append(_rich_text(el["elements"]))
            if kind in ("rich_text_list", "rich_text_preformatted", "rich_text_quote"):
                parts.append("\n")
    return "".join(parts)
