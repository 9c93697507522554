"""The fake gateway in a process of its own, so its CPU time is not counted as Parley's.

    python -m bench.gateway_proc TOKENS RATE FIRST_DELAY   # prints its URL, serves until stdin closes

RATE 0 sends the whole answer as fast as it can (a buffered, CPU-bound stream).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.workload import make_answer
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
        await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
        gw.requests.clear()


@contextmanager
def gateway_process(tokens: int, rate: float, first_delay: float = 0.0) -> Iterator[str]:
    """Start the child, yield its URL, stop it (closing stdin) on the way out."""
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
        yield url
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
