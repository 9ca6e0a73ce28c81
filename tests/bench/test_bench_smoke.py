"""Each benchmark in a tiny configuration, so the bench code can't rot.

These check that the numbers are sane (right counts, finite, no drift), never the
timing targets: those belong to `python -m bench` on a quiet machine.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from bench import ack, cadence, delivery, economy, idle, jobs, quota
from bench.report import Figure, load, save, table


def _by_name(figures: list[Figure]) -> dict[str, float]:
    assert table(figures)  # the table renders
    return {f.name: f.value for f in figures}


async def test_ack_defers_every_command() -> None:
    got = _by_name(await ack.run(5))
    assert got["deferred of 5 at once"] == 5
    assert 0 < got["ack latency, 5 at once, p50"] <= got["ack latency, 5 at once, p99"] < 3000
    single = got["ack latency, one at a time, p50"], got["ack latency, one at a time, p99"]
    assert 0 < single[0] <= single[1] < 3000


async def test_idle_measures_a_subprocess_bot() -> None:
    got = _by_name(await idle.run(5, window=1.0, settle=0.5, limit=60.0))
    assert got["jobs at the relay"] == 5
    assert got["jobs that failed"] == 0
    assert 10 < got["bot peak RSS"] < 1000
    assert math.isfinite(got["bot CPU, steady"]) and got["bot CPU, steady"] >= 0


async def test_cadence_counts_requests_and_edits() -> None:
    got = _by_name(await cadence.run(1, speed=90.0))
    assert got["jobs not delivered"] == 0
    assert got["chat: relay requests/job, max"] == 1
    for fmt in ("task", "official"):
        assert 3 <= got[f"{fmt}: relay requests/job, mean"] <= 100
        assert got[f"{fmt}: Discord edits/job"] >= 1


async def test_quota_has_no_drift() -> None:
    got = _by_name(await quota.run(200, workers=8))
    assert got["reservations/s"] > 0
    assert got["ledger drift"] == 0
    assert got["tight guild used"] <= quota.TIGHT_LIMIT


async def test_jobs_reads_rows_with_images() -> None:
    got = _by_name(await jobs.run(2, image_bytes=50_000, repeats=2))
    assert got["job rows"] == 2
    assert got["request_json per row, mean"] < 4  # KiB: references, not base64
    assert 0 < got["recent_for_user(25), p50"] and got["autocomplete read (25 rows), p50"] > 0
    assert math.isfinite(got["quota check behind an autocomplete, p50"])


async def test_economy_rows_produce_numbers() -> None:
    """Issue 10's rows on two short renders per format: counted, timed, no job lost."""
    jobs_, seconds = 2, 4.0
    got = _by_name(await economy.reads(jobs_, seconds))
    got |= _by_name(await economy.result(jobs_, seconds))  # the same renders, not run again
    got |= _by_name(await economy.progress(jobs_, seconds))
    for fmt in ("task", "official"):
        reads = got[f"{fmt}: status reads per render, max"]
        assert 1 <= got[f"{fmt}: status reads per render, mean"] <= reads < 50
        assert got[f"{fmt}: relay requests per render, all"] > reads
        p50, p95 = got[f"{fmt}: finished → visible, p50"], got[f"{fmt}: finished → visible, p95"]
        assert 0 < p50 <= p95 < 30  # seconds: every render was shown after the relay finished
        assert got[f"{fmt}: finished → file attached, p50"] >= p50  # the file never comes first
        assert 0 < got[f"{fmt}: longest gap between visible changes"] < seconds * 3
        assert got[f"{fmt}: Discord 429s"] >= 0
    callbacks = "task+callbacks: status reads per render, max"
    assert math.isnan(got[callbacks]) == bool(economy.callbacks_missing())


async def test_delivery_measures_the_bot_process_memory() -> None:
    got = _by_name(await delivery.run(2, 256 * 1024, limit=60.0))
    assert got["videos attached"] == 2
    peak = got["bot peak RSS, 2 deliveries of 0.25 MiB at once"]
    assert 10 < got["bot RSS before the renders"] <= peak < 1000


def test_a_saved_run_shows_as_before(tmp_path: Path) -> None:
    old = [Figure("reads", "task: status reads per render, max", 16, "", "<=", 8)]
    save(old, tmp_path / "before.json")
    new = [
        Figure("reads", "task: status reads per render, max", 6, "", "<=", 8),
        Figure("x", "y", 1),
    ]
    lines = table(new, load(tmp_path / "before.json")).splitlines()
    assert lines[0].split("|")[3].strip() == "Before"
    assert [c.strip() for c in lines[2].split("|")[2:6]] == [
        "task: status reads per render, max",
        "16",
        "6",
        "<= 8",
    ]
    assert lines[3].split("|")[3].strip() == ""  # no earlier figure


async def test_processes_share_renders_and_take_over_a_killed_ones_jobs() -> None:
    """Two bot processes on PostgreSQL: every render reached the relay, the killed
    process's jobs were all taken over."""
    from bench import scale

    got = _by_name(await scale.run(6, window=1.0, lease=3.0, limit=60.0))
    skipped = [name for name in got if name.startswith("skipped")]
    if skipped and os.environ.get("CI") == "true" and "PostgreSQL" in skipped[0]:
        pytest.fail(skipped[0])  # CI must run the PostgreSQL tests
    if skipped:
        pytest.skip(skipped[0])
    assert got["jobs at the relay"] == 6
    assert 0 <= got["jobs held by the killed process"] <= 6
    assert 0 < got["time until all were taken over"] <= 6.0
    for shard in (0, 1):
        assert 10 < got[f"shard {shard} process peak RSS"] < 1000
