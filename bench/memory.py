"""Peak resident memory of one Parley turn, above the idle process: the runner the memory
benchmarks share (``bench/pdf_memory.py``, ``bench/files_memory.py``).

Each case runs in a fresh child process (:func:`run_child` starts the script again with
``--case``), so one case's allocations never colour the next one's. In the child the runtime
uses a SQLite store and the real gateway client, the fake gateway running in another process
(``bench.gateway_proc``) so that its copy of the request does not count. The case warms up, then
:func:`measure` notes the resident set, resets the kernel's peak counter
(``/proc/self/clear_refs``), runs the measured turn and reads the peak (``VmHWM``).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.runtime import Runtime
    from bot.settings import Settings
    from bot.types import Attachment

ROOT = Path(__file__).resolve().parent.parent
# The files handed over here are far above Parley's default limits.
_BIG_FILES = 64 * 1024 * 1024


def status(field: str) -> int:
    """A size from ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> None:
    """Start ``VmHWM`` again from the current resident set."""
    Path("/proc/self/clear_refs").write_text("5")


def settings(gateway_url: str, workdir: Path, **extra: Any) -> Settings:
    """Parley's settings for a measuring child: its own SQLite file, big files allowed."""
    from pydantic import SecretStr

    from bot.settings import Settings

    return Settings(
        apicore_base_url=gateway_url,
        apicore_api_key=SecretStr("test-key"),
        database_url=f"sqlite+aiosqlite:///{workdir / 'parley.db'}",
        parley_file_max_bytes=_BIG_FILES,
        parley_file_store_max_bytes=_BIG_FILES,
        **extra,
    )


def attachment(path: Path, media_type: str | None) -> Attachment:
    """A file on disk as the platforms hand one over: read when the pipeline fetches it."""
    from bot.types import Attachment

    async def fetch(max_bytes: int) -> bytes:
        return await asyncio.to_thread(lambda: path.open("rb").read(max_bytes + 1))

    return Attachment(path.name, media_type, path.stat().st_size, fetch)


async def ask(runtime: Runtime, thread: str, text: str, files: tuple[Attachment, ...], model: str) -> str:
    """One turn as ``parley console --attach`` hands it over; the start of the reply."""
    from bot.types import Author, ConversationKey, IncomingMessage
    from tests.fakes.surface import RecordingSurface

    surface = RecordingSurface(max_chars=10_000_000, keep_history=False)
    message = IncomingMessage(
        key=ConversationKey("console", "", "bench", thread),
        event_id=uuid.uuid4().hex,
        author=Author("bench", "bench"),
        text=text,
        surface=surface,
        attachments=files,
        model=model,
    )
    await runtime.service.handle(message)
    return surface.text[:200]


async def measure(case: str, size: int, turn: Callable[[], Awaitable[str]]) -> dict[str, Any]:
    """Run ``turn`` (already warmed up) from a fresh peak; the figures for a file of ``size``."""
    await asyncio.sleep(0.2)
    idle = status("VmRSS")
    reset_peak()
    started = time.perf_counter()
    shown = await turn()
    elapsed = time.perf_counter() - started
    peak = status("VmHWM")
    return {
        "case": case,
        "file_mb": round(size / 2**20, 1),
        "idle_mb": round(idle / 2**20, 1),
        "peak_above_idle_mb": round((peak - idle) / 2**20, 1),
        "ratio": round((peak - idle) / size, 2),
        "seconds": round(elapsed, 2),
        "reply": shown,
    }


def run_child(script: str, case: str, args: list[str], *, timeout: float) -> dict[str, Any]:
    """Run ``script --case CASE ARGS…`` in a fresh process; the figures it printed last."""
    child = subprocess.run(
        [sys.executable, str(Path(script).resolve()), "--case", case, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=timeout,
    )
    if child.returncode != 0:
        raise RuntimeError(f"{Path(script).stem} case {case} failed: {child.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


def print_result(result: dict[str, Any], width: int) -> None:
    """Two lines for a person: the figures, then the start of the reply."""
    print(
        f"{result['case']:<{width}} file {result['file_mb']:>5} MB  idle {result['idle_mb']:>6} MB  "
        f"peak above idle {result['peak_above_idle_mb']:>6} MB  = {result['ratio']:.2f}x file  "
        f"({result['seconds']} s)"
    )
    print(f"{'':<{width}} reply: {result['reply']!r}")
