"""The table: one Markdown row per scenario, the figures a reader compares across runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Result = dict[str, Any]


def _num(x: Any, digits: int = 0) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _pair(d: Any, digits: int = 0) -> str:
    """``p50 / p99`` of a distribution dict."""
    if not isinstance(d, dict) or d.get("p50") is None:
        return "–"
    return f"{_num(d['p50'], digits)} / {_num(d['p99'], digits)}"


def _eff(r: Result) -> str:
    if r.get("pacing_eff") is None:
        return "–"
    return f"{r['pacing_eff']:.2f} ({r['pacing_eff_min']:.2f}) [{r['pacing_eff_platform']:.2f}]"


def _age(r: Result) -> str:
    if r.get("staleness_s") is None:
        return "–"
    return f"{r['staleness_s']:.2f} ({r['staleness_s_max']:.2f})"


def _final(r: Result) -> str:
    room = r.get("final_room_ms")
    if not isinstance(room, dict):
        return _pair(r.get("final_ms"))
    extra = f"[{_pair(room)}]" if room.get("n") else "[none had room]"
    return f"{_pair(r.get('final_ms'))} {extra}"


def _signed(x: Any) -> str:
    return "–" if x is None else f"{x:+}"


def _other(r: Result) -> str:
    name = str(r.get("scenario", ""))
    if name.startswith("long-thread"):
        sizes = r.get("sizes", {})
        parts = [f"{int(k):,}: {_pair(v['context_build_ms'], 2)} ms" for k, v in sizes.items()]
        return "context build p50/p99 at " + ", ".join(parts)
    if name.startswith(("pdf", "files")):
        # One PDF read two ways; or files of several kinds, each named with its size.
        pdf = name.startswith("pdf")
        parts = []
        for case, c in r.get("cases", {}).items():
            label = case if pdf else f"{case} {c['file_mb']} MB"
            parts.append(f"{label}: {c['seconds']} s, +{c['peak_above_idle_mb']} MB ({c['ratio']}× file)")
        return (f"{r.get('file_mb')} MB PDF; " if pdf else "") + "; ".join(parts)
    if name.startswith("scale"):
        return _scale_notes(r)
    if "tools" in name:
        return (
            f"first answer text p50/p99 {_pair(r.get('first_text_plain_ms'))} ms plain, "
            f"{_pair(r.get('first_text_with_tool_ms'))} ms after a tool step "
            f"(+{_num(r.get('added_first_text_ms_p50'))} ms p50, the model's extra request "
            f"≈{r.get('model_first_delay_ms')} ms of it); "
            f"whole answer +{_num(r.get('added_ms_p50'))} ms p50; "
            f"step (call ended → result sent) {_pair(r.get('tool_step_ms'), 1)} ms, "
            f"call ended → fetch began {_pair(r.get('tool_dispatch_ms'), 1)} ms; {r.get('complete')}; "
            f"discord.py waits {r.get('dpy_waits')}"
        )
    if name.startswith("render-cost"):
        text = f"{r.get('complete')}/{r.get('replies')} exact; renderer alone: "
        text += (
            f"{r.get('render_us_per_token')} µs CPU/token ({r.get('edits')} edits, {r.get('rounds')} rounds)"
        )
        return text
    if name.startswith("provider"):
        b, rr = r.get("buffered", {}), r.get("real_rate", {})
        raw, prov = b.get("raw_cpu_us_per_token"), b.get("provider_cpu_us_per_token")
        added, pct = rr.get("added_us_per_token_p50"), rr.get("added_pct_of_token_interval")
        return (
            f"buffered: {raw} → {prov} µs CPU/token ({_signed(b.get('cpu_overhead_pct'))}%); "
            f"at {rr.get('rate_tokens_per_s')} tok/s: {_signed(added)} µs/token ({_signed(pct)}% of the gap)"
        )
    if r.get("skipped"):
        return f"skipped: {r['skipped']}"
    if name.startswith("shared-budget"):
        return (
            f"booking p50/p99 {_pair(r.get('take_ms'), 1)} ms; "
            f"{_num(r.get('bookings_per_s_one_key'))}/s on one key, "
            f"{_num(r.get('bookings_per_s_eight_keys'))}/s on eight ({r.get('note')})"
        )
    extra = [f"{r.get('complete')}/{r.get('replies')} exact", f"{r.get('edits_per_reply')} edits/reply"]
    if r.get("instances"):
        answered = r.get("answered_per_instance")
        extra.append(f"{r['instances']} instances, answered {answered} (warm-ups incl.)")
        extra.append(f"{r.get('bookings_per_action')} bookings/action, {r.get('budget_refusals')} refused")
    if r.get("dpy_waits"):
        extra.append(f"discord.py waits {r['dpy_waits']}")
    return ", ".join(extra)


COLUMNS: Sequence[tuple[str, Callable[[Result], str]]] = (
    ("scenario", lambda r: str(r.get("scenario"))),
    ("N", lambda r: _num(r.get("replies"))),
    ("placeholder ms", lambda r: _pair(r.get("placeholder_ms"))),
    ("first text ms", lambda r: _pair(r.get("first_text_ms"))),
    ("token→visible ms", lambda r: _pair(r.get("token_visible_ms"))),
    ("end→final ms [budget had room]", _final),
    ("pacing eff (min) [platform]", _eff),
    ("staleness s (max)", _age),
    ("429s", lambda r: _num(r.get("rate_limited"))),
    ("CPU s/1k tok", lambda r: _num(r.get("cpu_s_per_1k_tokens"), 3)),
    ("loop lag p99 ms", lambda r: _num(r.get("loop_lag_p99_ms"), 1)),
    ("peak RSS MB", lambda r: _num(r.get("peak_rss_mb"), 0)),
    ("RSS/reply KB", lambda r: _num(r.get("rss_per_reply_kb"), 0)),
    ("DB stmts/reply", lambda r: _num(r.get("db_statements_per_reply"), 1)),
    ("wall s", lambda r: _num(r.get("elapsed_s"), 1)),
    ("notes", _other),
)


def table(results: Sequence[Result]) -> str:
    rows = [[cell(r) if "error" not in r else "–" for _, cell in COLUMNS] for r in results]
    for row, r in zip(rows, results, strict=True):
        if "error" in r:
            row[0] = str(r.get("scenario"))
            row[-1] = "FAILED: " + str(r["error"])[:200]
    head = [name for name, _ in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _scale_notes(r: Result) -> str:
    text = f"{r.get('complete')}/{r.get('replies')} done, peak {r.get('peak_in_flight')} in flight"
    per_core, rate = r.get("replies_per_core_at_rate"), r.get("rate_tokens_per_s")
    text += f", model's last token→final text p50/p99 {_pair(r.get('end_to_final_ms'))} ms"
    text += f", one core carries ≈{per_core} replies at {rate:g} tok/s"
    target = r.get("at_target")
    if target:
        text += f"; {target['replies']} at {target['rate_tokens_per_s']:g} tok/s:"
        text += f" {target['exact_text']}/{target['replies']} exact,"
        text += f" CPU {_num(target['cpu_s_per_1k_tokens'], 3)} s/1k tok,"
        text += f" busy {_num(target['cpu_busy_pct'], 0)}%,"
        text += f" lag p99 {_num(target['loop_lag_p99_ms'], 1)} ms,"
        text += f" question→request p50/p99 {_pair(target['request_sent_ms'])} ms,"
        text += f" model's stream p50 {_num(target['model_stream_s']['p50'], 1)} s,"
        text += f" its last token→final text p50/p99 {_pair(target['end_to_final_ms'])} ms"
    slow = r.get("one_core_rate")
    if slow:
        lag = _num(slow["loop_lag_p99_ms"], 1)
        text += f"; at {slow['rate_tokens_per_s']:g} tok/s: {slow['peak_in_flight']} in flight"
        text += f", lag p99 {lag} ms, peak {_num(slow['peak_rss_mb'], 0)} MB"
        text += f" ({_num(slow['rss_per_reply_kb'], 0)} KB/reply)"
        text += f", first text p50/p99 {_pair(slow['first_text_ms'])} ms"
    return text
