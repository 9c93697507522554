"""Database faults: another process holding SQLite's write lock (no error reaches the user), and a
database that cannot be reached (a clear one-line failure at start, /healthz 503 and an honest
reply while running)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import aiohttp

from bot.notes import DATABASE_DOWN
from bot.types import ConversationKey, Outcome
from tests.cli_harness import one_clear_line, parley
from tests.fakes.gateway import Reply
from tests.fakes.run import free_port
from tests.fakes.slack_api import DEFAULT_CHANNEL, OTHER_CHANNEL
from tests.slack_harness import SlackBench, slack_bench

TEAM = "T0FAKE0001"

# A second process that writes to Parley's database: first holds the write lock for a long
# while, then commits many short write transactions, as a busy neighbour would.
LOCKER = textwrap.dedent(
    """
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
    conn.execute("CREATE TABLE IF NOT EXISTS neighbour (n INTEGER)")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO neighbour VALUES (0)")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    conn.execute("COMMIT")
    end = time.monotonic() + float(sys.argv[3])
    n = 0
    while time.monotonic() < end:
        n += 1
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO neighbour VALUES (?)", (n,))
        time.sleep(0.05)
        conn.execute("COMMIT")
    print("done", n, flush=True)
    """
)


async def test_a_second_process_holding_the_write_lock_delays_but_never_fails_a_reply(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "socket") as bench:
        fs, gw = bench.fs, bench.gw
        gw.default = Reply.paced("an answer written while the database was busy", tokens_per_s=40)
        locker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            LOCKER,
            str(tmp_path / "parley.db"),
            "2",  # seconds holding the lock outright (SQLite's busy timeout is 5 s)
            "1.5",  # then seconds of short writes
            stdout=subprocess.PIPE,
        )
        assert locker.stdout is not None
        assert (await locker.stdout.readline()).strip() == b"locked"
        channels = [DEFAULT_CHANNEL, OTHER_CHANNEL] * 2
        events = [fs.app_mention(f"question {i}", channel=channel) for i, channel in enumerate(channels)]
        for event in events:
            await bench.deliver(event)
        for event in events:
            channel = event["channel"]
            (reply,) = await bench.reply_in(channel, event["ts"], within=30)
            assert fs.visible_text(channel, reply.ts) == "an answer written while the database was busy"
        out, _ = await locker.communicate()
        assert locker.returncode == 0 and out.startswith(b"done")
        await bench.settle(4)
        for event in events:
            stored = await bench.stored(ConversationKey("slack", TEAM, event["channel"], event["ts"]))
            assert [m.status for m in stored] == [Outcome.COMPLETE, Outcome.COMPLETE]


def test_an_unreachable_database_fails_start_with_one_clear_line(tmp_path: Path) -> None:
    closed = free_port()
    base = {
        "APICORE_API_KEY": "test-key",
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_APP_TOKEN": "xapp-1",
        "PARLEY_HTTP_PORT": "0",
    }
    pg = parley(
        "run",
        cwd=tmp_path,
        env={**base, "DATABASE_URL": f"postgresql+asyncpg://parley:hunter2@127.0.0.1:{closed}/p"},
    )
    assert pg.returncode == 1
    line = one_clear_line(pg.stderr)
    assert line.startswith(
        f"parley: DATABASE_URL: cannot connect to postgresql+asyncpg://parley:***@127.0.0.1:{closed}/p"
    )
    assert "hunter2" not in pg.stderr
    (tmp_path / "not-a-file.db").mkdir()
    sqlite = parley("run", cwd=tmp_path, env={**base, "DATABASE_URL": "sqlite+aiosqlite:///not-a-file.db"})
    assert sqlite.returncode == 1
    assert one_clear_line(sqlite.stderr).startswith(
        "parley: DATABASE_URL: cannot connect to sqlite+aiosqlite:///"
    )


def unplug(tmp: Path) -> None:
    """The database file goes away (a volume unmounted) and its path now names a directory."""
    aside = tmp / "aside"
    aside.mkdir()
    for path in tmp.glob("parley.db*"):
        shutil.move(path, aside / path.name)
    (tmp / "parley.db").mkdir()


def plug(tmp: Path) -> None:
    (tmp / "parley.db").rmdir()
    for path in (tmp / "aside").iterdir():
        shutil.move(path, tmp / path.name)


async def health(bench: SlackBench) -> tuple[int, dict[str, str]]:
    assert bench.server is not None
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{bench.server.port}/healthz") as response,
    ):
        return response.status, await response.json()


async def test_losing_the_database_while_running_is_a_503_and_an_honest_reply(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "http") as bench:
        fs = bench.fs
        assert (await health(bench))[0] == 200
        # The database file goes away (a volume unmounted): pooled connections are dropped, and
        # the path now names something SQLite cannot open.
        await bench.runtime.store.engine.dispose()
        unplug(tmp_path)
        status, body = await health(bench)
        assert status == 503 and body["database"].startswith("unreachable")

        event = fs.app_mention("anyone there?")
        await bench.deliver(event)
        (reply,) = await bench.reply_in(DEFAULT_CHANNEL, event["ts"])
        assert fs.visible_text(DEFAULT_CHANNEL, reply.ts) == DATABASE_DOWN
        assert bench.gw.stream_requests == []  # nothing is answered without the history

        plug(tmp_path)
        assert (await health(bench))[0] == 200
        again = fs.app_mention("and now?")
        await bench.deliver(again)
        (answer,) = await bench.reply_in(DEFAULT_CHANNEL, again["ts"])
        assert fs.visible_text(DEFAULT_CHANNEL, answer.ts) == "You said: and now?"
