"""The fake gateway in a process of its own, so its CPU time is not counted as Parley's.

    python -m bench.gateway_proc TOKENS RATE FIRST_DELAY   # prints its URL, serves until stdin closes

RATE 0 sends the whole answer as fast as it can (a buffered, CPU-bound stream). A line
``streams`` on its stdin asks when each stream was asked for and sent (see
:meth:`GatewayChild.streams`): ``time.monotonic`` is the system's monotonic clock on Linux, so
the parent can set those times beside its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.workload import make_answer, question_index
from tests.fakes.gateway import FakeGateway, RecordedRequest, Reply

ROOT = Path(__file__).resolve().parent.parent


async def _serve(tokens: int, rate: float, first_delay: float) -> None:
    text = make_answer(tokens)
    delay = 1.0 / rate if rate > 0 else 0.0

    def answer(_: RecordedRequest) -> Reply:
        return Reply(text=text, delay=delay, first_delay=first_delay)

    async with FakeGateway(default=answer) as gw:
        print(gw.url, flush=True)
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):  # "" once stdin closes
            if line.strip() == "streams":
                timings = [asdict(_timing(r)) for r in gw.requests if r.timeline]
                print(json.dumps(timings), flush=True)
        gw.requests.clear()


@dataclass(frozen=True, slots=True)
class StreamTiming:
    """One answer as the gateway sent it (``time.monotonic`` of the gateway's process)."""

    question: int | None  # bench.workload.question_index of the request's last user text
    received: float  # the request arrived
    first_token: float
    last_token: float


def _timing(record: RecordedRequest) -> StreamTiming:
    (first, _), (last, _) = record.timeline[0], record.timeline[-1]
    return StreamTiming(question_index(record.last_user_text), record.t_received, first, last)


@dataclass(frozen=True, slots=True)
class GatewayChild:
    url: str
    _child: subprocess.Popen[str]

    def streams(self) -> list[StreamTiming]:
        """Every answer streamed so far, with its times."""
        assert self._child.stdin is not None and self._child.stdout is not None
        self._child.stdin.write("streams\n")
        self._child.stdin.flush()
        return [StreamTiming(**t) for t in json.loads(self._child.stdout.readline())]


@contextmanager
def gateway_process(tokens: int, rate: float, first_delay: float = 0.0) -> Iterator[GatewayChild]:
    """Start the child, yield its URL and timings, stop it (closing stdin) on the way out."""
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.gateway_proc", str(tokens), str(rate), str(first_delay)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the gateway process did not start (said {url!r})")
        yield GatewayChild(url, child)
    finally:
        if child.stdin is not None:
            child.stdin.close()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(5)


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])))
