"""One turn through the whole core with files: a runtime on SQLite, the real gateway client and
the fake gateway, and a surface that keeps the text the user finally sees."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.render.surface import SurfaceLimits
from bot.runtime import Runtime
from bot.settings import Settings
from bot.types import Attachment, Author, ConversationKey, IncomingMessage, ReplyResult
from tests.fakes.gateway import FakeGateway, RecordedRequest, Reply
from tests.files_helpers import blocks_of, user_messages


class Recorder:
    """A reply surface that keeps the final text the user sees."""

    limits = SurfaceLimits(max_chars=1_000_000)

    def __init__(self) -> None:
        self.final: str | None = None

    def render(self, markdown: str) -> str:
        return markdown

    async def post(self, text: str, *, live: bool) -> str:
        await self.edit("m1", text, live=live)
        return "m1"

    async def edit(self, ref: str, text: str, *, live: bool) -> None:
        if not live:
            self.final = text

    async def set_status(self, status: str | None) -> None:
        return None


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
) -> ReplyResult:
    msg = IncomingMessage(
        key=ConversationKey("console", "", "files", thread),
        event_id=uuid.uuid4().hex,
        author=Author("u1", "Ann"),
        text=text,
        surface=Recorder(),
        attachments=tuple(files),
        model=model,
    )
    result = await runtime.service.handle(msg)
    assert result is not None
    return result


def sent_texts(gateway: FakeGateway) -> list[str]:
    """Every text block of every user turn of the last chat request."""
    body = gateway.stream_requests[-1].json
    return [b["text"] for content in user_messages(body) for b in blocks_of(content, "text")]
