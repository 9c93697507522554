"""The tool loop end to end in the console: ``parley console`` as a subprocess (stdin not a TTY)
against the fake gateway, the page server and the test MCP server.

A link read and summarised (the article reaches the model, the page's navigation does not) and a
follow-up in a later process answered from the stored result without a second fetch; loopback and
metadata addresses refused before any request; an MCP tool in both wire formats; the step limit
with a model that never stops calling; a picture saved byte-exact and named in the reply. Stdout
holds only the replies: never a status line.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_harness import parley
from tests.fakes.gateway import FakeGateway, Reply
from tests.fakes.gateway_tools import FakeToolCall
from tests.fakes.pages import PageServer
from tests.tool_helpers import mcp_toml, random_png, read_the_article, result_text


@pytest.fixture
def pages() -> Iterator[PageServer]:
    with PageServer.in_thread() as server:
        yield server


@pytest.fixture
def env(env: dict[str, str], pages: PageServer) -> dict[str, str]:
    return {**env, "PARLEY_FETCH_ALLOW_HOSTS": f"127.0.0.1:{pages.port}"}


def test_a_link_is_read_summarised_and_remembered_for_the_follow_up(
    gateway: FakeGateway, pages: PageServer, env: dict[str, str], tmp_path: Path
) -> None:
    url = f"{pages.url}/article"
    gateway.script(
        Reply(text="Let me read it.", tool_calls=[FakeToolCall("read_url", {"url": url})]),
        Reply(text="It is about tidal power in the Severn."),
    )
    first = parley("console", "--thread", "news", cwd=tmp_path, env=env, stdin=f"what does {url} say?\n")
    assert first.returncode == 0, first.stderr
    assert first.stdout == "Let me read it.\n\nIt is about tidal power in the Severn.\n\n"  # no status line
    ask, answer = gateway.stream_requests
    assert ask.tools == ["read_url", "generate_image"]
    assert read_the_article(result_text(answer))
    assert pages.paths == ["/article"]

    gateway.script(Reply(text="Wading birds."))
    second = parley("console", "--thread", "news", cwd=tmp_path, env=env, stdin="and the critics?\n")
    assert second.returncode == 0, second.stderr
    assert second.stdout == "Wading birds.\n\n"
    follow_up = gateway.last
    assert [name for _, name, _ in follow_up.replayed_calls] == ["read_url"]
    assert read_the_article(result_text(follow_up))  # the stored result, replayed
    assert pages.paths == ["/article"]  # one fetch, in the first turn only


def test_loopback_and_metadata_addresses_are_refused_before_any_request(
    gateway: FakeGateway, pages: PageServer, env: dict[str, str], tmp_path: Path
) -> None:
    calls = [
        FakeToolCall("read_url", {"url": "http://169.254.169.254/latest/meta-data/iam/"}),
        FakeToolCall("read_url", {"url": f"http://localhost:{pages.port}/secret"}),
    ]
    gateway.script(Reply(tool_calls=calls), Reply(text="I can't read those."))
    done = parley("console", cwd=tmp_path, env=env, stdin="read these\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "I can't read those.\n\n"
    results = gateway.last.tool_results
    assert len(results) == 2 and "internal secret" not in result_text(gateway.last)
    assert pages.paths == []  # localhost is not 127.0.0.1:port: allowed hosts match exactly


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-sonnet-4-5"])
def test_an_mcp_tool_is_called_and_its_result_reaches_the_model(
    gateway: FakeGateway, env: dict[str, str], tmp_path: Path, model: str
) -> None:
    (tmp_path / "parley.toml").write_text(mcp_toml())
    gateway.script(
        Reply(tool_calls=[FakeToolCall("docs__search", {"query": "tide tables", "limit": 2})]),
        Reply(text="Two documents."),
    )
    done = parley("console", "--model", model, cwd=tmp_path, env=env, stdin="search the docs\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Two documents.\n\n"
    assert gateway.last.path == ("/v1/messages" if model.startswith("claude") else "/v1/chat/completions")
    assert "A document about tide tables (result 2 of 2)" in result_text(gateway.last)


def test_the_step_limit_holds_with_a_model_that_never_stops_calling(
    gateway: FakeGateway, pages: PageServer, env: dict[str, str], tmp_path: Path
) -> None:
    gateway.default = lambda request: Reply(
        tool_calls=[FakeToolCall("read_url", {"url": f"{pages.url}/notes.txt"})]
    )
    done = parley("console", cwd=tmp_path, env={**env, "PARLEY_TOOL_STEPS": "3"}, stdin="loop\n")
    assert done.returncode == 0, done.stderr
    assert len(gateway.stream_requests) == 3
    assert [r.json.get("tool_choice") for r in gateway.stream_requests] == [None, None, "none"]
    assert len(pages.paths) == 2  # the calls of the last request were not run
    assert "tool steps" in done.stdout


def test_a_picture_is_saved_byte_exact_and_named_in_the_reply(
    gateway: FakeGateway, env: dict[str, str], tmp_path: Path
) -> None:
    gateway.image = random_png()
    gateway.script(
        Reply(tool_calls=[FakeToolCall("generate_image", {"prompt": "a lighthouse at dusk"})]),
        Reply(text="Here is your lighthouse."),
    )
    done = parley("console", "--thread", "art", cwd=tmp_path, env=env, stdin="draw a lighthouse\n")
    assert done.returncode == 0, done.stderr
    [saved] = list(tmp_path.glob("picture-*.png"))
    assert saved.read_bytes() == gateway.image
    assert done.stdout == f"Here is your lighthouse.\n\n_(Picture saved as `{saved.name}`.)_\n\n"
    [drawn] = [r for r in gateway.requests if r.path == "/v1/images/generations"]
    assert drawn.json["prompt"] == "a lighthouse at dusk"

    # A follow-up in a later process: the model that reads images gets the picture again.
    gateway.script(Reply(text="A blue one, then."))
    again = parley("console", "--thread", "art", cwd=tmp_path, env=env, stdin="make it blue\n")
    assert again.returncode == 0, again.stderr
    assert base64.b64encode(gateway.image).decode() in gateway.last.body.decode()


def test_a_thread_that_switches_format_replays_the_calls_in_the_new_one(
    gateway: FakeGateway, pages: PageServer, env: dict[str, str], tmp_path: Path
) -> None:
    url = f"{pages.url}/notes.txt"
    gateway.script(Reply(tool_calls=[FakeToolCall("read_url", {"url": url})]), Reply(text="Thursday at ten."))
    first = parley("console", "--thread", "t", cwd=tmp_path, env=env, stdin="when is the meeting?\n")
    assert first.returncode == 0, first.stderr
    gateway.script(Reply(text="The budget sheet."))
    second = parley(
        "console",
        "--thread",
        "t",
        "--model",
        "claude-sonnet-4-5",
        cwd=tmp_path,
        env=env,
        stdin="what to bring?\n",
    )
    assert second.returncode == 0, second.stderr
    follow_up = gateway.last
    assert follow_up.path == "/v1/messages"
    [(call_id, name, arguments)] = follow_up.replayed_calls
    assert (name, arguments) == ("read_url", {"url": url})  # a tool_use block with its input object
    [result] = follow_up.tool_results
    assert result.call_id == call_id and "Bring the budget sheet." in result_text(follow_up)
    assert pages.paths == ["/notes.txt"]
