"""The benchmark's smoke run (``python -m bench --quick --json``): every scenario runs, through the
real adapters and the fakes, and reports sane figures with no 429. Timing targets are measured by
the full run and reported in docs/performance.md, never asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.scenarios import SCENARIOS, find

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = (
    "discord-one",
    "discord-channel-N",
    "discord-across-N",
    "discord-shared-N",
    "slack-one",
    "slack-workspace-N",
    "slack-native-stream",
    "slack-native-N",
)


def _scenario(label: str) -> str:
    """The registry name a result belongs to (``discord-channel-5`` → ``discord-channel-N``)."""
    return find(label.split(" ")[0])[0].name


def _p50(result: dict[str, Any], key: str) -> float:
    value = result[key]["p50"]
    assert value is not None, (result["scenario"], key)
    return float(value)


def test_quick_bench_reports_every_scenario() -> None:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PYTHONPATH"] = str(ROOT)
    # The timeout keeps the smoke run a smoke run (about a minute on an idle 2-core machine); how
    # long it took is not asserted: that is load, not behaviour.
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    results = {_scenario(r["scenario"]): r for r in report["scenarios"]}
    assert {s.name for s in SCENARIOS} == set(results)
    for name, r in results.items():
        assert "error" not in r, (name, r.get("error"))
        assert r["rate_limited"] == 0, name

    for name in PLATFORM:
        r = results[name]
        assert r["complete"] == r["replies"] >= 1, name
        assert r["pacer_429s"] == 0
        assert r.get("dpy_waits", 0) == 0
        assert 0 < _p50(r, "placeholder_ms") <= _p50(r, "first_text_ms")
        assert _p50(r, "token_visible_ms") >= 0
        assert r["final_ms"]["n"] == r["replies"]
        # a short answer leaves Slack's minute-long budget almost unused: tiny but defined
        assert 0 <= r["pacing_eff"] <= 1.05, (name, r["pacing_eff"])
        assert 0 <= r["pacing_eff_platform"] <= 1.05, (name, r["pacing_eff_platform"])
        assert r["cpu_s_per_1k_tokens"] > 0
        assert r["loop_lag_p99_ms"] is not None
        assert r["db_statements_per_reply"] > 0

    long = results["long-thread"]
    assert all(size["context_build_ms"]["p50"] > 0 for size in long["sizes"].values())
    assert long["sizes"]["100"]["messages_in_request"] > 0

    pdf = results["pdf-30mb"]
    assert pdf["file_mb"] > 0 and pdf["peak_above_idle_mb"] >= 0 and pdf["pdf_seconds"] > 0

    scale = results["scale-500"]
    assert scale["complete"] == scale["exact_text"] == scale["replies"]
    assert scale["loop_lag_p99_ms"] is not None and scale["peak_rss_mb"] > 0
    # Every reply set beside the gateway's times for its own answer (matched by question).
    assert scale["end_to_final_ms"]["n"] == scale["replies"] == scale["request_sent_ms"]["n"]
    assert scale["model_stream_s"]["p50"] > 0 and scale["request_sent_ms"]["p50"] > 0

    provider = results["provider-overhead"]
    assert provider["buffered"]["raw_cpu_us_per_token"] > 0
    assert provider["buffered"]["provider_cpu_us_per_token"] > 0
    assert provider["real_rate"]["provider_latency_us"]["n"] > 0

    # Several instances (with a PostgreSQL server; skipped without one).
    shared = results["slack-instances-N"]
    if not shared.get("skipped"):
        assert shared["complete"] == shared["replies"] >= 1
        # Every post and edit booked its slot on the shared budget once (refused bookings retried).
        assert shared["budget_bookings"] - shared["budget_refusals"] == shared["posts"] + shared["edits"] > 0
        booking = results["shared-budget"]
        assert booking["take_ms"]["p50"] > 0 and booking["bookings_per_s_one_key"] > 50
