"""`python -m bench [--quick] [--only NAME ...]`: run the benchmarks, print one table.

Each benchmark prints its figures next to its target with PASS/MISS; the table is
markdown so it can be pasted into README.md. `--quick` runs smaller versions (the
targets still apply, but small runs flatter the latency and throughput figures).
`--only processes` runs issue 12's row (two bot processes on PostgreSQL, one killed).
`--only economy` runs issue 10's rows: reads, result, progress, delivery and ack
(`reads`, `result` and `progress` share one set of renders).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench import ack, cadence, delivery, economy, idle, jobs, quota, scale
from bench.report import Figure, save, table
from bench.report import load as load_figures

Runner = Callable[[bool], Awaitable[list[Figure]]]

BENCHMARKS: dict[str, Runner] = {
    "ack": lambda quick: ack.run(50 if quick else 200),
    "idle": lambda quick: idle.run(200 if quick else 1000, window=8.0 if quick else 30.0),
    "cadence": lambda quick: cadence.run(3 if quick else 10, speed=60.0 if quick else 30.0),
    "quota": lambda quick: quota.run(1000 if quick else 6000),
    "jobs": lambda quick: jobs.run(5 if quick else 25, image_bytes=(2 if quick else 10) << 20),
    # Issue 10: 10 renders of 60 s at once (5 of 30 s with --quick), real time.
    "reads": lambda quick: economy.reads(*_renders(quick)),
    "result": lambda quick: economy.result(*_renders(quick)),
    "progress": lambda quick: economy.progress(*_renders(quick)),
    "delivery": lambda quick: delivery.run(5 if quick else 10),
    # Issue 12: 1,000 renders shared by two processes on PostgreSQL, then one killed.
    "processes": lambda quick: scale.run(200 if quick else 1000, window=8.0 if quick else 20.0),
}
GROUPS: dict[str, list[str]] = {"economy": ["reads", "result", "progress", "delivery", "ack"]}


def _renders(quick: bool) -> tuple[int, float]:
    return (5, 30.0) if quick else (10, 60.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller, faster runs")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted([*BENCHMARKS, *GROUPS]),
        help="run just this one (repeat)",
    )
    parser.add_argument("--save", type=Path, help="also write the figures to this JSON file")
    parser.add_argument(
        "--before", type=Path, help="a run saved with --save, shown beside this one's figures"
    )
    args = parser.parse_args(argv)
    before = load_figures(args.before) if args.before else None
    chosen = [n for name in args.only or list(BENCHMARKS) for n in GROUPS.get(name, [name])]
    names = list(dict.fromkeys(chosen))
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"# bench: {', '.join(names)}{' (quick)' if args.quick else ''}; load {load}")
    figures: list[Figure] = []
    for name in names:
        began = time.monotonic()
        print(f"running {name}…", file=sys.stderr, flush=True)
        try:
            figures += asyncio.run(BENCHMARKS[name](args.quick))
        except Exception as exc:  # one broken benchmark still leaves the others' numbers
            figures.append(Figure(name, f"failed: {exc!r}"[:120], float("nan"), "", "==", 0))
        print(f"{name} took {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
    if args.save:
        save(figures, args.save)
    print()
    print(table(figures, before))
    misses = sum(1 for f in figures if f.verdict == "MISS")
    print(f"\n{misses} of {sum(1 for f in figures if f.verdict)} targets missed")
    return 2 if any(f.name.startswith("failed:") for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
