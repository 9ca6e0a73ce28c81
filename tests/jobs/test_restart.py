"""An engine is dropped with jobs in flight; a new one on the same database finishes them."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from bot.fakes.relay import FakeRelay

from .conftest import new_job


async def ledger(engine) -> Counter[tuple[int | None, str]]:
    entries = await engine.db.quotas.ledger(1, limit=10_000)
    return Counter((e.job_id, e.kind) for e in entries)


@pytest.mark.parametrize("fmt", ["task", "official"])
async def test_jobs_at_the_relay_resume_and_deliver_once(
    open_engine, relay: FakeRelay, fmt
) -> None:
    held = asyncio.Event()
    relay.fail_next("poll", status=None, wait=held, times=10_000)
    first, seen = await open_engine(fmt, max_running=3)
    await first.start()
    jobs = [await first.submit(new_job(f"restart {i}", user=i, fmt=fmt)) for i in range(3)]
    await seen.wait_for(
        lambda ups: len({u.job.id for u in ups if u.kind == "progress" and u.job.relay_id}) == 3
    )
    await first.stop()  # the process dies: rows stay "running" with their relay ids
    rows = [await first.db.jobs.get(j.id) for j in jobs]
    assert all(r is not None and r.status == "running" and r.relay_id for r in rows)

    held.set()
    second, seen2 = await open_engine(fmt, max_running=3)
    await second.start()
    await seen2.wait_for(lambda _: len(seen2.finished()) == 3)

    for job in jobs:
        row = await second.db.jobs.get(job.id)
        assert row is not None and row.status == "succeeded" and row.result_url
        assert relay.submits_for(job.request.prompt) == 1
    assert all(u.kind != "finished" for u in seen.updates)  # the first engine delivered nothing
    assert [u.job.id for u in seen2.updates if u.kind == "finished"].count(jobs[0].id) == 1
    book = await ledger(second)
    for job in jobs:
        assert book[(job.id, "reserve")] == 1 and book[(job.id, "commit")] == 1
        assert book[(job.id, "refund")] == 0


async def test_queued_jobs_run_after_a_restart(open_engine, relay: FakeRelay) -> None:
    held = asyncio.Event()
    relay.fail_next("task_poll", status=None, wait=held, times=10_000)
    first, seen = await open_engine(max_running=1)
    await first.start()
    running = await first.submit(new_job("ahead", user=1))
    waiting = await first.submit(new_job("behind", user=2))
    await seen.wait_for(lambda ups: any(u.kind == "progress" and u.job.relay_id for u in ups))
    await first.stop()
    assert (await first.db.jobs.get(waiting.id)).status == "queued"  # type: ignore[union-attr]

    held.set()
    second, seen2 = await open_engine(max_running=1)
    await second.start()
    await seen2.wait_for(lambda _: {running.id, waiting.id} <= set(seen2.finished()))
    assert relay.submits_for("behind") == 1 and relay.submits_for("ahead") == 1


async def test_a_chat_stream_cut_by_a_restart_is_interrupted_and_refunded(
    open_engine, relay: FakeRelay
) -> None:
    held = asyncio.Event()
    relay.fail_next("chat", status=None, wait=held)
    first, seen = await open_engine("chat")
    await first.start()
    job = await first.submit(new_job("a streaming fox", fmt="chat"))
    await seen.wait_for(lambda ups: any(u.kind == "started" for u in ups))
    await first.stop()

    second, seen2 = await open_engine("chat")
    await second.start()
    row = await second.db.jobs.get(job.id)
    assert row is not None and row.status == "interrupted"
    assert [u.kind for u in seen2.updates] == ["finished"]
    book = await ledger(second)
    assert book[(job.id, "refund")] == 1 and book[(job.id, "commit")] == 0
    held.set()
