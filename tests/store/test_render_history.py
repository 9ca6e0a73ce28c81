"""How long past renders took, per relay and kind: the history that seeds status reads."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot.clock import FakeClock
from bot.jobs.engine import JobEngine
from bot.relay.models import VideoRequest
from bot.store import Database

from .conftest import new_job


async def _rendered(
    db: Database, clock: FakeClock, seconds: float, *, status: str = "succeeded", **request: object
) -> None:
    new = new_job(relay_name=request.pop("relay", "main"))
    new = replace(new, request=VideoRequest.build(prompt="a cat", **request))  # type: ignore[arg-type]
    job = await db.jobs.create(new, cost=1)
    await db.jobs.mark_running(job.id, f"t{job.id}")
    clock.advance(seconds)
    await db.jobs.finish(job.id, status, result_url="https://x/v.mp4")  # type: ignore[arg-type]


async def test_finished_renders_of_the_same_kind_on_the_same_relay(
    db: Database, clock: FakeClock
) -> None:
    await _rendered(db, clock, 70)
    await _rendered(db, clock, 65)
    await _rendered(db, clock, 90, duration=15)  # another duration
    await _rendered(db, clock, 95, model="sora-2-pro")  # another model
    await _rendered(db, clock, 500, model="sora-2-pro", hd=True)  # HD
    await _rendered(db, clock, 80, relay="backup")  # another relay
    await _rendered(db, clock, 5, status="failed")  # a failure says nothing of render time
    got = await db.jobs.render_seconds("main", model="sora-2", duration=10, hd=False)
    assert got == [65.0, 70.0]  # newest first
    assert await db.jobs.render_seconds("main", model="sora-2-pro", duration=10, hd=True) == [500.0]
    assert await db.jobs.render_seconds("main", model="sora-2", duration=25, hd=False) == []
    query = (
        "SELECT id FROM jobs WHERE relay_name = ? AND status = 'succeeded'"
        " ORDER BY id DESC LIMIT 500"
    )
    if db.backend == "sqlite":
        plan = [
            str(tuple(row)) for row in await db.fetchall(f"EXPLAIN QUERY PLAN {query}", ("main",))
        ]
    else:  # a table this small is scanned unless scans are priced out

        async def explain(conn: Any) -> list[str]:
            await conn.execute("SET enable_seqscan = off")
            rows = await conn.fetch("EXPLAIN " + query.replace("?", "$1"), "main")
            await conn.execute("RESET enable_seqscan")
            return [row[0] for row in rows]

        plan = await db.run(explain)
    assert any("jobs_succeeded_by_relay" in line for line in plan), plan


async def test_the_engine_seeds_from_the_median_and_caches_it(
    db: Database, clock: FakeClock
) -> None:
    for seconds in (60, 62, 300):
        await _rendered(db, clock, seconds)
    engine = JobEngine(db, _NoRelay(), clock=clock)
    request = VideoRequest.build(prompt="x")
    assert await engine.typical_seconds("main", request) == 62.0
    await _rendered(db, clock, 100)
    assert await engine.typical_seconds("main", request) == 62.0  # cached a while
    clock.advance(3600)
    assert await engine.typical_seconds("main", request) == 81.0  # read again
    assert await engine.typical_seconds("other", request) is None


class _NoRelay:
    """The engine is asked only for its history here: no relay is ever called."""

    def generate(self, *args: object, **kw: object):  # type: ignore[no-untyped-def]
        raise AssertionError("no render in this test")

    def resume(self, *args: object, **kw: object):  # type: ignore[no-untyped-def]
        raise AssertionError("no render in this test")
