"""``parley console --attach``, end to end: a subprocess (stdin not a TTY) against the fake gateway."""

from __future__ import annotations

import base64
from pathlib import Path

from tests.cli_harness import parley
from tests.fakes.gateway import FakeGateway
from tests.files_helpers import blocks_of, decoded_data_uri, encrypted_pdf, pdf, user_messages, write

ROOT = Path(__file__).resolve().parent.parent


def test_attach_summarizes_then_a_later_process_answers_follow_ups_from_memory(
    gateway: FakeGateway, env: dict[str, str], tmp_path: Path
) -> None:
    report = pdf()
    write(tmp_path / "report.pdf", report)

    first = parley("console", "--thread", "q3", "--attach", "report.pdf", cwd=tmp_path, env=env, stdin="\n")

    assert first.returncode == 0, first.stderr
    assert first.stdout == "Summary of report.pdf:\n\nYou said: Summarize this document.\n\n"
    (request,) = gateway.stream_requests
    assert request.path == "/v1/chat/completions"  # the default model speaks the OpenAI format
    (content,) = user_messages(request.json)
    assert content[0]["file"]["filename"] == "report.pdf"
    assert decoded_data_uri(content[0]["file"]["file_data"], "application/pdf") == report
    assert content[1] == {"type": "text", "text": "Summarize this document."}

    later = parley(
        "console", "--thread", "q3", "--model", "claude-sonnet-4-5", cwd=tmp_path, env=env, stdin="Risks?\n"
    )

    assert later.returncode == 0, later.stderr
    assert later.stdout == "You said: Risks?\n\n"
    follow_up = gateway.stream_requests[-1]
    assert follow_up.path == "/v1/messages"
    users = user_messages(follow_up.json)
    (doc,) = blocks_of(users[0], "document")
    assert doc["cache_control"] == {"type": "ephemeral"}
    assert base64.b64decode(doc["source"]["data"]) == report
    assert blocks_of(users[-1], "text") == [{"type": "text", "text": "Risks?"}]


def test_an_unreadable_attachment_gets_a_clear_reply_and_no_model_call(
    gateway: FakeGateway, env: dict[str, str], tmp_path: Path
) -> None:
    write(tmp_path / "locked.pdf", encrypted_pdf("s3cret"))
    result = parley("console", "--attach", "locked.pdf", cwd=tmp_path, env=env, stdin="\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "I couldn't read locked.pdf: it is password-protected. Send a copy without a password.\n\n"
    )
    assert gateway.stream_requests == []


def test_attach_a_voice_note_asks_its_words_after_the_typed_line(
    gateway: FakeGateway, env: dict[str, str], tmp_path: Path
) -> None:
    from tests.audio_helpers import ogg_opus

    note = ogg_opus(20)
    write(tmp_path / "note.ogg", note)
    gateway.transcript = "Remind me what we agreed on Friday."

    result = parley("console", "--attach", "note.ogg", cwd=tmp_path, env=env, stdin="Please answer:\n")

    assert result.returncode == 0, result.stderr
    (heard,) = gateway.transcriptions
    assert (heard.data, heard.filename, heard.model) == (note, "note.ogg", "whisper-1")
    (request,) = gateway.stream_requests
    assert request.last_user_text == "Please answer:\n\nRemind me what we agreed on Friday."
    assert result.stdout == "You said: Please answer:\n\nRemind me what we agreed on Friday.\n\n"
