"""The layout is part of the product: modules a newcomer reads in one sitting.

Complexity (ruff's C901, at most 15), ``mypy --strict`` and the import contracts (no cycle in
``bot/``, the adapters independent of each other) are checked by ``.ci/run`` itself; what no
tool checks is here.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Past this, a module holds more than one job: split it by job, not by line count.
MAX_LINES = 500


def _modules() -> list[Path]:
    return sorted(p for package in ("bot", "adapters") for p in (ROOT / package).rglob("*.py"))


def test_no_module_is_longer_than_one_sitting() -> None:
    too_long = {
        str(path.relative_to(ROOT)): n
        for path in _modules()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert too_long == {}, f"modules over {MAX_LINES} lines: {too_long}"


def test_the_check_sees_the_code() -> None:
    # An empty glob would make the check above pass for nothing.
    names = {str(p.relative_to(ROOT)) for p in _modules()}
    assert {"bot/service.py", "bot/turn.py", "bot/render/pacer.py", "adapters/slack/events.py"} <= names
