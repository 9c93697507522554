"""``chat.*``: posting, updating, deleting and native streaming, with Slack's content limits.

slack_sdk sends these as JSON bodies. Limits follow :class:`~tests.fakes.slack.config.MessageLimits`;
a bot message posted in a thread clears the thread's status (``assistant.threads.setStatus``), as
Slack does when the app replies.
"""

from __future__ import annotations

from typing import Any

from .api_group import ApiGroup
from .blocks import interactive_block_errors
from .model import Channel, Message
from .records import ApiError, Handler, Params, json_field, require


class ChatApi(ApiGroup):
    def handlers(self) -> dict[str, Handler]:
        return {
            "chat.postMessage": self.chat_post_message,
            "chat.update": self.chat_update,
            "chat.delete": self.chat_delete,
            "chat.startStream": self.chat_start_stream,
            "chat.appendStream": self.chat_append_stream,
            "chat.stopStream": self.chat_stop_stream,
        }

    # ------------------------------------------------------------------ content checks

    def check_blocks(self, blocks: Any) -> list[dict[str, Any]] | None:
        if blocks is None:
            return None
        if not isinstance(blocks, list) or not all(isinstance(b, dict) and "type" in b for b in blocks):
            raise ApiError("invalid_blocks_format")
        lim = self.fs.message_limits
        errors: list[str] = []
        if len(blocks) > lim.max_blocks:
            errors.append(f"must be less than {lim.max_blocks + 1} items [json-pointer:/blocks]")
        md_total = 0
        for i, block in enumerate(blocks):
            errors += interactive_block_errors(i, block)
            if block["type"] == "section":
                text = block.get("text")
                if isinstance(text, dict) and len(str(text.get("text", ""))) > lim.section_text_max:
                    errors.append(
                        f"must be less than {lim.section_text_max + 1} characters "
                        f"[json-pointer:/blocks/{i}/text/text]"
                    )
            elif block["type"] == "markdown":
                md_total += len(str(block.get("text", "")))
        if md_total > lim.markdown_block_max:
            errors.append(
                f"markdown blocks exceed {lim.markdown_block_max} characters [json-pointer:/blocks]"
            )
        if errors:
            raise ApiError(
                "invalid_blocks",
                errors=errors,
                response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
            )
        return blocks

    def check_markdown(self, markdown_text: Any) -> str | None:
        if markdown_text is None:
            return None
        text = str(markdown_text)
        if len(text) > self.fs.message_limits.markdown_text_max:
            raise ApiError(self.fs.message_limits.markdown_too_long_error)
        return text

    def content(
        self, params: Params, text_max: int
    ) -> tuple[str | None, list[dict[str, Any]] | None, str | None]:
        text = params.get("text")
        blocks = self.check_blocks(json_field(params, "blocks", "invalid_blocks_format"))
        markdown_text = self.check_markdown(params.get("markdown_text"))
        if markdown_text is not None and (text is not None or blocks is not None):
            raise ApiError("markdown_text_conflict")
        if text is not None and len(str(text)) > text_max:
            raise ApiError("msg_too_long")
        if text in (None, "") and not blocks and not markdown_text and not params.get("attachments"):
            raise ApiError("no_text")
        return (str(text) if text is not None else None), blocks, markdown_text

    def chunks(self, params: Params) -> tuple[str, list[dict[str, Any]]]:
        """Split streaming chunks into appended markdown and other chunk objects."""
        chunks = json_field(params, "chunks", "invalid_chunks")
        markdown = ""
        others: list[dict[str, Any]] = []
        if chunks is None:
            return markdown, others
        if not isinstance(chunks, list):
            raise ApiError("invalid_chunks")
        for chunk in chunks:
            if not isinstance(chunk, dict) or "type" not in chunk:
                raise ApiError("invalid_chunks")
            if chunk["type"] == "markdown_text":
                markdown += str(chunk.get("text", ""))
            elif chunk["type"] in ("task_update", "plan_update", "blocks"):
                others.append(chunk)
            else:
                raise ApiError("invalid_chunks")
        self.check_markdown(markdown)
        return markdown, others

    # ------------------------------------------------------------------ methods

    async def chat_post_message(self, params: Params) -> dict[str, Any]:
        fs = self.fs
        channel = self.channel(params)
        text, blocks, markdown_text = self.content(params, fs.message_limits.post_text_max)
        thread_ts = params.get("thread_ts") or None
        if thread_ts:
            parent = fs.messages.get((channel.id, str(thread_ts)))
            if parent is not None and parent.is_reply:
                thread_ts = parent.thread_ts
        metadata = json_field(params, "metadata", "invalid_metadata_format")
        msg = fs.store_message(
            channel.id,
            user=fs.identity.bot_user_id,
            text=text or "",
            blocks=blocks,
            markdown_text=markdown_text,
            thread_ts=str(thread_ts) if thread_ts else None,
            bot=True,
            event="post",
        )
        msg.metadata = metadata
        fs.bot_replied(channel.id, msg.thread_ts)
        await fs.echo(msg)
        return {"channel": channel.id, "ts": msg.ts, "message": self.message_api(msg)}

    async def chat_update(self, params: Params) -> dict[str, Any]:
        fs = self.fs
        channel = self.channel(params)
        msg = self.message(channel, require(params, "ts"))
        fs.expire_if_due(msg)
        if msg.user != fs.identity.bot_user_id:
            raise ApiError("cant_update_message")
        if msg.streaming == "streaming" and fs.streaming.update_conflict:
            raise ApiError("streaming_state_conflict")
        text, blocks, markdown_text = self.content(params, fs.message_limits.update_text_max)
        previous = msg.to_api(fs.identity.team_id)
        if markdown_text is not None:
            msg.markdown_text, msg.text, msg.blocks = markdown_text, "", None
        else:
            msg.markdown_text = None
            if text is not None:
                msg.text = text
                msg.blocks = blocks  # text without blocks removes the old blocks
            elif blocks is not None:
                msg.blocks = blocks
        msg.edited_ts = fs.new_ts()
        msg.snapshot("update", fs.now())
        await fs.echo(msg, previous)
        return {"channel": channel.id, "ts": msg.ts, "text": msg.text, "message": self.message_api(msg)}

    async def chat_delete(self, params: Params) -> dict[str, Any]:
        fs = self.fs
        channel = self.channel(params)
        msg = self.message(channel, require(params, "ts"))
        if msg.user != fs.identity.bot_user_id:
            raise ApiError("cant_delete_message")
        msg.deleted = True
        msg.snapshot("delete", fs.now())
        return {"channel": channel.id, "ts": msg.ts}

    async def chat_start_stream(self, params: Params) -> dict[str, Any]:
        fs = self.fs
        cfg = fs.streaming
        channel = self.channel(params)
        thread_ts = require(params, "thread_ts")
        if cfg.refuse:
            raise ApiError(cfg.refuse)
        if cfg.dm_only and not channel.is_dm:
            raise ApiError("channel_type_not_supported")
        if cfg.require_recipient_outside_dm and not channel.is_dm:
            if not params.get("recipient_team_id"):
                raise ApiError("missing_recipient_team_id")
            if not params.get("recipient_user_id"):
                raise ApiError("missing_recipient_user_id")
        markdown = self.check_markdown(params.get("markdown_text")) or ""
        chunk_text, others = self.chunks(params)
        msg = fs.store_message(
            channel.id,
            user=fs.identity.bot_user_id,
            text="",
            markdown_text=markdown + chunk_text,
            thread_ts=thread_ts,
            bot=True,
            event=None,
        )
        msg.chunks.extend(others)
        msg.streaming = "streaming"
        msg.stream_started_at = fs.now()
        msg.snapshot("start_stream", fs.now())
        fs.bot_replied(channel.id, thread_ts)
        return {"channel": channel.id, "ts": msg.ts}

    def _streaming_message(self, params: Params) -> tuple[Channel, Message]:
        channel = self.channel(params)
        msg = self.message(channel, require(params, "ts"))
        self.fs.expire_if_due(msg)
        if msg.user != self.fs.identity.bot_user_id:
            raise ApiError("message_not_owned_by_app")
        if msg.streaming == "stopped_by_user":
            raise ApiError("stopped_by_user")
        if msg.streaming != "streaming":
            raise ApiError("message_not_in_streaming_state")
        return channel, msg

    async def chat_append_stream(self, params: Params) -> dict[str, Any]:
        channel, msg = self._streaming_message(params)
        markdown = self.check_markdown(params.get("markdown_text")) or ""
        chunk_text, others = self.chunks(params)
        if not markdown and not chunk_text and not others:
            raise ApiError("no_text")
        msg.markdown_text = (msg.markdown_text or "") + markdown + chunk_text
        msg.chunks.extend(others)
        msg.snapshot("append_stream", self.fs.now())
        return {"channel": channel.id, "ts": msg.ts}

    async def chat_stop_stream(self, params: Params) -> dict[str, Any]:
        channel, msg = self._streaming_message(params)
        markdown = self.check_markdown(params.get("markdown_text")) or ""
        chunk_text, others = self.chunks(params)
        blocks = self.check_blocks(json_field(params, "blocks", "invalid_blocks_format"))
        msg.markdown_text = (msg.markdown_text or "") + markdown + chunk_text
        msg.chunks.extend(others)
        if blocks is not None:
            msg.blocks = blocks
        metadata = json_field(params, "metadata", "invalid_metadata_format")
        if metadata is not None:
            msg.metadata = metadata
        msg.streaming = "stopped"
        msg.snapshot("stop_stream", self.fs.now())
        return {"channel": channel.id, "ts": msg.ts, "message": self.message_api(msg)}
