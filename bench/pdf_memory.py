"""Peak memory while Parley handles one ~30 MB PDF, above the idle process.

    python bench/pdf_memory.py [--mb 30] [--pdf PATH] [--cases CASE ...]

Each case runs in a fresh child process (``bench/memory.py``): start the runtime (SQLite store,
real gateway client, the fake gateway in another process so its copy of the request does not
count), warm up with a small PDF, note the resident set, reset the kernel's peak counter
(``/proc/self/clear_refs``), hand the big PDF to the conversation service as ``parley console
--attach`` does, then read the peak (``VmHWM``). Cases:

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
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import memory  # noqa: E402
from bot.types import ConversationKey  # noqa: E402

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


async def _measure(case: str, pdf_path: Path, gateway_url: str, workdir: Path) -> dict[str, Any]:
    from bot.options import ModelOptions
    from bot.runtime import Runtime

    big = ModelOptions(max_pdf_bytes=256 * 1024 * 1024, max_pdf_pages=10_000)
    runtime = await Runtime.create(
        memory.settings(gateway_url, workdir, parley_models={"claude-big": big, "gemini-big": big})
    )
    model = {
        "text": "claude-sonnet-4-5",
        "text-follow-up": "claude-sonnet-4-5",
        "prepare-document": "claude-big",
        "document-anthropic": "claude-big",
        "document-openai": "gemini-big",
    }[case]

    async def turn(path: Path | None, thread: str) -> str:
        files = (memory.attachment(path, "application/pdf"),) if path else ()
        if case == "prepare-document":
            assert runtime.service.files is not None
            conversation = await runtime.store.conversations.find_or_create(
                ConversationKey("console", "", "bench", thread)
            )
            prepared = await runtime.service.files.prepare(conversation.id, files, model, question="")
            return f"{len(prepared.parts)} part(s), notes: {prepared.notes}"
        return await memory.ask(runtime, thread, "" if path else "And the outlook?", files, model)

    small = workdir / "small.pdf"
    make_pdf(small, 0.2)
    await turn(small, "warm-up")  # code paths, connections and caches: part of "idle"
    await turn(None, "warm-up")
    measured: Path | None = pdf_path
    if case == "text-follow-up":
        await turn(pdf_path, "measured")
        measured = None
    size = pdf_path.stat().st_size  # noqa: ASYNC240 - once, before measuring
    result = await memory.measure(case, size, lambda: turn(measured, "measured"))
    await runtime.aclose()
    return result


def run_case(case: str, pdf: Path, gateway_url: str, workdir: Path) -> dict[str, Any]:
    """Run one case in a fresh child process and return its figures."""
    workdir.mkdir(parents=True, exist_ok=True)
    args = ["--pdf", str(pdf), "--gateway", gateway_url, "--workdir", str(workdir)]
    return memory.run_child(__file__, case, args, timeout=600)


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
        print(json.dumps(asyncio.run(_measure(args.case, args.pdf, args.gateway, args.workdir))))
        return 0

    with tempfile.TemporaryDirectory(prefix="parley-bench-") as tmp:
        pdf_path = args.pdf
        if pdf_path is None:
            pdf_path = Path(tmp) / "big.pdf"
            make_pdf(pdf_path, args.mb)
        # Here, not at the top: the child measuring a case has no use for the fake's imports.
        from bench.gateway_proc import gateway_process

        with gateway_process(20, 0.0) as gateway:
            for case in args.cases:
                try:
                    result = run_case(case, pdf_path, gateway.url, Path(tmp) / case)
                except RuntimeError as exc:
                    print(exc, file=sys.stderr)
                    return 1
                memory.print_result(result, 20)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
