"""Figures with their targets, and the markdown table they print as.

A figure without a target is context for the ones that have one (e.g. the poll rate
behind a CPU figure), so the table explains itself.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
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


def save(figures: Iterable[Figure], path: Path) -> None:
    """Keep a run's figures (JSON), so a later run can show them as its "before"."""
    path.write_text(json.dumps([asdict(f) for f in figures], ensure_ascii=False, indent=1))


def load(path: Path) -> dict[tuple[str, str], Figure]:
    """A saved run's figures by (benchmark, figure name)."""
    figures = [Figure(**item) for item in json.loads(path.read_text())]
    return {(f.bench, f.name): f for f in figures}


def table(figures: Iterable[Figure], before: Mapping[tuple[str, str], Figure] | None = None) -> str:
    """A GitHub-flavoured markdown table, ready to paste into README.md; with `before`,
    an earlier run's value of each figure sits beside this one's."""
    rows = [("Benchmark", "Figure", "Measured", "Target", "Result", "Notes")]
    rows += [
        (f.bench, f.name, f.shown_value(), f.shown_target(), f.verdict, f.note) for f in figures
    ]
    if before is not None:
        old = [before.get((f.bench, f.name)) for f in figures]
        shown = ["Before", *(o.shown_value() if o is not None else "" for o in old)]
        rows = [(*row[:2], was, *row[2:]) for row, was in zip(rows, shown, strict=True)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [line(rows[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(row) for row in rows[1:]]
    return "\n".join(out)
