"""Secrets never leave: a whole ``parley run`` conversation (answers, a gateway error that echoes
the key, a file download with the bot token, a slash command) at DEBUG log level, then every
place a secret could end up is scanned for the configured tokens, key and signing secret: all
log output, every row of every table, /metrics and /healthz, what users saw in Slack, and what
was sent to the model."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from tests.cli_harness import parley
from tests.fakes.gateway import FakeGateway, Reply
from tests.fakes.run import ParleyProcess, free_port, wait_until
from tests.fakes.slack_api import DEFAULT_CHANNEL, FakeSlack
from tests.reliability_harness import dump_sqlite, finished
from tests.slack_harness import bench_env

SECRETS = {
    "APICORE_API_KEY": "sk-parley-TESTKEY-7f3a9c1e5b2d",
    "SLACK_BOT_TOKEN": "xoxb-1111-TESTBOT-abcdEFGH9876",
    "SLACK_APP_TOKEN": "xapp-1-A0APP00001-TESTAPP-zyxw5432",
    "SLACK_SIGNING_SECRET": "signing-TESTSECRET-0a1b2c3d4e",
}
# Distinctive pieces: a secret cut short or re-encoded must not show either.
FRAGMENTS = ("TESTKEY", "TESTBOT", "TESTAPP", "TESTSECRET")


def fetch(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())
    except urllib.error.HTTPError as exc:  # /healthz may answer 503: its body counts too
        return str(exc.read().decode())


def test_no_secret_in_logs_errors_database_metrics_or_messages(tmp_path: Path) -> None:
    key = SECRETS["APICORE_API_KEY"]
    with (
        FakeGateway.in_thread(api_key=key) as gw,
        FakeSlack.in_thread(
            bot_token=SECRETS["SLACK_BOT_TOKEN"],
            app_token=SECRETS["SLACK_APP_TOKEN"],
            signing_secret=SECRETS["SLACK_SIGNING_SECRET"],
        ) as fs,
    ):
        port = free_port()
        extra = {"PARLEY_HTTP_PORT": str(port), "PARLEY_LOG_LEVEL": "DEBUG", **SECRETS}
        env = bench_env(fs, gw, tmp_path, "socket", extra)
        run = ParleyProcess(tmp_path, env).start()
        try:
            run.wait_socket(fs)
            run.wait_http(port)
            gw.script(
                Reply(text="the first answer"),
                # A gateway that echoes the key back in its error (some do).
                Reply.http_error(401, f"invalid key {key} (Authorization: Bearer {key})"),
            )
            first = fs.app_mention(f"hello, my token is {SECRETS['SLACK_BOT_TOKEN'][:4]}…")
            fs.run(fs.deliver_event(first, mode="socket"))
            wait_until(lambda: finished(fs, DEFAULT_CHANNEL, first["ts"]), 15, "first answer")
            upload = fs.add_file(b"a small text file", "notes.txt", mimetype="text/plain")
            second = fs.app_mention("and this file?", files=[upload])
            fs.run(fs.deliver_event(second, mode="socket"))
            wait_until(lambda: finished(fs, DEFAULT_CHANNEL, second["ts"]), 15, "second answer")
            fs.run(fs.slash_command("/parley", "usage", mode="socket"))
            wait_until(lambda: fs.responses, 10, "slash command answer")
            metrics = fetch(f"http://127.0.0.1:{port}/metrics")
            health = fetch(f"http://127.0.0.1:{port}/healthz")
            assert run.terminate() == 0
        finally:
            run.close()
        # A CLI error path too: the gateway refuses the key, echoing it.
        gw.script_path("/v1/models", Reply.http_error(401, f"bad key {key}"))
        models = parley("models", cwd=tmp_path, env=env)
        assert models.returncode != 0

        shown = [m.visible_text() for m in fs.bot_messages()] + [json.dumps(r.payload) for r in fs.responses]
        sent_to_model = [r.body.decode(errors="replace") for r in gw.stream_requests]
        downloads = [d for d in fs.file_downloads if d.authorized]
    assert "the first answer" in shown[0] and "rejected Parley's API key" in shown[1]
    assert downloads, "the file was downloaded with the bot token"
    assert "parley_replies_finished" in metrics
    places = {
        "parley run stderr": run.stderr,
        "parley models stderr": models.stderr + models.stdout,
        "database": dump_sqlite(tmp_path / "parley.db"),
        "/metrics": metrics,
        "/healthz": health,
        "Slack messages": "\n".join(shown),
        "prompts": "\n".join(sent_to_model),
    }
    assert "DEBUG" in places["parley run stderr"]  # the scan read the chattiest logs there are
    for where, text in places.items():
        for name, secret in SECRETS.items():
            assert secret not in text, f"{name} found in {where}"
        for fragment in FRAGMENTS:
            assert fragment not in text, f"{fragment!r} found in {where}"
