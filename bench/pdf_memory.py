"""Peak memory while Parley handles one ~30 MB PDF, above the idle process.

    python bench/pdf_memory.py [--mb 30] [--pdf PATH] [--cases CASE ...]

Each case runs in a fresh child process: start the runtime (SQLite store, real gateway client,
the fake gateway in another process so its copy of the request does not count), warm up with a
small PDF, note the resident set, reset the kernel's peak counter (``/proc/self/clear_refs``),
hand the big PDF to the conversation service as ``parley console --attach`` does, then read the
peak (``VmHWM``). Cases:

- ``text``: a Claude model with the default limits; 30 MB is over the 32 MB-encoded request
  limit, so Parley parses the PDF and sends its extracted text.
- ``prepare-document``: the file pipeline alone (download, hash, parse, store) for a model whose
  limits let the PDF go as a document, without building the request.
- ``document-anthropic`` / ``document-openai``: the whole turn with the PDF sent as a document,
  which adds the providers' request body (its base64 is encoded chunk by chunk while sending).
- ``text-follow-up``: after a ``text`` turn (not measured), a follow-up question in the same
  thread, which re-sends the stored text without loading the file.

The goal in issue 6 is a peak under three times the file size above idle.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CASES = ("text", "text-follow-up", "prepare-document", "document-anthropic", "document-openai")


def make_pdf(path: Path, megabytes: float) -> None:
    """Text on every page plus an incompressible picture, like a scanned-and-OCRed report."""
    from PIL import Image
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    rng = random.Random(30)
    side = 180  # ~95 KB of noise per page, stored as-is
    pages = int(megabytes * 1024 * 1024 / (side * side * 3 * 1.25)) + 1  # PNG + PDF overhead
    sheet = canvas.Canvas(str(path))
    for number in range(pages):
        picture = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        sheet.drawImage(ImageReader(buffer), 72, 300, width=side, height=side)
        for line in range(12):
            sheet.drawString(
                72, 760 - line * 14, f"Page {number + 1}, line {line + 1}: quarterly figures and notes."
            )
        sheet.showPage()
    sheet.save()


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


async def _measure(
    case: str, pdf_path: Path, size: int, gateway_url: str, workdir: Path
) -> dict[str, object]:
    from pydantic import SecretStr

    from bot.options import ModelOptions
    from bot.runtime import Runtime
    from bot.settings import Settings
    from bot.types import Attachment, Author, ConversationKey, IncomingMessage
    from tests.fakes.surface import RecordingSurface

    big = ModelOptions(max_pdf_bytes=256 * 1024 * 1024, max_pdf_pages=10_000)
    settings = Settings(
        apicore_base_url=gateway_url,
        apicore_api_key=SecretStr("test-key"),
        database_url=f"sqlite+aiosqlite:///{workdir / 'parley.db'}",
        parley_file_max_bytes=64 * 1024 * 1024,
        parley_file_store_max_bytes=64 * 1024 * 1024,
        parley_models={"claude-big": big, "gemini-big": big},
    )
    model = {
        "text": "claude-sonnet-4-5",
        "text-follow-up": "claude-sonnet-4-5",
        "prepare-document": "claude-big",
        "document-anthropic": "claude-big",
        "document-openai": "gemini-big",
    }[case]
    runtime = await Runtime.create(settings)

    def attachment(path: Path) -> Attachment:
        async def fetch(max_bytes: int) -> bytes:
            return await asyncio.to_thread(lambda: path.open("rb").read(max_bytes + 1))

        return Attachment(path.name, "application/pdf", path.stat().st_size, fetch)

    async def turn(path: Path | None, thread: str) -> str:
        surface = RecordingSurface(max_chars=10_000_000, keep_history=False)
        message = IncomingMessage(
            key=ConversationKey("console", "", "bench", thread),
            event_id=uuid.uuid4().hex,
            author=Author("bench", "bench"),
            text="" if path else "And the outlook?",
            surface=surface,
            attachments=(attachment(path),) if path else (),
            model=model,
        )
        if case == "prepare-document":
            assert runtime.service.files is not None
            conversation = await runtime.store.conversations.find_or_create(message.key)
            prepared = await runtime.service.files.prepare(
                conversation.id, message.attachments, model, question=""
            )
            return f"{len(prepared.parts)} part(s), notes: {prepared.notes}"
        await runtime.service.handle(message)
        return surface.text[:200]

    small = workdir / "small.pdf"
    make_pdf(small, 0.2)
    await turn(small, "warm-up")  # code paths, connections and caches: part of "idle"
    await turn(None, "warm-up")
    measured: Path | None = pdf_path
    if case == "text-follow-up":
        await turn(pdf_path, "measured")
        measured = None
    await asyncio.sleep(0.2)
    idle = _status("VmRSS")
    _reset_peak()
    started = time.perf_counter()
    shown = await turn(measured, "measured")
    elapsed = time.perf_counter() - started
    peak = _status("VmHWM")
    await runtime.aclose()
    return {
        "case": case,
        "file_mb": round(size / 2**20, 1),
        "idle_mb": round(idle / 2**20, 1),
        "peak_above_idle_mb": round((peak - idle) / 2**20, 1),
        "ratio": round((peak - idle) / size, 2),
        "seconds": round(elapsed, 2),
        "reply": shown,
    }


def _gateway() -> tuple[subprocess.Popen[str], str]:
    code = (
        f"import sys, time; sys.path.insert(0, {str(ROOT)!r})\n"
        "from tests.fakes.gateway import FakeGateway, Reply\n"
        "with FakeGateway.in_thread(default=Reply(text='ok')) as gw:\n"
        "    print(gw.url, flush=True)\n"
        "    sys.stdin.read()\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def run_case(case: str, pdf: Path, gateway_url: str, workdir: Path) -> dict[str, Any]:
    """Run one case in a fresh child process and return its figures."""
    workdir.mkdir(parents=True, exist_ok=True)
    child = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--case",
            case,
            "--pdf",
            str(pdf),
            "--gateway",
            gateway_url,
            "--workdir",
            str(workdir),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=600,
    )
    if child.returncode != 0:
        raise RuntimeError(f"pdf case {case} failed: {child.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=30.0)
    parser.add_argument("--pdf", type=Path, help="use this PDF instead of generating one")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=CASES, help="run only these cases")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # the child's job
    parser.add_argument("--gateway", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.case:
        result = asyncio.run(
            _measure(args.case, args.pdf, args.pdf.stat().st_size, args.gateway, args.workdir)
        )
        print(json.dumps(result))
        return 0

    with tempfile.TemporaryDirectory(prefix="parley-bench-") as tmp:
        pdf_path = args.pdf
        if pdf_path is None:
            pdf_path = Path(tmp) / "big.pdf"
            make_pdf(pdf_path, args.mb)
        gateway, url = _gateway()
        try:
            for case in args.cases:
                try:
                    result = run_case(case, pdf_path, url, Path(tmp) / case)
                except RuntimeError as exc:
                    print(exc, file=sys.stderr)
                    return 1
                print(
                    f"{result['case']:<20} file {result['file_mb']:>5} MB  idle {result['idle_mb']:>6} MB  "
                    f"peak above idle {result['peak_above_idle_mb']:>6} MB  = {result['ratio']:.2f}x file  "
                    f"({result['seconds']} s)"
                )
                print(f"{'':<20} reply: {result['reply']!r}")
        finally:
            assert gateway.stdin is not None
            gateway.stdin.close()
            gateway.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
