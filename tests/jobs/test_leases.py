"""Several processes on one database: two engines in this test process, each with its own
connection and lease owner id, stand in for two bot processes, on SQLite and on
PostgreSQL. Lease expiry runs on the FakeClock, and the engines' lease rounds are driven
by hand (`autotick=False`)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from pydantic import SecretStr

from bot.clock import FakeClock
from bot.fakes.relay import FakeRelay
from bot.jobs.engine import CANCEL_CHARGED, CANCEL_REFUNDED, JobEngine, Requester
from bot.live_messages import EditSlots
from bot.relay.budget import RequestBudget
from bot.relay.client import RelayClient
from bot.relay.models import RelayFormat
from bot.relay.pool import RelayPool
from bot.store.database import Database
from bot.store.postgres import PgDatabase

from .conftest import KEY, Recorder, new_job

LEASE = 30.0


@pytest.fixture(params=["sqlite", "postgresql"])
async def open_engine(request: pytest.FixtureRequest, relay: FakeRelay, clock: FakeClock, db_path):
    """`tests/jobs/conftest.py`'s engines, on each backend: every engine of a test gets
    its own connection (pool) to one database, as separate processes would."""
    opened: list[tuple[JobEngine, Any, RelayClient]] = []
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None

    async def build(fmt: RelayFormat = "task", **kw: Any) -> tuple[JobEngine, Recorder]:
        limits = {"default_guild_monthly": 100, "default_user_daily": 100}
        if url is not None:
            db: Any = await PgDatabase.open(url, clock=clock, **limits)
        else:
            db = await Database.open(db_path, clock=clock, **limits)
        client = RelayClient(relay.url, SecretStr(KEY), format=fmt, clock=clock)
        engine = JobEngine(db, RelayPool([("default", client)], clock=clock), clock=clock, **kw)
        recorder = Recorder()
        engine.add_listener(recorder)
        opened.append((engine, db, client))
        return engine, recorder

    yield build
    for engine, db, client in opened:
        await engine.stop()
        await client.aclose()
        await db.close()


async def two(open_engine, fmt: str = "task", **kw: object):
    """Engines "a" and "b", started, sharing the database; lease rounds by hand."""
    engines = []
    for name in ("a", "b"):
        engine, seen = await open_engine(
            fmt, owner=f"proc-{name}", autotick=False, lease_seconds=LEASE, **kw
        )
        await engine.start()
        engines.append((engine, seen))
    return engines


async def ledger(engine: JobEngine, job_id: int, guild: int = 1) -> Counter[str]:
    entries = await engine.db.quotas.ledger(guild, limit=10_000)
    return Counter(e.kind for e in entries if e.job_id == job_id)


def started(*recorders: Recorder) -> list[int]:
    return [u.job.id for r in recorders for u in r.updates if u.kind == "started"]


def finished(*recorders: Recorder) -> list[int]:
    return [u.job.id for r in recorders for u in r.updates if u.kind == "finished"]


async def until(predicate, timeout: float = 10.0) -> None:
    """Wait for database state another engine writes (no event to await across them)."""
    async with asyncio.timeout(timeout):
        while not await predicate():  # noqa: ASYNC110 - the state is in another connection
            await asyncio.sleep(0.01)


async def test_queue_order_and_caps_hold_across_two_processes(
    open_engine, relay: FakeRelay
) -> None:
    gate = asyncio.Event()
    relay.fail_next("task_poll", status=None, wait=gate, times=1000)
    (a, seen_a), (b, seen_b) = await two(open_engine, max_running=3, max_per_guild=2)
    jobs = []
    for i in range(4):  # guild 1's jobs, asked alternately in the two processes
        jobs.append(await (a if i % 2 else b).submit(new_job(f"busy {i}", guild=1, user=i)))
    for i in range(2):
        jobs.append(await (b if i % 2 else a).submit(new_job(f"other {i}", guild=2, user=i)))
    # Claims only: the pollers' sleeps move the shared FakeClock by minutes, which
    # would make live leases look expired to a takeover round.
    await a.tick(renew=False)
    await b.tick(renew=False)
    await until(lambda: _count(lambda: len(started(seen_a, seen_b)) >= 3))

    # Three at the relays in all (not three per process), two of guild 1: its two oldest,
    # and guild 2's oldest jumps the line past guild 1's capped ones.
    assert sorted(started(seen_a, seen_b)) == [jobs[0].id, jobs[1].id, jobs[4].id]
    rows = [await a.db.jobs.get(j.id) for j in jobs]
    assert [r.status != "queued" or r.lease_owner is not None for r in rows if r] == [
        True, True, False, False, True, False,
    ]  # fmt: skip
    assert a.queue_position(jobs[2].id) == 1 and b.queue_position(jobs[3].id) == 2
    assert a.queue.running == 3

    gate.set()
    await until(lambda: _all_final(a, jobs))
    await until(lambda: _count(lambda: len(finished(seen_a, seen_b)) >= len(jobs)))
    await a.wait_idle()
    await b.wait_idle()
    assert sorted(finished(seen_a, seen_b)) == sorted(j.id for j in jobs)  # each once
    for job in jobs:
        assert relay.submits_for(job.request.prompt) == 1
        assert await ledger(a, job.id, job.guild_id) == Counter(reserve=1, commit=1)


async def _count(check) -> bool:
    return bool(check())


async def _all_final(engine: JobEngine, jobs) -> bool:
    for job in jobs:
        row = await engine.db.jobs.get(job.id)
        if row is None or not row.is_final:
            return False
    return True


@pytest.mark.parametrize("fmt", ["task", "official"])
async def test_a_dead_processs_accepted_job_is_taken_over_once_its_lease_expires(
    open_engine, relay: FakeRelay, clock: FakeClock, fmt: str
) -> None:
    held = asyncio.Event()
    relay.fail_next("poll", status=None, wait=held, times=10_000)
    (a, seen_a), (b, seen_b) = await two(open_engine, fmt)
    job = await a.submit(new_job("a lighthouse", fmt=fmt))
    await seen_a.wait_for(lambda ups: any(u.kind == "progress" and u.job.relay_id for u in ups))
    await a.stop(release=False)  # the process dies: its lease stays until it expires

    await b.tick()
    assert (await b.db.jobs.get(job.id)).lease_owner == "proc-a"  # type: ignore[union-attr]
    assert started(seen_b) == []  # a live lease is never taken
    clock.advance(LEASE + 1)
    await b.tick()
    await seen_b.wait_for(lambda ups: any(u.kind == "started" for u in ups))
    assert started(seen_b) == [job.id]  # resumed: polling the relay id, not submitting
    held.set()
    await seen_b.wait_for(lambda _: job.id in finished(seen_b))

    row = await b.db.jobs.get(job.id)
    assert row is not None and row.status == "succeeded" and row.result_url
    assert row.lease_owner == "proc-b"
    assert relay.submits_for("a lighthouse") == 1  # never submitted again
    assert finished(seen_a, seen_b) == [job.id]  # delivered once
    assert await ledger(b, job.id) == Counter(reserve=1, commit=1)  # charged once


async def test_a_restart_after_a_crash_takes_its_jobs_back_without_waiting(
    open_engine, relay: FakeRelay
) -> None:
    """The same installation's next run (a new owner id on this host) knows the old one
    is dead and need not wait out its lease."""
    held = asyncio.Event()
    relay.fail_next("task_poll", status=None, wait=held, times=10_000)
    first, seen = await open_engine(owner="host:1:old", autotick=False)
    await first.start()
    job = await first.submit(new_job("crash and back"))
    await seen.wait_for(lambda ups: any(u.kind == "progress" and u.job.relay_id for u in ups))
    await first.stop(release=False)  # kill -9: nothing released

    second, seen2 = await open_engine(owner="host:1:new", autotick=False)
    await second.start()  # no clock advance
    await seen2.wait_for(lambda ups: any(u.kind == "started" for u in ups))
    assert started(seen2) == [job.id]
    held.set()
    await seen2.wait_for(lambda _: job.id in finished(seen2))
    assert relay.submits_for("crash and back") == 1
    assert await ledger(second, job.id) == Counter(reserve=1, commit=1)


async def test_a_job_cut_mid_submit_is_not_submitted_again_by_the_new_owner(
    open_engine, relay: FakeRelay, clock: FakeClock
) -> None:
    """No relay id: the submit may have reached the relay, so the new owner never sends
    it again; it ends interrupted and refunded, as after a restart."""
    held = asyncio.Event()
    relay.fail_next("submit", status=None, wait=held)
    (a, _seen_a), (b, seen_b) = await two(open_engine)
    job = await a.submit(new_job("cut mid-submit"))
    await until(lambda: _has_status(a, job.id, "submitting"))
    await asyncio.sleep(0.05)  # the request is on the wire
    await a.stop(release=False)
    clock.advance(LEASE + 1)
    await b.tick()
    row = await b.db.jobs.get(job.id)
    assert row is not None and row.status == "interrupted"
    assert finished(seen_b) == [job.id]
    assert await ledger(b, job.id) == Counter(reserve=1, refund=1)
    held.set()
    assert relay.submits_for("cut mid-submit") <= 1


async def _has_status(engine: JobEngine, job_id: int, status: str) -> bool:
    row = await engine.db.jobs.get(job_id)
    return row is not None and row.status == status


async def test_a_paused_owner_that_lost_its_lease_writes_nothing_over_the_new_owner(
    open_engine, relay: FakeRelay, clock: FakeClock
) -> None:
    paused = asyncio.Event()
    relay.fail_next("task_poll", status=None, wait=paused)  # a's next read hangs: a pause
    (a, seen_a), (b, seen_b) = await two(open_engine)
    job = await a.submit(new_job("a long pause"))
    await seen_a.wait_for(lambda ups: any(u.kind == "progress" and u.job.relay_id for u in ups))
    await until(lambda: _poll_waiting(relay))

    clock.advance(LEASE + 1)  # a, stuck, renews nothing
    await b.tick()  # b takes the job over and finishes it
    await seen_b.wait_for(lambda _: job.id in finished(seen_b))
    done = await b.db.jobs.get(job.id)
    assert done is not None and done.status == "succeeded"

    paused.set()  # a wakes up, reads "done" and tries to record and deliver it
    await a.tick()  # its renewal finds the job is not its own any more
    await a.wait_idle()
    row = await a.db.jobs.get(job.id)
    assert row == done  # nothing a wrote changed the row
    assert finished(seen_a) == []  # a delivered nothing
    assert finished(seen_b) == [job.id]
    assert relay.submits_for("a long pause") == 1
    assert await ledger(b, job.id) == Counter(reserve=1, commit=1)


async def _poll_waiting(relay: FakeRelay) -> bool:
    return bool(relay.requests_to("task_poll"))


async def test_a_cancel_asked_in_another_process_is_done_by_the_owner(
    open_engine, relay: FakeRelay
) -> None:
    """The job runs in a; a member's cancel arrives in b. a stops it; accepted by the
    relay, so the member's own cancel is charged (issue 9's rule)."""
    held = asyncio.Event()
    relay.fail_next("task_poll", status=None, wait=held, times=10_000)
    (a, seen_a), (b, seen_b) = await two(open_engine)
    job = await a.submit(new_job("stop me elsewhere", user=10))
    await seen_a.wait_for(lambda ups: any(u.kind == "progress" and u.job.relay_id for u in ups))

    asking = asyncio.create_task(b.cancel(job.id, guild_id=1, user_id=10))
    await until(lambda: _cancel_asked(b, job.id))
    assert not asking.done()
    await a.tick(renew=False)  # a's next look (about a second in a real process)
    cancelled = await asyncio.wait_for(asking, 10)
    assert cancelled.status == "cancelled" and cancelled.error_detail == CANCEL_CHARGED
    assert finished(seen_a) == [job.id] and finished(seen_b) == []
    assert await ledger(a, job.id) == Counter(reserve=1, commit=1)
    held.set()


async def _cancel_asked(engine: JobEngine, job_id: int) -> bool:
    row = await engine.db.jobs.get(job_id)
    return row is not None and row.cancel_requested is not None


async def test_a_waiting_job_is_cancelled_and_refunded_from_any_process(
    open_engine, relay: FakeRelay
) -> None:
    held = asyncio.Event()
    relay.fail_next("task_poll", status=None, wait=held, times=10_000)
    (a, seen_a), (b, _seen_b) = await two(open_engine, max_running=1)
    ahead = await a.submit(new_job("ahead", user=1))
    waiting = await a.submit(new_job("in line", user=2))
    await seen_a.wait_for(lambda ups: any(u.kind == "started" for u in ups))

    cancelled = await b.cancel(waiting.id, guild_id=1, user_id=2)
    assert cancelled.status == "cancelled" and cancelled.error_detail == CANCEL_REFUNDED
    assert await ledger(b, waiting.id) == Counter(reserve=1, refund=1)
    assert relay.submits_for("in line") == 0
    await a.tick()
    assert started(seen_a) == [ahead.id]  # the cancelled one never starts
    held.set()


async def test_a_cancel_asked_of_a_dead_process_is_done_by_whoever_takes_the_job_over(
    open_engine, relay: FakeRelay, clock: FakeClock
) -> None:
    held = asyncio.Event()
    relay.fail_next("task_poll", status=None, wait=held, times=10_000)
    (a, seen_a), (b, seen_b) = await two(open_engine)
    job = await a.submit(new_job("orphan", user=10))
    await seen_a.wait_for(lambda ups: any(u.kind == "progress" and u.job.relay_id for u in ups))
    await a.stop(release=False)

    # An admin's cancel: refunded even though the relay has the job.
    asking = asyncio.create_task(b.cancel(job.id, guild_id=1, user_id=99, is_admin=True))
    await until(lambda: _cancel_asked(b, job.id))
    clock.advance(LEASE + 1)
    await b.tick()
    cancelled = await asyncio.wait_for(asking, 10)
    assert cancelled.status == "cancelled" and cancelled.error_detail == CANCEL_REFUNDED
    assert finished(seen_b) == [job.id]
    assert await ledger(b, job.id) == Counter(reserve=1, refund=1)
    held.set()


async def test_processes_count_themselves_and_share_the_budgets(
    open_engine, relay: FakeRelay, clock: FakeClock
) -> None:
    (a, _), (b, _) = await two(open_engine)
    shares: list[int] = []
    a.add_share_listener(shares.append)
    await a.tick()
    assert a.processes == 2 and shares == [2]
    await b.stop()  # a clean shutdown leaves the count at once
    await a.tick()
    assert a.processes == 1 and shares == [2, 1]


async def test_rerun_remix_and_details_work_from_a_process_that_never_ran_the_job(
    open_engine, relay: FakeRelay
) -> None:
    """Buttons read the database, so whichever process receives them can act."""
    a, seen_a = await open_engine("official")
    await a.start()
    source = await a.submit(new_job("made in a", fmt="official"))
    await seen_a.wait_for(lambda _: source.id in finished(seen_a))
    b, seen_b = await open_engine("official")
    await b.start()

    shown = await b.find(source.id, guild_id=1)
    assert shown.status == "succeeded" and shown.result_url
    requester = Requester(guild_id=1, user_id=20)
    again = await b.rerun(source.id, requester)
    changed = await b.remix(source.id, "at night", requester)
    await seen_b.wait_for(lambda _: {again.id, changed.id} <= set(finished(seen_b)))
    for job in (again, changed):
        row = await b.db.jobs.get(job.id)
        assert row is not None and row.status == "succeeded" and row.parent_job_id == source.id
    assert relay.submits_for("made in a") == 2  # the source and its rerun, once each


def test_each_process_keeps_its_share_of_the_relay_and_discord_budgets() -> None:
    clock = FakeClock()
    budget = RequestBudget(10, clock)
    budget.set_share(2)
    assert budget.limit() == 5
    budget.set_share(3)
    assert budget.limit() == 3  # rounded down: together never more than the relay allows
    budget.set_share(1)
    assert budget.limit() == 10
    slots = EditSlots(3.0, clock)
    slots.set_share(2)
    assert slots.step == 2 / 3


async def test_a_job_whose_claim_lapsed_before_its_submit_is_submitted_once(
    open_engine, relay: FakeRelay, clock: FakeClock
) -> None:
    """The benchmark's double submits: a's claim lapses before its task submits (its loop
    was busy); b claims the job and submits it, b's lease lapses in turn and a takes the
    job over, which leaves it to a's still pending task. That task must follow b's
    render, not send it again."""
    (a, _seen_a), (b, _seen_b) = await two(open_engine)
    prompt = "claimed twice"

    async def busy_loop(update) -> None:  # runs in a.submit between its claim and its task
        if update.kind != "queued" or update.job.request.prompt != prompt:
            return
        clock.advance(LEASE + 1)
        await b.tick()
        await until(lambda: _has_status(b, update.job.id, "running"))
        clock.advance(LEASE + 1)
        # a's lease round: the job is among a's tasks, so a's takeover leaves it to them.
        taken = await a.db.jobs.take_over(a.owner, lease_seconds=LEASE)
        assert [j.id for j in taken] == [update.job.id]

    a.add_listener(busy_loop)
    job = await a.submit(new_job(prompt))
    await until(lambda: _is_final(a, job.id))
    await a.wait_idle()
    row = await a.db.jobs.get(job.id)
    assert row is not None and row.status == "succeeded"
    assert relay.submits_for(prompt) == 1
    assert await ledger(a, job.id) == Counter(reserve=1, commit=1)


async def _is_final(engine: JobEngine, job_id: int) -> bool:
    row = await engine.db.jobs.get(job_id)
    return row is not None and row.is_final


async def test_a_claim_that_lapsed_before_its_submit_sends_nothing_and_goes_back_in_line(
    open_engine, relay: FakeRelay, clock: FakeClock
) -> None:
    """A submit sent on a lapsed lease would race a takeover that refunds the job as cut
    mid-submit while the relay bills it. The lapsed claim sends nothing; the job is
    claimed afresh, and a submit in flight under a live lease is left alone."""
    held = asyncio.Event()
    relay.fail_next("submit", status=None, wait=held)
    (a, _seen_a), (b, seen_b) = await two(open_engine)
    prompt = "lapsed claim"

    async def busy_loop(update) -> None:  # runs in a.submit between its claim and its task
        if update.kind == "queued" and update.job.request.prompt == prompt:
            clock.advance(LEASE + 1)

    a.add_listener(busy_loop)
    job = await a.submit(new_job(prompt))
    await until(lambda: _has_status(a, job.id, "submitting"))
    await until(lambda: _count(lambda: len(relay.requests_to("submit")) >= 1))
    await b.tick()  # a's submit is in flight under a live lease: b takes nothing
    row = await b.db.jobs.get(job.id)
    assert row is not None and (row.status, row.lease_owner) == ("submitting", a.owner)
    held.set()
    await until(lambda: _is_final(a, job.id))
    await a.wait_idle()
    row = await a.db.jobs.get(job.id)
    assert row is not None and row.status == "succeeded"
    assert relay.submits_for(prompt) == 1
    assert finished(seen_b) == []
    assert await ledger(a, job.id) == Counter(reserve=1, commit=1)
