"""Peak memory while Parley reads a ~30 MB XLSX and transcribes a 20-minute voice note.

    python bench/files_memory.py [--mb 30] [--minutes 20] [--cases xlsx audio]

Each case runs in a fresh child process (``bench/memory.py``, as for ``bench/pdf_memory.py``): the
runtime (SQLite store, real gateway client; the fake gateway in another process so its copy of
the request does not count) is warmed up with a small file of the same kind, the resident set
noted, the kernel's peak counter reset, and the big file handed to the conversation service as
``parley console --attach`` does; then the peak (``VmHWM``) is read. Cases:

- ``xlsx``: a generated workbook (one sheet of ~800,000 rows, shared strings and numbers, the
  way Excel writes them); openpyxl streams the sheet and stops at PARLEY_FILE_TEXT_CHARS.
- ``audio``: a 20-minute MP3 at 128 kbit/s (~19 MB), transcribed by the fake gateway and then
  asked. The upload streams slices of the downloaded bytes, so it should cost little beyond
  the file itself (which is also hashed and kept in the store for the thread).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import memory  # noqa: E402

CASES = ("xlsx", "audio")
_NS = "http://schemas.openxmlformats.org/"
_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="' + _NS + 'package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0"?><Relationships xmlns="' + _NS + 'package/2006/relationships"><Relationship '
    'Id="rId1" Type="' + _NS + 'officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_WORKBOOK = (
    '<?xml version="1.0"?><workbook xmlns="'
    + _NS
    + 'spreadsheetml/2006/main" xmlns:r="'
    + _NS
    + 'officeDocument/2006/relationships"><sheets><sheet name="Orders" sheetId="1" r:id="rId1"/></sheets>'
    "</workbook>"
)
_WORKBOOK_RELS = (
    '<?xml version="1.0"?><Relationships xmlns="' + _NS + 'package/2006/relationships">'
    '<Relationship Id="rId1" Type="' + _NS + 'officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="'
    + _NS
    + 'officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
)


def make_xlsx(path: Path, megabytes: float) -> None:
    """A workbook of about ``megabytes`` written straight as XML (seconds, not minutes)."""
    rng = random.Random(30)
    words = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet")
    pool = [" ".join(rng.choice(words) for _ in range(4)) + f" {i}" for i in range(20_000)]
    target = int(megabytes * 1024 * 1024)
    rows_per_mb = 26_300  # measured: keeps the dimension close to the rows written
    total_rows = max(10, int(megabytes * rows_per_mb))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _TYPES)
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("xl/workbook.xml", _WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        strings = "".join(f"<si><t>{escape(s)}</t></si>" for s in pool)
        archive.writestr(
            "xl/sharedStrings.xml",
            f'<?xml version="1.0"?><sst xmlns="{_NS}spreadsheetml/2006/main">{strings}</sst>',
        )
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(
                f'<?xml version="1.0"?><worksheet xmlns="{_NS}spreadsheetml/2006/main">'
                f'<dimension ref="A1:E{total_rows}"/><sheetData>'.encode()
            )
            for start in range(1, total_rows + 1, 2000):
                rows = []
                for r in range(start, min(start + 2000, total_rows + 1)):
                    rows.append(
                        f'<row r="{r}"><c r="A{r}" t="s"><v>{rng.randrange(len(pool))}</v></c>'
                        f'<c r="B{r}"><v>{rng.randrange(10**6)}</v></c>'
                        f'<c r="C{r}"><v>{rng.random():.6f}</v></c>'
                        f'<c r="D{r}" t="s"><v>{rng.randrange(len(pool))}</v></c>'
                        f'<c r="E{r}"><v>{rng.randrange(10**9)}</v></c></row>'
                    )
                sheet.write("".join(rows).encode())
                if path.stat().st_size >= target:
                    break
            sheet.write(b"</sheetData></worksheet>")


def make_mp3(path: Path, minutes: float) -> None:
    """MPEG-1 layer III frames at 128 kbit/s, 44.1 kHz: 417 bytes per 26.1 ms, payload random."""
    frames = int(minutes * 60 / (1152 / 44100))
    rng = random.Random(20)
    with path.open("wb") as out:
        for start in range(0, frames, 1000):
            out.write(
                b"".join(b"\xff\xfb\x90\x00" + rng.randbytes(413) for _ in range(min(1000, frames - start)))
            )


async def _measure(case: str, path: Path, small: Path, gateway_url: str, workdir: Path) -> dict[str, Any]:
    from bot.runtime import Runtime

    runtime = await Runtime.create(memory.settings(gateway_url, workdir))

    async def turn(file: Path, thread: str) -> str:
        files = (memory.attachment(file, None),)
        return await memory.ask(runtime, thread, "What stands out?", files, "claude-sonnet-4-5")

    size = path.stat().st_size  # noqa: ASYNC240 - once, before measuring
    await turn(small, "warm-up")
    result = await memory.measure(case, size, lambda: turn(path, "measured"))
    await runtime.aclose()
    return result


def run_case(case: str, path: Path, small: Path, gateway_url: str, workdir: Path) -> dict[str, Any]:
    """One case in a fresh child process; its figures."""
    workdir.mkdir(parents=True, exist_ok=True)
    args = ["--file", str(path), "--small", str(small), "--gateway", gateway_url, "--workdir", str(workdir)]
    return memory.run_child(__file__, case, args, timeout=900)


def make_inputs(tmp: Path, megabytes: float, minutes: float) -> dict[str, tuple[Path, Path]]:
    """(the big file, a small warm-up file of the same kind) per case."""
    inputs = {"xlsx": (tmp / "big.xlsx", tmp / "small.xlsx"), "audio": (tmp / "note.mp3", tmp / "short.mp3")}
    make_xlsx(inputs["xlsx"][0], megabytes)
    make_xlsx(inputs["xlsx"][1], 0.1)
    make_mp3(inputs["audio"][0], minutes)
    make_mp3(inputs["audio"][1], 0.2)
    return inputs


def run_all(
    tmp: Path, megabytes: float, minutes: float, cases: tuple[str, ...] = CASES, *, together: bool = False
) -> dict[str, Any]:
    """Each case in its own child; ``together`` runs the children at once (each reads its own
    peak, so the memory figures hold; the seconds then include the other's CPU)."""
    inputs = make_inputs(tmp, megabytes, minutes)
    # Here, not at the top: the child measuring a case has no use for the fake's imports.
    from bench.gateway_proc import gateway_process

    with gateway_process(20, 0.0) as gateway:
        url = gateway.url
        if not together:
            return {case: run_case(case, *inputs[case], url, tmp / case) for case in cases}
        with ThreadPoolExecutor(len(cases)) as pool:
            futures = {case: pool.submit(run_case, case, *inputs[case], url, tmp / case) for case in cases}
            return {case: future.result() for case, future in futures.items()}


async def files_scenario(cfg: Any, tmp: Path, name: str, n: int) -> dict[str, Any]:
    """``python -m bench --scenario files-memory``: an N MB XLSX and a 20-minute voice note (quick:
    a one-minute note, both cases at once)."""
    minutes = 1.0 if cfg.quick else 20.0
    runs = await asyncio.to_thread(run_all, tmp, float(n), minutes, together=cfg.quick)
    xlsx, audio = runs["xlsx"], runs["audio"]
    return {
        "scenario": name,
        "platform": "memory",
        "replies": len(runs),
        "file_mb": xlsx["file_mb"],
        "peak_above_idle_mb": xlsx["peak_above_idle_mb"],
        "peak_ratio_to_file": xlsx["ratio"],
        "audio_mb": audio["file_mb"],
        "audio_peak_above_idle_mb": audio["peak_above_idle_mb"],
        "audio_peak_ratio_to_file": audio["ratio"],
        "rate_limited": 0,
        "cases": {k: {f: v for f, v in r.items() if f != "reply"} for k, r in runs.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=30.0)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--cases", nargs="+", choices=CASES, default=CASES)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # the child's job
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--small", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--gateway", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(asyncio.run(_measure(args.case, args.file, args.small, args.gateway, args.workdir))))
        return 0
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as tmp:
        try:
            runs = run_all(Path(tmp), args.mb, args.minutes, tuple(args.cases))
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 1
    for result in runs.values():
        memory.print_result(result, 8)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
