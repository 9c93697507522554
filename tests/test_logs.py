"""Logging: plain or JSON lines on stderr, structured fields as JSON keys, secrets masked."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import logs
from bot.settings import load_settings

SECRETS = {
    "APICORE_API_KEY": "sk-gateway-secret-0001",
    "SLACK_BOT_TOKEN": "xoxb-1111-2222-secretbot",
    "SLACK_APP_TOKEN": "xapp-1-A1-3333-secretapp",
    "SLACK_SIGNING_SECRET": "signing-secret-4444",
    "DISCORD_BOT_TOKEN": "MTIz.discord.secret5555",
}


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _configure(tmp_path: Path, json_format: bool) -> None:
    env = {**SECRETS, "PARLEY_LOG_JSON": "true" if json_format else "false"}
    logs.configure(load_settings(env, cwd=tmp_path))


@pytest.mark.parametrize("json_format", [False, True], ids=["plain", "json"])
def test_a_configured_secret_is_masked_wherever_it_appears(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], json_format: bool
) -> None:
    _configure(tmp_path, json_format)
    log = logging.getLogger("parley.test")
    every = " ".join(SECRETS.values())
    log.warning("a library echoed %s", every)
    try:
        raise RuntimeError(f"request failed with {SECRETS['SLACK_BOT_TOKEN']}")
    except RuntimeError:
        log.exception("and a traceback")
    log.info("structured", extra={"url": f"https://x/?token={SECRETS['DISCORD_BOT_TOKEN']}"})
    err = capsys.readouterr().err
    for secret in SECRETS.values():
        assert secret not in err
    assert "RuntimeError: request failed with ***" in err
    lines = err.splitlines()
    if json_format:
        entries = [json.loads(line) for line in lines if line.startswith("{")]
        assert [e["message"].split("\n")[0] for e in entries] == [
            "a library echoed *** *** *** *** ***",
            "and a traceback",
            "structured",
        ]
        assert entries[2]["url"] == "https://x/?token=***"
    else:
        assert lines[0].endswith("WARNING parley.test: a library echoed *** *** *** *** ***")


def test_json_lines_carry_the_structured_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _configure(tmp_path, json_format=True)
    logging.getLogger("parley.conversation").info(
        "reply conversation=7 …",
        extra={"event": "reply", "conversation_id": 7, "first_token_s": 0.25, "first_visible_s": None},
    )
    (line,) = capsys.readouterr().err.splitlines()
    entry = json.loads(line)
    assert entry["level"] == "INFO" and entry["logger"] == "parley.conversation"
    assert entry["time"].endswith("+00:00")
    assert {k: entry[k] for k in ("event", "conversation_id", "first_token_s", "first_visible_s")} == {
        "event": "reply",
        "conversation_id": 7,
        "first_token_s": 0.25,
        "first_visible_s": None,
    }
    # Nothing of the LogRecord's own bookkeeping leaks in as a field.
    assert not {"args", "msg", "levelno", "pathname", "created"} & set(entry)
