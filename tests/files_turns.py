"""One turn through the whole core with files: a runtime on SQLite, the real gateway client and
the fake gateway, and the kit's recording surface."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.runtime import Runtime
from bot.settings import Settings
from bot.types import Attachment, Author, ContextMessage, ConversationKey, IncomingMessage, ReplyResult
from tests.fakes.gateway import FakeGateway, RecordedRequest, Reply
from tests.fakes.surface import RecordingSurface
from tests.files_helpers import blocks_of, user_messages


def echo_question(record: RecordedRequest) -> Reply:
    """Echo the question: the text of the last user turn after the files' fenced blocks."""
    content = user_messages(record.json)[-1]
    if isinstance(content, str):
        last = content.rsplit("```\n", 1)[-1].strip()
    else:
        last = blocks_of(content, "text")[-1]["text"]
    return Reply(text=f"You said: {last}")


async def make_runtime(gateway: FakeGateway, tmp_path: Path, **overrides: Any) -> Runtime:
    settings = Settings(
        apicore_base_url=gateway.url,
        apicore_api_key=SecretStr(gateway.api_key or ""),
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}",
        **{"parley_max_retries": 0, **overrides},
    )
    return await Runtime.create(settings)


async def ask(
    runtime: Runtime,
    text: str,
    files: Sequence[Attachment] = (),
    *,
    model: str = "claude-sonnet-4-5",
    thread: str = "t1",
    context: Sequence[ContextMessage] = (),
    message_id: str = "",
) -> ReplyResult:
    """One message from Ann in the console thread ``thread``, handled to the end."""
    msg = IncomingMessage(
        key=ConversationKey("console", "", "files", thread),
        event_id=uuid.uuid4().hex,
        author=Author("u1", "Ann"),
        text=text,
        surface=RecordingSurface(max_chars=1_000_000),
        attachments=tuple(files),
        context=tuple(context),
        platform_message_id=message_id,
        model=model,
    )
    result = await runtime.service.handle(msg)
    assert result is not None
    return result


def sent_texts(gateway: FakeGateway) -> list[str]:
    """Every text block of every user turn of the last chat request."""
    body = gateway.stream_requests[-1].json
    return [b["text"] for content in user_messages(body) for b in blocks_of(content, "text")]
