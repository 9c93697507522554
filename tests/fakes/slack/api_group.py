"""The base of a group of Web API methods: the lookups every group needs, answered like Slack."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .model import Channel, Message
from .records import ApiError, Handler, Params, require

if TYPE_CHECKING:
    from .server import FakeSlack


class ApiGroup:
    """Methods of one family (``chat.*``, ``assistant.threads.*``…), registered by :meth:`handlers`."""

    def __init__(self, fs: FakeSlack) -> None:
        self.fs = fs

    def handlers(self) -> dict[str, Handler]:
        raise NotImplementedError

    def channel(self, params: Params, name: str = "channel") -> Channel:
        channel_id = require(params, name)
        channel = self.fs.channels.get(channel_id)
        if channel is None:
            raise ApiError("channel_not_found")
        return channel

    def message(self, channel: Channel, ts: str, error: str = "message_not_found") -> Message:
        msg = self.fs.messages.get((channel.id, ts))
        if msg is None or msg.deleted:
            raise ApiError(error)
        return msg

    def message_api(self, msg: Message) -> dict[str, Any]:
        replies = self.fs.replies_of(msg) if not msg.is_reply else None
        return msg.to_api(self.fs.identity.team_id, replies)
