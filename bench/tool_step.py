"""``discord-tools-N``: what one tool step adds to a reply, on the real Discord adapter.

N questions are answered without tools, then N more (in channels of their own) whose model first
calls ``read_url`` on the loopback page server's article and then streams the same answer. Each
reply is measured from the question to its whole answer on screen; each tool reply also from the
moment the model's calling request ended to the next request carrying the result (the step:
Parley starting the tool, the fetch and extraction, the next request built and sent) and to the
page server seeing the fetch (Parley noticing the call). The model's own extra request (its time
to the call) is the rest of what a tool step costs. 429s and discord.py's waits must stay 0: the
status line is one more snapshot through the same budgets.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.config import Config, Result
from bench.metrics import dist, figures
from bench.platforms import DiscordStack, discord_stack
from bench.workload import WARMUP, Workload, question_index
from tests.fakes.gateway import RecordedRequest, Reply
from tests.fakes.gateway_tools import FakeToolCall
from tests.fakes.pages import PageServer

# Questions from this index on get a tool step; below it, none.
_TOOLS_FROM = 5000
# A tool question before measuring: the first read_url in a process imports its HTML extractor
# (about half a second, once), which is start-up, not the loop.
_WARM_TOOL = 9000


def _replies(work: Workload, url: str) -> Callable[[RecordedRequest], Reply]:
    """The gateway: a tool question's first request calls read_url (after the model's usual time
    to first token); every other request streams the workload's answer."""
    answer = work.answer

    def reply(request: RecordedRequest) -> Reply:
        i = question_index(request.last_user_text)
        if i == WARMUP:
            return Reply(text="Ready.")
        if i is not None and i >= _TOOLS_FROM and not request.tool_results:
            return Reply(tool_calls=[FakeToolCall("read_url", {"url": url})], first_delay=work.first_delay)
        return Reply.paced(answer, work.rate, first_delay=work.first_delay)

    return reply


async def _batch(
    st: DiscordStack, indices: Sequence[int], first_channel: int
) -> tuple[list[float], list[float]]:
    """Ask every question at once, each in a channel of its own; seconds to the answer's first
    text on screen, and to the whole of it."""
    st.asked.clear()
    answered = st.adapter.events.answered  # before asking: some may be answered while we ask
    for offset, i in enumerate(indices):
        await st.ask(i, st.channels[first_channel + offset])
    await st.settle(answered + len(indices), 120 + len(indices))
    first, whole = [], []
    for trace in await st.traces():
        fig = figures(trace)
        if fig.first_text is not None:
            first.append(fig.first_text)
        if fig.final is not None and trace.tokens:
            whole.append(trace.tokens[-1][0] + fig.final - trace.asked_at)
    return first, whole


def _steps(
    gw_requests: Sequence[RecordedRequest], pages: PageServer, wanted: range
) -> tuple[list[float], list[float]]:
    """Per tool reply: calling request ended → next request (s); → the page's fetch began (s)."""
    by_question: dict[int, list[RecordedRequest]] = {}
    for r in gw_requests:
        i = question_index(r.last_user_text)
        if i is not None and i in wanted:
            by_question.setdefault(i, []).append(r)
    fetches = sorted(r.t_received for r in pages.requests)
    step, dispatch = [], []
    for calling, answering in (pair for pair in by_question.values() if len(pair) == 2):
        if calling.t_done is None:
            continue
        step.append(answering.t_received - calling.t_done)
        began = next((t for t in fetches if t >= calling.t_done), None)
        if began is not None:
            dispatch.append(began - calling.t_done)
    return step, dispatch


async def tools_scenario(cfg: Config, tmp: Path, name: str, n: int) -> Result:
    async with PageServer() as pages:
        env = {"PARLEY_FETCH_ALLOW_HOSTS": f"127.0.0.1:{pages.port}"}
        async with discord_stack(tmp, cfg.work, channels=2 * n + 1, env=env) as st:
            st.gw.default = _replies(cfg.work, f"{pages.url}/article")
            await st.ask(WARMUP, st.channels[-1])
            await st.settle(1, 60)
            await st.ask(_WARM_TOOL, st.channels[-1])
            await st.settle(2, 60)
            before = (st.rate_limited, st.dpy_waits)
            first_plain, done_plain = await _batch(st, range(n), 0)
            measured = range(_TOOLS_FROM, _TOOLS_FROM + n)
            first_tools, done_tools = await _batch(st, measured, n)
            step, dispatch = _steps(st.gw.stream_requests, pages, measured)
            return {
                "scenario": name,
                "platform": "discord",
                "replies": 2 * n,
                "first_text_plain_ms": dist(first_plain),
                "first_text_with_tool_ms": dist(first_tools),
                "added_first_text_ms_p50": _added(first_plain, first_tools),
                "answered_ms": dist(done_plain),
                "answered_with_tool_ms": dist(done_tools),
                "added_ms_p50": _added(done_plain, done_tools),
                "tool_step_ms": dist(step),
                "tool_dispatch_ms": dist(dispatch),
                "fetches": len(pages.requests) - 1,  # the warm-up's aside
                "rate_limited": st.rate_limited - before[0],
                "dpy_waits": st.dpy_waits - before[1],
                "complete": f"{len(done_plain)}/{n} plain, {len(done_tools)}/{n} with a tool step",
                "model_first_delay_ms": round(cfg.work.first_delay * 1000),
            }


def _added(plain: Sequence[float], tooled: Sequence[float]) -> float | None:
    """Milliseconds the tool step adds at the median."""
    if not plain or not tooled:
        return None
    return round((statistics.median(tooled) - statistics.median(plain)) * 1000, 1)
