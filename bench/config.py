"""What every scenario gets: the run's configuration, and the shape of its result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.workload import Workload

Result = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Config:
    quick: bool
    n: int | None  # replaces the scenario's default N
    work: Workload


def rounded(x: float | None, digits: int = 1) -> float | None:
    return None if x is None else round(x, digits)
