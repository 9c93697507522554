"""Helpers for the fault tests: ``parley run`` as a real child process, and raw looks at the store.

::

    with FakeGateway.in_thread() as gw, FakeSlack.in_thread() as fs:
        run = ParleyRun(tmp_path, bench_env(fs, gw, tmp_path, "socket", None))
        run.start()
        run.wait_socket(fs)            # Socket Mode: connected to the fake
        ...
        run.kill()                     # SIGKILL: no clean-up at all
        assert run.terminate() == 0    # SIGTERM: the graceful path
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tests.fakes.slack_api import FakeSlack, Message
from tests.slack_harness import is_live

T = TypeVar("T")

_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR", "USER")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(predicate: Callable[[], T], within: float = 10.0, what: str = "condition") -> T:
    end = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise TimeoutError(f"{what} not met within {within}s")
        time.sleep(0.02)


class ParleyRun:
    """One ``python -m bot run`` process; stderr goes to a file (``.stderr`` reads it)."""

    def __init__(self, cwd: Path, env: dict[str, str], name: str = "run") -> None:
        self.cwd = cwd
        self.env = {k: v for k, v in os.environ.items() if k in _KEEP}
        self.env.update(env)
        self.log = cwd / f"{name}.stderr"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ParleyRun:
        with self.log.open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "run"],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        return self

    @property
    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_socket(self, fs: FakeSlack, connects: int = 1, within: float = 20.0) -> None:
        def ready() -> bool:
            if not self.alive():
                raise AssertionError(f"parley exited early:\n{self.stderr}")
            return fs.socket_connect_count >= connects and fs.socket_connections > 0

        wait_until(ready, within, "Socket Mode connection")
        # Recovery and the listeners are set up right after the connection.
        time.sleep(0.2)

    def wait_http(self, port: int, within: float = 20.0) -> None:
        import urllib.request

        def ready() -> bool:
            if not self.alive():
                raise AssertionError(f"parley exited early:\n{self.stderr}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    return bool(r.status == 200)
            except OSError:
                return False

        wait_until(ready, within, "HTTP server")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, within: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(within)

    def wait(self, within: float = 30.0) -> int:
        """Its exit status, once it exits by itself (after a signal already sent)."""
        assert self.proc is not None
        return self.proc.wait(within)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def close(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(10)


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
