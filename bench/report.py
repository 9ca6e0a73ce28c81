"""Figures with their targets, and the markdown table they print as.

A figure without a target is context for the ones that have one (e.g. the poll rate
behind a CPU figure), so the table explains itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Op = Literal["<", "<=", ">=", "=="]


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured number; `target` None means it is shown for context only."""

    bench: str
    name: str
    value: float
    unit: str = ""
    op: Op | None = None
    target: float | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.op is None or self.target is None:
            return ""
        if math.isnan(self.value):
            return "MISS"
        ok = {
            "<": self.value < self.target,
            "<=": self.value <= self.target,
            ">=": self.value >= self.target,
            "==": self.value == self.target,
        }[self.op]
        return "PASS" if ok else "MISS"

    def shown_value(self) -> str:
        return f"{_num(self.value)} {self.unit}".strip()

    def shown_target(self) -> str:
        if self.op is None or self.target is None:
            return ""
        return f"{self.op} {_num(self.target)} {self.unit}".strip()


def _num(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if value == int(value) and abs(value) < 1e9:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def table(figures: Iterable[Figure]) -> str:
    """A GitHub-flavoured markdown table, ready to paste into README.md."""
    rows = [("Benchmark", "Figure", "Measured", "Target", "Result", "Notes")]
    rows += [
        (f.bench, f.name, f.shown_value(), f.shown_target(), f.verdict, f.note) for f in figures
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [line(rows[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(row) for row in rows[1:]]
    return "\n".join(out)
