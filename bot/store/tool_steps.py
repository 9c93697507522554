"""A reply's tool loop as the store keeps it: a JSON list on the reply's row, one object per step.

::

    [{"text": "Let me read that.",
      "calls": [{"id": "call_1", "name": "read_url", "arguments": "{\\"url\\": …}",
                 "result": "<tool_output …>…</tool_output>", "is_error": false}]}]

Kept on the row (not in a table of its own) because it is only ever read with its reply, by the
context query that reads the reply anyway. Decoding is forgiving: a value this code did not write
(an older or hand-edited row) gives what can be read, never an error that would break a turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.store.rows import StoredCall, StoredStep

CUT_MARK = "\n[… cut]"
# Results reach the store already cut to PARLEY_TOOL_RESULT_CHARS (bot/tools); this only bounds
# what a row can hold whatever the caller passed.
MAX_CHARS = 100_000


def _capped(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + CUT_MARK


def encode(steps: Sequence[StoredStep], *, max_chars: int = MAX_CHARS) -> list[dict[str, Any]] | None:
    """The column's value for ``steps`` (None for none); each result is cut to ``max_chars``, and
    arguments longer than that are kept as ``{}`` (cut JSON would be no JSON at all)."""
    if not steps:
        return None
    return [
        {
            "text": step.text,
            "calls": [
                {
                    "id": call.id,
                    "name": call.name,
                    "arguments": call.arguments if len(call.arguments) <= max_chars else "{}",
                    "result": _capped(call.result, max_chars),
                    "is_error": call.is_error,
                }
                for call in step.calls
            ],
        }
        for step in steps
    ]


def decode(value: object) -> tuple[StoredStep, ...]:
    """The steps in a column's value; what cannot be read is left out."""
    if not isinstance(value, list):
        return ()
    steps = []
    for item in value:
        if not isinstance(item, dict):
            continue
        calls = tuple(call for raw in item.get("calls") or () if (call := _call(raw)) is not None)
        if calls:  # a step is its calls: without them there is nothing to replay
            steps.append(StoredStep(str(item.get("text") or ""), calls))
    return tuple(steps)


def _call(raw: object) -> StoredCall | None:
    if not isinstance(raw, dict):
        return None
    if not isinstance(raw.get("id"), str) or not isinstance(raw.get("name"), str):
        return None
    return StoredCall(
        id=raw["id"],
        name=raw["name"],
        arguments=str(raw.get("arguments") or "{}"),
        result=str(raw.get("result") or ""),
        is_error=bool(raw.get("is_error")),
    )
