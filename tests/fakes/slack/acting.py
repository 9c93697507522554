"""The people in the workspace: what they post, edit, delete, record and open, as Slack reports it.

Each helper stores what the user did and returns the inner event exactly as Slack would send it;
deliver it with ``await fs.deliver_event(event, mode=...)``.
"""

from __future__ import annotations

from typing import Any

from . import events as ev
from .sending import Sending
from .workspace import DEFAULT_CHANNEL, DEFAULT_DM, DEFAULT_USER, OTHER_BOT_ID

#: What Slack's clients record for an audio clip, by platform (file name, MIME type, filetype).
CLIP_FORMATS: dict[str, tuple[str, str, str]] = {
    "mobile": ("audio_message.m4a", "audio/mp4", "m4a"),
    "desktop": ("audio_message.webm", "audio/webm", "webm"),
}


class Acting(Sending):
    """Users' actions: messages, mentions, edits, deletions, audio clips, the Messages tab."""

    def _user_post(
        self,
        kind: str,
        channel: str,
        user: str,
        text: str,
        thread_ts: str | None,
        files: list[dict[str, Any]] | None,
    ) -> dict[str, Any]:
        ch = self.channels[channel]
        msg = self.store_message(
            channel, user=user, text=text, thread_ts=thread_ts, files=files, event="user_post"
        )
        msg.blocks = ev.rich_text_blocks(text) if text else None
        parent = self.messages.get((channel, thread_ts)) if thread_ts else None
        return ev.user_message_event(
            self.identity,
            kind=kind,
            channel=channel,
            channel_type=ch.channel_type,
            user=user,
            text=text,
            ts=msg.ts,
            thread_ts=thread_ts,
            files=files,
            parent_user_id=parent.user if parent else None,
        )

    def app_mention(
        self,
        text: str = "hello",
        *,
        channel: str = DEFAULT_CHANNEL,
        user: str = DEFAULT_USER,
        thread_ts: str | None = None,
        files: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A user mentions the bot: stores the message, returns the ``app_mention`` event.

        ``<@BOT>`` is prefixed to ``text`` unless the text already mentions the bot.
        """
        mention = f"<@{self.identity.bot_user_id}>"
        if mention not in text:
            text = f"{mention} {text}"
        return self._user_post("app_mention", channel, user, text, thread_ts, files)

    def dm_message(
        self,
        text: str = "hello",
        *,
        channel: str = DEFAULT_DM,
        user: str | None = None,
        thread_ts: str | None = None,
        files: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A user writes in their DM with the bot: ``message`` event, ``channel_type: im``.

        With Slack's Agent messaging experience this DM is the app's Messages tab: a message
        without ``thread_ts`` starts a new thread there, replies carry its ``thread_ts``.
        """
        return self._user_post(
            "message", channel, user or self.channels[channel].user or DEFAULT_USER, text, thread_ts, files
        )

    def channel_message(
        self,
        text: str = "hello",
        *,
        channel: str = DEFAULT_CHANNEL,
        user: str = DEFAULT_USER,
        thread_ts: str | None = None,
        files: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A plain ``message`` event in a channel (or a thread reply with ``thread_ts``)."""
        return self._user_post("message", channel, user, text, thread_ts, files)

    def bot_message(
        self,
        text: str = "beep",
        *,
        channel: str = DEFAULT_CHANNEL,
        own: bool = False,
        bot_id: str = OTHER_BOT_ID,
        thread_ts: str | None = None,
        legacy_subtype: bool = False,
    ) -> dict[str, Any]:
        """A message from a bot: another app (default) or, with ``own=True``, this app's bot user
        (the echo Slack sends of the bot's own posts; Bolt drops it by default)."""
        ch = self.channels[channel]
        user = self.identity.bot_user_id if own else None
        bid = self.identity.bot_id if own else bot_id
        msg = self.store_message(
            channel, user=user or bid, text=text, thread_ts=thread_ts, bot_id=bid, event="user_post"
        )
        return ev.bot_message_event(
            channel=channel,
            channel_type=ch.channel_type,
            bot_id=bid,
            text=text,
            ts=msg.ts,
            user=user,
            app_id=self.identity.app_id if own else "A0OTHERAPP",
            thread_ts=thread_ts,
            legacy_subtype=legacy_subtype,
        )

    def edit_user_message(self, channel: str, ts: str, new_text: str) -> dict[str, Any]:
        """A user edits a message: updates the store, returns the ``message_changed`` event."""
        msg = self.messages[(channel, ts)]
        previous = msg.to_api(self.identity.team_id)
        msg.text, msg.blocks, msg.edited_ts = new_text, ev.rich_text_blocks(new_text), self.new_ts()
        msg.snapshot("user_edit", self.now())
        return ev.message_changed_event(
            channel=channel,
            channel_type=self.channels[channel].channel_type,
            message=msg.to_api(self.identity.team_id),
            previous_message=previous,
            event_ts=self.new_ts(),
        )

    def delete_user_message(self, channel: str, ts: str) -> dict[str, Any]:
        """A user deletes a message: returns the ``message_deleted`` event."""
        msg = self.messages[(channel, ts)]
        previous = msg.to_api(self.identity.team_id)
        msg.deleted = True
        msg.snapshot("delete", self.now())
        return ev.message_deleted_event(
            channel=channel,
            channel_type=self.channels[channel].channel_type,
            deleted_ts=ts,
            previous_message=previous,
            event_ts=self.new_ts(),
        )

    # ------------------------------------------------------------------ audio

    def audio_clip(
        self,
        content: bytes,
        *,
        duration_ms: int = 3000,
        recorded_on: str = "mobile",
        transcript: str | None = None,
        user: str = DEFAULT_USER,
    ) -> dict[str, Any]:
        """A clip recorded with Slack's microphone button: the file object to put in ``files=``.

        Slack marks it ``subtype: "slack_audio"`` (``media_display_type: "audio"``, its length in
        ``duration_ms``); mobile clients record ``audio_message.m4a`` (``audio/mp4``), desktop
        ones ``audio_message.webm`` (``audio/webm``). Slack's own transcript arrives later:
        ``transcription.status`` is ``"processing"`` unless ``transcript`` is given
        (``"complete"`` with a preview). The bytes are served at ``url_private`` with the bot
        token, like any file. The message carrying it has no text::

            clip = fs.audio_clip(ogg_bytes)
            event = fs.dm_message("", files=[clip])      # subtype file_share
        """
        name, mimetype, filetype = CLIP_FORMATS[recorded_on]
        transcription: dict[str, Any] = {"status": "processing"}
        if transcript is not None:
            transcription = {
                "status": "complete",
                "locale": "en-US",
                "preview": {"content": transcript[:150], "has_more": len(transcript) > 150},
            }
        return self.add_file(
            content,
            name,
            mimetype=mimetype,
            filetype=filetype,
            user=user,
            title=f"audio_message {self.new_ts()}",
            subtype="slack_audio",
            duration_ms=duration_ms,
            transcription=transcription,
            pretty_type=filetype.upper(),
        )

    # ------------------------------------------------------------------ the Messages tab

    def open_app_home(
        self,
        *,
        user: str = DEFAULT_USER,
        tab: str = "messages",
        viewing: str | None = None,
    ) -> dict[str, Any]:
        """The user opens the app: ``app_home_opened`` with ``tab`` ``"messages"`` (the Agent
        messaging experience's Messages tab, the DM with the app) or ``"home"``.

        ``channel`` is the user's DM with the app (created if needed). With ``viewing`` (a
        channel id) the event carries the user's active view as ``context.entities``, as for
        agent apps.
        """
        dm = self.dm_with(user)
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": user,
            "channel": dm.id,
            "tab": tab,
            "event_ts": self.new_ts(),
        }
        if viewing is not None:
            event["context"] = self._context(viewing)
        return event

    def context_changed(
        self, *, user: str = DEFAULT_USER, viewing: str | None = None, message_ts: str | None = None
    ) -> dict[str, Any]:
        """``app_context_changed``: what the user looks at while the app's pane is open.

        ``viewing`` is a channel id (``slack#/types/channel_id``), with ``message_ts`` a message
        in it (``slack#/types/message_context``); None gives an empty ``context: {}``.
        ``channel`` is the user's DM with the app (only sent to apps with ``agent_view``).
        """
        return {
            "type": "app_context_changed",
            "channel": self.dm_with(user).id,
            "user": user,
            "context": self._context(viewing, message_ts),
            "event_ts": self.new_ts(),
        }

    def _context(self, viewing: str | None, message_ts: str | None = None) -> dict[str, Any]:
        if viewing is None:
            return {}
        team = self.identity.team_id
        if message_ts is not None:
            entity: dict[str, Any] = {
                "type": "slack#/types/message_context",
                "value": {"channel_id": viewing, "message_ts": message_ts},
                "team_id": team,
            }
        else:
            entity = {"type": "slack#/types/channel_id", "value": viewing, "team_id": team}
        return {"entities": [entity]}
