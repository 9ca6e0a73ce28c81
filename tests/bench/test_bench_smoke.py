"""Each benchmark in a tiny configuration, so the bench code can't rot.

These check that the numbers are sane (right counts, finite, no drift), never the
timing targets: those belong to `python -m bench` on a quiet machine.
"""

from __future__ import annotations

import math

from bench import ack, cadence, idle, jobs, quota
from bench.report import Figure, table


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
