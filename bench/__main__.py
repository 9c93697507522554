"""``python -m bench``: run the scenarios, print the table (or ``--json``).

Every scenario runs in a fresh child process by default, so one scenario's memory, threads and
process-wide settings (discord.py keeps its REST root in a class attribute) never colour the
next one's figures; ``--inline`` runs them in this process instead (faster start, used by
``--quick``). Everything listens on 127.0.0.1, and each child is stopped after ``--timeout``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.config import Config, Result
from bench.report import table
from bench.scenarios import SCENARIOS, Scenario, find
from bench.workload import Workload

ROOT = Path(__file__).resolve().parent.parent
_MARK = "BENCH-RESULT "
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")


def _workload(args: argparse.Namespace) -> Workload:
    base = Workload(tokens=60, rate=60.0, first_delay=0.2) if args.quick else Workload()
    return Workload(
        tokens=args.tokens or base.tokens,
        rate=args.rate or base.rate,
        first_delay=base.first_delay if args.first_delay is None else args.first_delay,
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench", description="Parley's benchmark (see docs/performance.md)"
    )
    p.add_argument(
        "--quick", action="store_true", help="the CI smoke run: small N, short answers, same budgets"
    )
    p.add_argument("--scenario", action="append", metavar="NAME", help="run only these (repeatable)")
    p.add_argument("--n", type=int, help="N for every scenario run (replies, stored messages, MB…)")
    p.add_argument("--json", action="store_true", help="print JSON on stdout (the table goes to stderr)")
    p.add_argument("--out", type=Path, help="also write the JSON to this file")
    p.add_argument("--tokens", type=int, help="answer length in tokens (default 400, quick 60)")
    p.add_argument("--rate", type=float, help="tokens per second (default 60)")
    p.add_argument("--first-delay", type=float, help="model time to first token, s (default 0.5, quick 0.2)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--isolate", action="store_true", help="a child process per scenario (default)")
    mode.add_argument(
        "--inline", action="store_true", help="all scenarios in this process (default for --quick)"
    )
    p.add_argument("--timeout", type=float, default=900.0, help="seconds before a scenario is stopped")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p


async def _run_one(scenario: Scenario, cfg: Config, n: int) -> Result:
    label = scenario.label(n)
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as tmp:
        started = time.perf_counter()
        try:
            result = await scenario.run(cfg, Path(tmp), label, n)
        except Exception as exc:  # one broken scenario must not lose the others' figures
            logging.getLogger("bench").exception("scenario %s failed", label)
            result = {"scenario": label, "error": f"{type(exc).__name__}: {exc}"}
        result["elapsed_s"] = round(time.perf_counter() - started, 1)
    return result


def _in_child(name: str, n: int, args: argparse.Namespace) -> Result:
    cmd = [sys.executable, "-m", "bench", "--child", name, "--n", str(n)]
    if args.quick:
        cmd.append("--quick")
    for flag in ("tokens", "rate", "first_delay"):
        value = getattr(args, flag)
        if value is not None:
            cmd += [f"--{flag.replace('_', '-')}", str(value)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"scenario": name, "error": f"timed out after {args.timeout:.0f}s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(_MARK):
            result: Result = json.loads(line[len(_MARK) :])
            return result
    tail = (done.stderr or "").strip().splitlines()[-5:]
    return {"scenario": name, "error": f"exit {done.returncode}: " + " | ".join(tail)}


def _machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "python": platform.python_version()}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    for name in _PROXY_VARS:  # slack_sdk honours proxies and ignores NO_PROXY: stay on loopback
        os.environ.pop(name, None)
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    if args.list:
        for s in SCENARIOS:
            print(f"{s.name:<22} N={s.full:<6} quick N={s.quick:<5} {s.about}")
        return 0
    cfg = Config(quick=args.quick, n=args.n, work=_workload(args))

    if args.child:
        scenario, _ = find(args.child)
        n = args.n if args.n is not None else (scenario.quick if args.quick else scenario.full)
        result = asyncio.run(_run_one(scenario, cfg, n))
        print(_MARK + json.dumps(result), flush=True)
        return 0

    try:
        chosen = [find(name) for name in args.scenario] if args.scenario else [(s, None) for s in SCENARIOS]
    except KeyError as exc:
        print(f"unknown scenario {exc}; --list shows them", file=sys.stderr)
        return 2
    isolate = args.isolate or not (args.inline or args.quick)
    results: list[Result] = []
    began = time.perf_counter()
    for scenario, from_name in chosen:
        n = from_name or cfg.n or (scenario.quick if cfg.quick else scenario.full)
        if isolate:
            result = _in_child(scenario.name if from_name is None else scenario.label(n), n, args)
        else:
            result = asyncio.run(_run_one(scenario, cfg, n))
        results.append(result)
        print(f"{result.get('scenario')}: {result.get('elapsed_s', '?')} s", file=sys.stderr, flush=True)
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": _machine(),
        "workload": {"tokens": cfg.work.tokens, "rate": cfg.work.rate, "first_delay": cfg.work.first_delay},
        "quick": cfg.quick,
        "wall_s": round(time.perf_counter() - began, 1),
        "scenarios": results,
    }
    text = table(results)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    if args.json:
        print(text, file=sys.stderr)
        print(json.dumps(report, indent=2))
    else:
        print(text)
        print(f"\n{report['machine']}, workload {report['workload']}, {report['wall_s']} s in all")
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
