"""Process faults with a real ``parley run``: SIGKILL mid-reply and the next start's recovery, and
SIGTERM with a deadline long enough (the reply finishes) or too short (it says interrupted).

What the user saw is read from the fake Slack's messages; what the history holds, from the
SQLite file itself.
"""

from __future__ import annotations

import time
from pathlib import Path

from bot.notes import INTERRUPTED
from tests.fakes.gateway import FakeGateway, Reply
from tests.fakes.run import ParleyProcess, wait_until
from tests.fakes.slack_api import DEFAULT_CHANNEL, FakeSlack
from tests.reliability_harness import finished, replies, sqlite_rows, thread_replies
from tests.slack_harness import bench_env, is_live

ANSWER = " ".join(f"word{i}" for i in range(80))


def words_shown(fs: FakeSlack, thread_ts: str, at_least: int) -> bool:
    msgs = thread_replies(fs, DEFAULT_CHANNEL, thread_ts)
    return bool(msgs) and len(msgs[-1].visible_text().split()) >= at_least


def test_kill_9_mid_reply_then_the_next_start_closes_it_as_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "parley.db"
    with (
        FakeGateway.in_thread(default=Reply.paced(ANSWER, tokens_per_s=10)) as gw,
        FakeSlack.in_thread() as fs,
    ):
        env = bench_env(fs, gw, tmp_path, "socket", {"PARLEY_HTTP_PORT": "0"})
        first = ParleyProcess(tmp_path, env, "first").start()
        second = ParleyProcess(tmp_path, env, "second")
        try:
            first.wait_socket(fs)
            event = fs.app_mention("tell me a long story")
            fs.run(fs.deliver_event(event, mode="socket"))
            wait_until(lambda: words_shown(fs, event["ts"], 5), 15, "partial answer")
            first.kill()
            time.sleep(0.3)
            (message,) = thread_replies(fs, DEFAULT_CHANNEL, event["ts"])
            shown = message.visible_text()
            assert is_live(message) and ANSWER.startswith(shown) and shown != ANSWER
            assert [r["status"] for r in replies(db)] == ["streaming"]

            second.start()
            second.wait_socket(fs, connects=2)
            (closed,) = wait_until(lambda: finished(fs, DEFAULT_CHANNEL, event["ts"]), 15, "recovery")
            # The user keeps what they saw, followed by an honest note, and the Stop button is gone.
            assert closed.ts == message.ts
            assert closed.visible_text() == f"{shown.rstrip()}\n\n{INTERRUPTED}"
            assert not is_live(closed)
            wait_until(lambda: replies(db)[0]["status"] == "interrupted", 10, "the row closed")
            (row,) = replies(db)
            assert (row["status"], row["text"]) == ("interrupted", shown)
            users = sqlite_rows(db, "SELECT text, status FROM messages WHERE role = 'user'")
            assert [(u["text"], u["status"]) for u in users] == [("tell me a long story", "complete")]
            assert len(gw.stream_requests) == 1  # recovery does not ask the model again
            assert second.terminate() == 0
            assert "closed 1 interrupted slack replies" in second.stderr
        finally:
            first.close()
            second.close()


def test_sigterm_lets_the_reply_in_flight_finish_and_takes_no_new_events(tmp_path: Path) -> None:
    db = tmp_path / "parley.db"
    answer = " ".join(f"word{i}" for i in range(40))
    with (
        FakeGateway.in_thread(default=Reply.paced(answer, tokens_per_s=25)) as gw,
        FakeSlack.in_thread(ack_timeout=0.5, max_retries=1, connect_wait=0.5) as fs,
    ):
        env = bench_env(
            fs, gw, tmp_path, "socket", {"PARLEY_HTTP_PORT": "0", "PARLEY_SHUTDOWN_DEADLINE": "20"}
        )
        run = ParleyProcess(tmp_path, env).start()
        try:
            run.wait_socket(fs)
            event = fs.app_mention("a question before shutdown")
            fs.run(fs.deliver_event(event, mode="socket"))
            wait_until(lambda: words_shown(fs, event["ts"], 3), 15, "partial answer")
            started = time.monotonic()
            run.signal(15)  # SIGTERM
            wait_until(lambda: fs.socket_connections == 0, 10, "intake closed")
            late = fs.app_mention("a question after SIGTERM")
            late_delivery = fs.run(fs.deliver_event(late, mode="socket"))
            assert run.wait() == 0  # the one SIGTERM, handled
            assert time.monotonic() - started < 15
            (message,) = finished(fs, DEFAULT_CHANNEL, event["ts"]) or []
            assert message.visible_text() == answer
            assert [(r["status"], r["text"]) for r in replies(db)] == [("complete", answer)]
            # The late event was never acknowledged (so Slack retries it elsewhere) nor answered.
            fs.run(late_delivery.wait_done(within=5))
            assert not late_delivery.acked
            assert thread_replies(fs, DEFAULT_CHANNEL, late["ts"]) == []
            assert len(gw.stream_requests) == 1
        finally:
            run.close()


def test_sigterm_with_a_short_deadline_edits_the_reply_to_say_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "parley.db"
    with (
        FakeGateway.in_thread(default=Reply.paced(ANSWER, tokens_per_s=10)) as gw,
        FakeSlack.in_thread() as fs,
    ):
        env = bench_env(
            fs, gw, tmp_path, "socket", {"PARLEY_HTTP_PORT": "0", "PARLEY_SHUTDOWN_DEADLINE": "0.5"}
        )
        run = ParleyProcess(tmp_path, env).start()
        try:
            run.wait_socket(fs)
            event = fs.app_mention("a long one")
            fs.run(fs.deliver_event(event, mode="socket"))
            wait_until(lambda: words_shown(fs, event["ts"], 3), 15, "partial answer")
            assert run.terminate(within=20) == 0
            (message,) = finished(fs, DEFAULT_CHANNEL, event["ts"]) or []
            (row,) = replies(db)
            assert row["status"] == "interrupted"
            assert row["text"] and ANSWER.startswith(row["text"]) and row["text"] != ANSWER
            assert message.visible_text() == f"{row['text'].rstrip()}\n\n{INTERRUPTED}"
            assert gw.stream_requests[0].disconnected_at is not None  # the generation was stopped
        finally:
            run.close()
