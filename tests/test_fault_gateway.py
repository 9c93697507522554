"""Gateway faults end to end through the Slack adapter: failures before the first token are
retried within bounds; later ones keep the partial answer with a note. Whatever happens, the
user ends up with one finished message (no "…", no Stop button) and the history says what
happened."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.store.models import Message
from bot.types import ConversationKey, Outcome
from tests.fakes.gateway import Reply
from tests.fakes.slack_api import DEFAULT_CHANNEL
from tests.slack_harness import SlackBench, is_live, slack_bench

TEAM = "T0FAKE0001"
TEXT = "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9"
FIVE = "w0 w1 w2 w3 w4"
CUT = "_(The answer was cut off: the model's stream ended early.)_"
BROKE = "_(The answer broke off:"
# Error events in the shapes providers send them mid-stream.
TOOL_USE_FAILED = {
    "error": {
        "message": "Tool choice is required, but model did not call a tool",
        "type": "invalid_request_error",
        "code": "tool_use_failed",
        "failed_generation": "",
    }
}
RATE_LIMITED = {
    "error": {
        "message": "Rate limit reached for model `llama-3.3-70b-versatile` in organization `org_01` "
        "on tokens per minute (TPM): Limit 6000, Used 5876, Requested 412. Please try again in 2.88s.",
        "type": "tokens",
        "code": "rate_limit_exceeded",
    }
}
TOO_LONG = {
    "type": "error",
    "error": {
        "type": "invalid_request_error",
        "message": "prompt is too long: 210644 tokens > 200000 maximum",
    },
}


@dataclass
class Case:
    replies: list[Reply]
    shown: str  # what the user finally sees
    outcome: Outcome  # the stored reply's status
    stored: str  # the stored answer text
    requests: int  # gateway requests made (retries included)
    error: str | None = None  # a word the stored error must contain
    env: dict[str, str] = field(default_factory=dict)


CASES = {
    "429 then an answer": Case(
        [Reply.http_error(429, "slow down", retry_after=0.1), Reply(text=TEXT)],
        TEXT,
        Outcome.COMPLETE,
        TEXT,
        2,
    ),
    "503 twice then an answer": Case(
        [Reply.http_error(503, "no upstream"), Reply.http_error(502, shape="empty"), Reply(text=TEXT)],
        TEXT,
        Outcome.COMPLETE,
        TEXT,
        3,
    ),
    "no first token in time, then an answer": Case(
        [Reply(text=TEXT, first_delay=3.0), Reply(text=TEXT)],
        TEXT,
        Outcome.COMPLETE,
        TEXT,
        2,
        env={"PARLEY_FIRST_TOKEN_TIMEOUT": "0.4"},
    ),
    "dropped before the first token, then an answer": Case(
        [Reply(text=TEXT, drop_after=0), Reply(text=TEXT)], TEXT, Outcome.COMPLETE, TEXT, 2
    ),
    "429 past the retries": Case(
        [Reply.http_error(429, retry_after=0.05)] * 3,
        "⚠️ The model is rate limited right now; try again shortly.",
        Outcome.ERROR,
        "",
        3,
        error="RateLimited",
    ),
    "an answer that is not an event stream": Case(
        [Reply.chunks(b"<html><body>502 Bad Gateway</body></html>")] * 3,
        "⚠️ The answer stream broke off.",
        Outcome.ERROR,
        "",
        3,
        error="StreamBroken",
    ),
    "dropped mid-answer": Case(
        [Reply(text=TEXT, drop_after=5)], f"{FIVE}\n\n{CUT}", Outcome.TRUNCATED, f"{FIVE} ", 1, "StreamBroken"
    ),
    "dropped mid-answer (Anthropic format)": Case(
        [Reply(text=TEXT, drop_after=5)],
        f"{FIVE}\n\n{CUT}",
        Outcome.TRUNCATED,
        f"{FIVE} ",
        1,
        "StreamBroken",
        env={"PARLEY_MODEL": "claude-sonnet-4-5"},
    ),
    "stalled mid-answer": Case(
        [Reply(text=TEXT, stall_after=5, ping_interval=0.1)],
        f"{FIVE}\n\n{CUT}",
        Outcome.TRUNCATED,
        f"{FIVE} ",
        1,
        "GatewayTimeout",
        env={"PARLEY_IDLE_TIMEOUT": "0.5"},
    ),
    "stalled mid-answer, no keep-alives": Case(
        # The idle timeout is shorter than the first-token one, and nothing arrives to check it on:
        # the stall must still end at the idle timeout, not at the first-token one (30 s here).
        [Reply(text=TEXT, stall_after=5)],
        f"{FIVE}\n\n{CUT}",
        Outcome.TRUNCATED,
        f"{FIVE} ",
        1,
        "GatewayTimeout",
        env={"PARLEY_IDLE_TIMEOUT": "0.5", "PARLEY_FIRST_TOKEN_TIMEOUT": "30"},
    ),
    "an error event mid-answer": Case(
        [Reply(text=TEXT, error_after=5)],
        f"{FIVE}\n\n{BROKE} The model reported an error while answering: upstream stream failed.)_",
        Outcome.ERROR,
        f"{FIVE} ",
        1,
        "UpstreamError: stream error (upstream_error/bad_response_body): upstream stream failed",
    ),
    # The gateway's own reason, where no sentence of ours fits (a Groq-style error, sent as a
    # data: line this time).
    "a rejected tool choice mid-answer": Case(
        [Reply(text=TEXT, error_after=5, error=TOOL_USE_FAILED, error_as_data=True)],
        f"{FIVE}\n\n{BROKE} The gateway rejected the request: "
        "Tool choice is required, but model did not call a tool.)_",
        Outcome.ERROR,
        f"{FIVE} ",
        1,
        "(invalid_request_error/tool_use_failed): Tool choice is required, but model did not call a tool",
    ),
    "overloaded mid-answer (Anthropic format)": Case(
        [Reply(text=TEXT, error_after=5)],
        f"{FIVE}\n\n{BROKE} The model is overloaded or failing upstream; try again shortly.)_",
        Outcome.ERROR,
        f"{FIVE} ",
        1,
        "OverloadedError: stream error (overloaded_error): Overloaded",
        env={"PARLEY_MODEL": "claude-sonnet-4-5"},
    ),
    "rate limited mid-answer": Case(
        [Reply(text=TEXT, error_after=5, error=RATE_LIMITED)],
        f"{FIVE}\n\n{BROKE} The model is rate limited right now; try again shortly.)_",
        Outcome.ERROR,
        f"{FIVE} ",
        1,
        "(tokens/rate_limit_exceeded): Rate limit reached",
    ),
    "context too long mid-answer (Anthropic format)": Case(
        [Reply(text=TEXT, error_after=5, error=TOO_LONG)],
        f"{FIVE}\n\n{BROKE} The request is too large for the model (try fewer or smaller files).)_",
        Outcome.ERROR,
        f"{FIVE} ",
        1,
        "RequestTooLarge: stream error (invalid_request_error): prompt is too long",
        env={"PARLEY_MODEL": "claude-sonnet-4-5"},
    ),
    "garbage mid-answer is skipped": Case(
        [Reply(text=TEXT, garbage_after=3)], TEXT, Outcome.COMPLETE, TEXT, 1
    ),
    "no stop reason": Case([Reply(text=TEXT, finish=None)], f"{TEXT}\n\n{CUT}", Outcome.TRUNCATED, TEXT, 1),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_gateway_fault(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    env = {"PARLEY_MAX_RETRIES": "2", **case.env}
    async with slack_bench(tmp_path, "socket", env=env) as bench:
        fs, gw = bench.fs, bench.gw
        gw.script(*case.replies)
        event = fs.app_mention("a question")
        await bench.deliver(event)
        (reply,) = await bench.reply_in(DEFAULT_CHANNEL, event["ts"])
        await bench.settle(1)

        assert fs.visible_text(DEFAULT_CHANNEL, reply.ts) == case.shown
        assert not is_live(reply)
        assert len(bench.bot_messages(DEFAULT_CHANNEL, event["ts"])) == 1
        assert len(gw.stream_requests) == case.requests

        stored = await bench.stored(ConversationKey("slack", TEAM, DEFAULT_CHANNEL, event["ts"]))
        assert [(m.role, m.status) for m in stored] == [
            ("user", Outcome.COMPLETE),
            ("assistant", case.outcome),
        ]
        assert stored[1].text == case.stored
        rows = await bench.runtime.store.replies.streaming(platform="slack")
        assert rows == []  # nothing left for recovery
        error = await _stored_error(bench, stored[1].id)
        if case.error is None:
            assert error is None
        else:
            assert error is not None and case.error in error


async def _stored_error(bench: SlackBench, message_id: int) -> str | None:
    async with bench.runtime.store.engine.connect() as conn:
        query = select(Message.error).where(Message.id == message_id)
        value: str | None = (await conn.execute(query)).scalar_one()
    return value
