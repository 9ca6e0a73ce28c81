"""Benchmark 5: reading job rows whose requests carried three 10 MB reference images.

`/jobs` autocomplete runs on every keystroke and reads a member's 25 newest jobs; `/queue`
and `/jobs list` read them too, and progress reads one job per event. When images were
stored inside the request JSON, each of those reads decoded about 40 MB per row while
holding the bot's one database connection. This fills a real SQLite file with `rows`
jobs made through `JobRepo.create` (each with its own three images, as members upload
them), then times the reads and measures the Python memory they allocate (tracemalloc
peak), and how long a quota check waits when it arrives behind an autocomplete read.

It runs against older code too (no `summaries_for_user` or image store there: the
autocomplete figure then uses `recent_for_user`, as that code's autocomplete did), so the
same command gives before and after numbers.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.report import Figure
from bot.clock import SystemClock
from bot.relay.models import ImageInput, VideoRequest
from bot.store import Database, NewJob

NAME = "jobs"
GUILD, USER = 1, 1000
MB = 1024 * 1024


async def run(rows: int = 25, *, image_bytes: int = 10 * MB, repeats: int = 5) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as scratch:
        db = await Database.open(
            Path(scratch) / "jobs.db",
            clock=SystemClock(),
            default_guild_monthly=None,
            default_user_daily=None,
        )
        try:
            began = time.perf_counter()
            ids = [await _create(db, n, image_bytes) for n in range(rows)]
            filled = time.perf_counter() - began
            return await _measure(db, ids, rows, image_bytes, repeats, filled)
        finally:
            await db.close()


async def _create(db: Database, n: int, image_bytes: int) -> int:
    images = tuple(
        ImageInput(data=os.urandom(image_bytes), content_type="image/png", filename=f"{n}-{k}.png")
        for k in range(3)
    )
    request = VideoRequest.build(prompt=f"job {n} with three reference images", images=images)
    new = NewJob(guild_id=GUILD, channel_id=1, user_id=USER, request=request, format="task")
    job = await db.jobs.create(new, cost=1)
    return job.id


async def _measure(
    db: Database, ids: list[int], rows: int, image_bytes: int, repeats: int, filled: float
) -> list[Figure]:
    jobs: Any = db.jobs
    light = getattr(jobs, "summaries_for_user", None)
    autocomplete: Callable[[], Awaitable[object]] = (
        (lambda: light(GUILD, USER, limit=25))
        if light is not None
        else (lambda: jobs.recent_for_user(GUILD, USER, limit=25))
    )

    async def recent() -> object:
        return await jobs.recent_for_user(GUILD, USER, limit=25)

    async def get() -> object:
        return await jobs.get(ids[-1])

    row = await db.fetchone("SELECT AVG(length(request_json)) FROM jobs")
    row_bytes = float(row[0]) if row else float("nan")
    size = f"{rows} rows × 3 × {image_bytes / MB:g} MB images"
    figures = [
        Figure(NAME, "job rows", rows, note=size),
        Figure(NAME, "request_json per row, mean", row_bytes / 1024, "KiB", "<", 4.0),
        Figure(NAME, "time to create the rows", filled, "s", note="JobRepo.create, one by one"),
    ]
    for label, read, ms_target, mb_target in (
        ("recent_for_user(25)", recent, 50.0, 5.0),
        ("autocomplete read (25 rows)", autocomplete, 10.0, 1.0),
        ("get(job)", get, 5.0, 1.0),
    ):
        times = [await _timed(read) for _ in range(repeats)]
        peak = await _peak_mb(read)
        figures += [
            Figure(NAME, f"{label}, p50", statistics.median(times), "ms", "<", ms_target),
            Figure(NAME, f"{label}, max", max(times), "ms"),
            Figure(NAME, f"{label}, Python memory peak", peak, "MB", "<", mb_target),
        ]
    waits = [await _quota_wait(db, autocomplete) for _ in range(repeats)]
    figures.append(
        Figure(
            NAME,
            "quota check behind an autocomplete, p50",
            statistics.median(waits),
            "ms",
            "<",
            10.0,
            note="the bot's one connection is busy meanwhile",
        )
    )
    images: Any = getattr(db, "images", None)
    if images is not None:  # the cost moved to the submit: one job's bytes, read once
        job: Any = await jobs.get(ids[-1])
        times = [await _timed(lambda: images.load(job.request)) for _ in range(repeats)]
        figures.append(
            Figure(NAME, "load one job's images to submit, p50", statistics.median(times), "ms")
        )
    return figures


async def _timed(read: Callable[[], Awaitable[object]]) -> float:
    began = time.perf_counter()
    await read()
    return (time.perf_counter() - began) * 1000


async def _peak_mb(read: Callable[[], Awaitable[object]]) -> float:
    """Python allocations during one read (the database thread's included)."""
    tracemalloc.start()
    try:
        await read()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / MB


async def _quota_wait(db: Database, read: Callable[[], Awaitable[object]]) -> float:
    """A command's quota check that arrives just after an autocomplete read started."""
    reading = asyncio.ensure_future(read())
    await asyncio.sleep(0)
    began = time.perf_counter()
    await db.quotas.status(GUILD, USER)
    waited = (time.perf_counter() - began) * 1000
    await reading
    return waited
