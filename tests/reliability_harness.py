"""Helpers for the fault tests: raw looks at the store and at the fake Slack's threads.

``parley run`` itself is :class:`tests.fakes.run.ParleyProcess`.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from tests.fakes.slack_api import FakeSlack, Message
from tests.slack_harness import is_live


def sqlite_rows(db: Path, sql: str, *args: Any) -> list[sqlite3.Row]:
    """Rows straight from a SQLite file (read-only, while Parley may be writing)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return list(conn.execute(sql, args))
    finally:
        conn.close()


def replies(db: Path) -> list[sqlite3.Row]:
    return sqlite_rows(
        db, "SELECT id, status, text, error FROM messages WHERE role = 'assistant' ORDER BY id"
    )


def dump_sqlite(db: Path) -> str:
    """Every row of every table, as text (for scanning for secrets)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        out = []
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                out.append(f"{table}: {row!r}")
        return "\n".join(out)
    finally:
        conn.close()


def thread_replies(fs: FakeSlack, channel: str, thread_ts: str | None) -> list[Message]:
    """The bot's messages in a thread, oldest first (safe while the fake runs in its thread)."""
    for _ in range(100):
        try:
            msgs = fs.bot_messages(channel)
            break
        except RuntimeError:  # the fake's loop added a message meanwhile
            time.sleep(0.001)
    return [m for m in msgs if m.thread_ts == thread_ts and not m.deleted]


def finished(fs: FakeSlack, channel: str, thread_ts: str | None, count: int = 1) -> list[Message] | None:
    """The bot's messages in a thread once there are ``count`` and none is live or a placeholder."""
    msgs = thread_replies(fs, channel, thread_ts)
    if len(msgs) < count or any(is_live(m) or m.visible_text() in ("", "…") for m in msgs):
        return None
    return msgs
