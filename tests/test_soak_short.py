"""The soak, short: conversations over Slack and Discord with injected faults, for ~7 seconds.

The full run is ``python -m tests.soak --minutes 3`` (see tests/soak.py for what it does)."""

from __future__ import annotations

from pathlib import Path

from tests.soak import run_soak


async def test_a_short_soak_loses_doubles_and_leaves_hanging_nothing(tmp_path: Path) -> None:
    report = await run_soak(7, rate=3.5, faults=0.15, seed=11, tmp=tmp_path)
    summary = report.as_dict()
    assert report.turns >= 20, summary
    assert sum(report.gateway_faults.values()) > 0 and sum(report.platform_faults.values()) > 0, summary
    assert (report.lost, report.duplicates, report.hanging, report.wrong) == (0, 0, 0, 0), summary
    assert set(report.left_in_memory.values()) == {0}, summary
    assert report.rss_end_mb - report.rss_start_mb < 40, summary
