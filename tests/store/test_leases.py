"""Job leases in the store: claims in queue order under caps counted over every owner,
takeover only of expired leases, renewal, release, and writes conditioned on the lease."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.store import Database
from bot.store.jobs import WAITING
from bot.store.postgres import PgDatabase

from .conftest import new_job

LEASE = 30.0


async def claim(db: Database, owner: str, *, cap: int = 8, per_guild: int = 3) -> list[int]:
    claimed = await db.jobs.claim(
        owner, lease_seconds=LEASE, max_running=cap, max_per_guild=per_guild
    )
    return [job.id for job in claimed.jobs]


async def test_claims_follow_queue_order_under_caps_counted_over_all_owners(
    db: Database,
) -> None:
    ids = [(await db.jobs.create(new_job(guild_id=g, user_id=i), cost=0)).id
           for i, g in enumerate([1, 1, 1, 2, 1, 2])]  # fmt: skip
    assert await claim(db, "a", cap=2, per_guild=2) == ids[:2]
    # b sees a's two: one slot left of three, guild 1 is at its cap of two.
    assert await claim(db, "b", cap=3, per_guild=2) == [ids[3]]
    claimed = await db.jobs.claim("b", lease_seconds=LEASE, max_running=4, max_per_guild=2)
    assert [j.id for j in claimed.jobs] == [ids[5]]  # guild 1 still capped: its jobs wait
    assert claimed.waiting == [ids[2], ids[4]] and claimed.running == 4
    assert all(j.lease_owner == "b" for j in claimed.jobs)


async def test_a_live_lease_is_never_taken_and_an_expired_one_is(
    db: Database, clock: FakeClock
) -> None:
    job = await db.jobs.create(new_job(), cost=1)
    assert await claim(db, "a") == [job.id]
    assert await db.jobs.mark_submitting(job.id, owner="a")
    assert await db.jobs.mark_running(job.id, "task_1", owner="a")
    assert await db.jobs.take_over("b", lease_seconds=LEASE) == []
    clock.advance(LEASE - 1)
    assert set((await db.jobs.renew("a", lease_seconds=LEASE, host="h", pid=1)).held) == {job.id}
    clock.advance(LEASE - 1)  # renewed: still a's
    assert await db.jobs.take_over("b", lease_seconds=LEASE) == []
    clock.advance(2)
    taken = await db.jobs.take_over("b", lease_seconds=LEASE)
    assert [j.id for j in taken] == [job.id] and taken[0].relay_id == "task_1"
    # a was paused: every write of its own now changes nothing, and its renewal says so.
    assert not await db.jobs.set_progress(job.id, 50, "rendering", owner="a")
    assert not await db.jobs.finish(job.id, "succeeded", result_url="u", holder="a")
    assert (await db.jobs.renew("a", lease_seconds=LEASE, host="h", pid=1)).held == {}
    assert await db.jobs.finish(job.id, "succeeded", result_url="u", holder="b")
    row = await db.jobs.get(job.id)
    assert row is not None and row.status == "succeeded" and row.lease_owner == "b"


async def test_a_released_job_is_taken_over_at_once(db: Database) -> None:
    job = await db.jobs.create(new_job(), cost=1)
    await claim(db, "a")
    await db.jobs.mark_running(job.id, "task_1", owner="a")
    assert await db.jobs.release("a") == 1
    assert [j.id for j in await db.jobs.take_over("b", lease_seconds=LEASE)] == [job.id]


async def test_a_waiting_job_is_cancelled_only_while_nobody_runs_it(db: Database) -> None:
    first = await db.jobs.create(new_job(), cost=1)
    second = await db.jobs.create(new_job(), cost=1)
    await claim(db, "a", cap=1)
    assert not await db.jobs.finish(first.id, "cancelled", refund=True, holder=WAITING)
    assert await db.jobs.finish(second.id, "cancelled", refund=True, holder=WAITING)


async def test_a_cancel_asked_elsewhere_reaches_the_owner(db: Database) -> None:
    job = await db.jobs.create(new_job(), cost=1)
    await claim(db, "a")
    assert await db.jobs.request_cancel(job.id, "user")
    assert await db.jobs.request_cancel(job.id, "admin")
    assert await db.jobs.request_cancel(job.id, "user")  # an admin's ask is kept
    assert await db.jobs.cancel_requests("a") == {job.id: "admin"}
    assert await db.jobs.cancel_requests("b") == {}
    renewed = await db.jobs.renew("a", lease_seconds=LEASE, host="h", pid=1)
    assert renewed.held == {job.id: "admin"}
    await db.jobs.finish(job.id, "cancelled", holder="a")
    assert await db.jobs.cancel_requests("a") == {}
    assert not await db.jobs.request_cancel(job.id, "user")  # final: nothing to ask


async def test_two_processes_claiming_at_once_never_share_a_job(
    db: Database, request: pytest.FixtureRequest, db_path: Path, clock: FakeClock
) -> None:
    """Two processes' connections race to claim the same line: each job goes to one, and
    the caps hold over both."""
    if isinstance(db, PgDatabase):
        other: Any = await PgDatabase.open(request.getfixturevalue("pg_url"), clock=clock)
    else:
        other = await Database.open(db_path, clock=clock)
    try:
        for i in range(40):
            await db.jobs.create(new_job(guild_id=i % 5, user_id=i), cost=0)
        got = await asyncio.gather(
            *(
                claim(conn, owner, cap=23, per_guild=5)
                for _ in range(10)
                for conn, owner in ((db, "a"), (other, "b"))
            )
        )
        flat = [job_id for ids in got for job_id in ids]
        assert len(flat) == len(set(flat)) == 23  # never more than the cap, never twice
        rows = [await db.jobs.get(job_id) for job_id in flat]
        per_guild = Counter(row.guild_id for row in rows if row)
        assert max(per_guild.values()) <= 5
    finally:
        await other.close()


async def test_processes_are_counted_while_they_renew(db: Database, clock: FakeClock) -> None:
    dead = lambda owner, pid: pid == 2  # noqa: E731
    await db.jobs.register("h:1:x", host="h", pid=1, is_dead=dead)
    assert (await db.jobs.renew("h:1:x", lease_seconds=LEASE, host="h", pid=1)).processes == 1
    await db.jobs.register("h:2:y", host="h", pid=2, is_dead=dead)
    await db.jobs.renew("h:2:y", lease_seconds=LEASE, host="h", pid=2)
    assert (await db.jobs.renew("h:1:x", lease_seconds=LEASE, host="h", pid=1)).processes == 2
    clock.advance(LEASE + 1)  # y stopped renewing
    assert (await db.jobs.renew("h:1:x", lease_seconds=LEASE, host="h", pid=1)).processes == 1
    job = await db.jobs.create(new_job(), cost=1)
    await claim(db, "h:2:y")
    await db.jobs.mark_running(job.id, "t", owner="h:2:y")
    # A new run on host h finds y (pid 2) dead: its job is free at once.
    assert await db.jobs.register("h:3:z", host="h", pid=3, is_dead=dead) == 1
    row = await db.jobs.get(job.id)
    assert row is not None and row.lease_owner is None


async def test_a_job_reaches_submitting_once_only_from_a_live_claim(
    db: Database, clock: FakeClock
) -> None:
    """The write that allows a relay submit needs the job still waiting and the owner's
    lease unexpired: a claim that lapsed, even one its owner later got back by a
    takeover of the job, can't move it to 'submitting' again (the render would be sent
    twice and billed twice)."""
    job = await db.jobs.create(new_job(), cost=1)
    assert await claim(db, "a") == [job.id]
    clock.advance(LEASE + 1)  # a's loop was too busy to renew or submit
    assert not await db.jobs.mark_submitting(job.id, owner="a")  # lapsed: nothing sent
    assert await claim(db, "b") == [job.id]  # b claims it and submits it
    assert await db.jobs.mark_submitting(job.id, owner="b", lease_seconds=LEASE)
    assert not await db.jobs.mark_submitting(job.id, owner="b")  # once, even by b
    clock.advance(LEASE + 1)  # b is busy in turn
    assert [j.id for j in await db.jobs.take_over("a", lease_seconds=LEASE)] == [job.id]
    # a holds the job again, but its old claim's task must not submit it a second time.
    assert not await db.jobs.mark_submitting(job.id, owner="a", lease_seconds=LEASE)
    row = await db.jobs.get(job.id)
    assert row is not None and (row.status, row.lease_owner) == ("submitting", "a")


async def test_mark_submitting_renews_the_lease_for_the_submit(
    db: Database, clock: FakeClock
) -> None:
    job = await db.jobs.create(new_job(), cost=1)
    assert await claim(db, "a") == [job.id]
    clock.advance(LEASE - 1)
    assert await db.jobs.mark_submitting(job.id, owner="a", lease_seconds=LEASE)
    clock.advance(LEASE - 1)  # the submit's round trip is slow: the lease still holds
    assert await db.jobs.take_over("b", lease_seconds=LEASE) == []


async def test_a_lapsed_claim_let_go_is_claimed_again_by_anyone(
    db: Database, clock: FakeClock
) -> None:
    job = await db.jobs.create(new_job(), cost=1)
    assert await claim(db, "a") == [job.id]
    clock.advance(LEASE + 1)
    assert await db.jobs.let_go(job.id, "a")
    assert await claim(db, "a") == [job.id]  # its own, or any other process's
    assert await db.jobs.mark_submitting(job.id, owner="a")
    assert not await db.jobs.let_go(job.id, "a")  # submitting: a claim is no longer let go
