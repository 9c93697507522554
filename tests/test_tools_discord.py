"""The tool loop on Discord: the real discord.py adapter against the fake Discord, the fake
gateway, the page server and the test MCP server.

Parallel calls of one step running at once, with the status line in the thread's message timeline
and never in the final text; an MCP tool's result reaching the model; the step limit; a follow-up
in the thread answered from the stored result; a picture attached to the reply's message
byte-exact (an edit that carries the file). discord.py never has to wait on a rate-limit bucket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.discord_harness import DiscordBench, discord_bench
from tests.fakes.gateway import Reply
from tests.fakes.gateway_tools import FakeToolCall
from tests.fakes.pages import PageServer
from tests.tool_helpers import mcp_toml, random_png, read_the_article, result_text


@pytest.fixture
async def bench(tmp_path: Path, pages: PageServer) -> AsyncIterator[DiscordBench]:
    (tmp_path / "parley.toml").write_text(mcp_toml("docs"))
    env = {"PARLEY_FETCH_ALLOW_HOSTS": f"127.0.0.1:{pages.port}", "PARLEY_TOOL_STEPS": "3"}
    async with discord_bench(tmp_path, env=env) as started:
        yield started
        assert started.dpy_waits == 0


async def test_parallel_calls_run_at_once_with_their_status_line(
    bench: DiscordBench, pages: PageServer
) -> None:
    slow = [FakeToolCall("read_url", {"url": f"{pages.url}/slow?seconds={s}"}) for s in ("1.5", "1.6")]
    bench.gw.script(Reply(tool_calls=slow), Reply(text="Both pages say: Finally."))
    question = await bench.mention(bench.channel, bench.alice, "read both slow pages")
    await bench.settle(answered=1)
    [reply] = bench.replies(bench.thread_of(question))
    assert reply.content == "Both pages say: Finally."
    # Both fetches began before either could have ended: they overlapped.
    first, second = sorted(r.t_received for r in pages.requests)
    assert second - first < 1.5
    status = "_Reading 127.0.0.1/slow… · Reading 127.0.0.1/slow…_"
    assert status in [state.content for state in reply.history], [s.content for s in reply.history]
    assert len(bench.gw.last.tool_results) == 2


async def test_an_mcp_tool_and_a_follow_up_from_the_stored_result(
    bench: DiscordBench, pages: PageServer
) -> None:
    gw = bench.gw
    gw.script(
        Reply(
            tool_calls=[
                FakeToolCall("docs__search", {"query": "ferries"}),
                FakeToolCall("read_url", {"url": f"{pages.url}/article"}),
            ]
        ),
        Reply(text="Three documents and an article."),
    )
    question = await bench.mention(bench.channel, bench.alice, "search the docs and read the article")
    await bench.settle(answered=1)
    thread = bench.thread_of(question)
    assert "A document about ferries (result 3 of 3)" in result_text(gw.last)
    assert read_the_article(result_text(gw.last))

    gw.script(Reply(text="The lagoon was to run for 120 years."))
    await bench.fd.user_says(thread, bench.alice, "how long would the lagoon run?")
    await bench.settle(answered=2)
    assert sorted(name for _, name, _ in gw.last.replayed_calls) == ["docs__search", "read_url"]
    assert read_the_article(result_text(gw.last))
    assert pages.paths == ["/article"]
    assert bench.reply_text(thread).endswith("The lagoon was to run for 120 years.")


async def test_the_step_limit_holds(bench: DiscordBench, pages: PageServer) -> None:
    bench.gw.default = Reply(tool_calls=[FakeToolCall("read_url", {"url": f"{pages.url}/notes.txt"})])
    question = await bench.mention(bench.channel, bench.alice, "keep reading")
    await bench.settle(answered=1)
    requests = bench.gw.stream_requests
    assert [r.json.get("tool_choice") for r in requests] == [None, None, "none"]  # PARLEY_TOOL_STEPS=3
    assert pages.paths == ["/notes.txt", "/notes.txt"]
    assert "tool steps" in bench.reply_text(bench.thread_of(question))


async def test_a_picture_is_attached_to_the_reply_byte_exact(bench: DiscordBench) -> None:
    gw = bench.gw
    gw.image = random_png(side=160)
    gw.script(
        Reply(tool_calls=[FakeToolCall("generate_image", {"prompt": "a lighthouse"})]),
        Reply(text="Here is your lighthouse."),
    )
    question = await bench.mention(bench.channel, bench.alice, "draw a lighthouse")
    await bench.settle(answered=1)
    [reply] = bench.replies(bench.thread_of(question))
    assert reply.content == "Here is your lighthouse."  # the attachment shows itself: no note
    [attached] = reply.attachments
    assert attached.data == gw.image
    assert attached.filename.startswith("picture-") and attached.content_type == "image/png"
    # The final edit still took the Stop button away; the answer's feedback buttons came instead.
    buttons = [button["custom_id"] for row in reply.components for button in row["components"]]
    assert [b.rsplit(":", 1)[1] for b in buttons] == ["up", "down"]
    assert all(b.startswith("parley:feedback:") for b in buttons)
