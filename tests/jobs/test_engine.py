"""The job engine against a real SQLite file and the fake relay on loopback."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from bot.fakes.relay import FakeRelay
from bot.jobs.engine import JobError, Requester, render_deadline
from bot.relay.models import VideoRequest
from bot.store.quotas import QuotaExceededError

from .conftest import new_job


async def ledger_kinds(engine, job_id: int) -> Counter[str]:
    entries = await engine.db.quotas.ledger(1, limit=10_000)
    return Counter(e.kind for e in entries if e.job_id == job_id)


@pytest.mark.parametrize("fmt", ["task", "official", "chat"])
async def test_a_job_runs_from_queue_to_delivered_link(open_engine, relay: FakeRelay, fmt) -> None:
    engine, seen = await open_engine(fmt)
    await engine.start()
    job = await engine.submit(new_job(fmt=fmt))
    await seen.wait_for(lambda _: job.id in seen.finished())

    done = await engine.db.jobs.get(job.id)
    assert done is not None and done.status == "succeeded"
    assert done.result_url and done.result_url.startswith(relay.url)
    kinds = seen.kinds(job.id)
    assert kinds[0] == "queued" and kinds[1] == "started" and kinds[-1] == "finished"
    assert "progress" in kinds
    assert relay.submits_for("a cat walks") == 1
    assert await ledger_kinds(engine, job.id) == Counter(reserve=1, commit=1)


async def test_the_row_exists_before_the_relay_is_called(open_engine, relay: FakeRelay) -> None:
    gate = asyncio.Event()
    relay.fail_next("task_submit", status=None, wait=gate)
    engine, seen = await open_engine()
    await engine.start()
    job = await engine.submit(new_job())
    await seen.wait_for(lambda ups: any(u.kind == "started" for u in ups))
    row = await engine.db.jobs.get(job.id)
    assert row is not None and row.status == "submitting" and relay.jobs == {}
    gate.set()
    await seen.wait_for(lambda _: job.id in seen.finished())


async def test_policy_refusal_is_charged_and_outage_is_refunded(
    open_engine, relay: FakeRelay
) -> None:
    relay.script(prompt_contains="forbidden", outcome="policy")
    relay.fail_next(
        "task_submit", status=503, body="<html>bad gateway</html>", content_type="text/html"
    )
    engine, seen = await open_engine()
    await engine.start()
    outage = await engine.submit(new_job("a calm lake"))
    await seen.wait_for(lambda _: outage.id in seen.finished())
    refused = await engine.submit(new_job("something forbidden"))
    await seen.wait_for(lambda _: refused.id in seen.finished())

    outage_row = await engine.db.jobs.get(outage.id)
    refused_row = await engine.db.jobs.get(refused.id)
    assert (
        outage_row
        and outage_row.status == "failed"
        and outage_row.error_code == "relay_unavailable"
    )
    assert (
        refused_row
        and refused_row.status == "failed"
        and refused_row.error_code == "content_policy"
    )
    assert await ledger_kinds(engine, outage.id) == Counter(reserve=1, refund=1)
    assert await ledger_kinds(engine, refused.id) == Counter(reserve=1, commit=1)
    status = await engine.db.quotas.status(1, 10)
    assert status.user_used == refused_row.cost


async def test_a_stuck_task_times_out_and_is_refunded(open_engine, relay: FakeRelay, clock) -> None:
    relay.behaviour.outcome = "never"
    engine, seen = await open_engine(deadline_minutes=5)
    await engine.start()
    job = await engine.submit(new_job())
    await seen.wait_for(lambda _: job.id in seen.finished())
    row = await engine.db.jobs.get(job.id)
    assert row is not None and row.status == "timed_out"
    assert await ledger_kinds(engine, job.id) == Counter(reserve=1, refund=1)
    assert sum(clock.slept) >= render_deadline(row.request, 5) - 30


async def test_quota_is_checked_before_anything_is_queued(open_engine, relay: FakeRelay) -> None:
    engine, _seen = await open_engine(user_daily=1)
    await engine.start()
    await engine.submit(new_job("first"))
    with pytest.raises(QuotaExceededError):
        await engine.submit(new_job("second"))
    await engine.wait_idle()
    assert relay.submits_for("second") == 0


async def test_caps_limit_jobs_at_the_relay(open_engine, relay: FakeRelay) -> None:
    gate = asyncio.Event()
    relay.fail_next("task_poll", status=None, wait=gate, times=1000)
    engine, seen = await open_engine(max_running=3, max_per_guild=2)
    await engine.start()
    jobs = [await engine.submit(new_job(f"busy {i}", guild=1, user=i)) for i in range(4)]
    jobs += [await engine.submit(new_job(f"other {i}", guild=2, user=i)) for i in range(2)]

    started = lambda ups: {u.job.id for u in ups if u.kind == "started"}  # noqa: E731
    await seen.wait_for(lambda ups: len(started(ups)) == 3)
    by_guild = Counter(u.job.guild_id for u in seen.updates if u.kind == "started")
    assert by_guild == {1: 2, 2: 1}  # guild 1 is capped at 2; guild 2 jumps the line
    assert engine.queue_position(jobs[2].id) == 1
    gate.set()
    await seen.wait_for(lambda _: len(seen.finished()) == 6)
    assert all(u.job.status == "succeeded" for u in seen.finished().values())


async def test_cancel_rules(open_engine, relay: FakeRelay) -> None:
    gate = asyncio.Event()
    relay.fail_next("task_poll", status=None, wait=gate, times=1000)
    engine, seen = await open_engine(max_running=1)
    await engine.start()
    running = await engine.submit(new_job("one", user=10))
    waiting = await engine.submit(new_job("two", user=10))
    await seen.wait_for(lambda ups: any(u.kind == "progress" and u.job.relay_id for u in ups))

    with pytest.raises(JobError) as info:
        await engine.cancel(waiting.id, guild_id=1, user_id=99)
    assert info.value.code == "cancel_not_yours"

    cancelled = await engine.cancel(waiting.id, guild_id=1, user_id=10)
    assert cancelled.status == "cancelled"
    assert await ledger_kinds(engine, waiting.id) == Counter(reserve=1, refund=1)

    stopped = await engine.cancel(running.id, guild_id=1, user_id=10)
    assert stopped.status == "cancelled"
    assert await ledger_kinds(engine, running.id) == Counter(reserve=1, commit=1)
    with pytest.raises(JobError):
        await engine.cancel(running.id, guild_id=1, user_id=10)
    gate.set()


async def test_remix_uses_the_official_endpoint_with_the_relay_id(
    open_engine, relay: FakeRelay
) -> None:
    engine, seen = await open_engine("task")
    await engine.start()
    source = await engine.submit(new_job("a red kite"))
    await seen.wait_for(lambda _: source.id in seen.finished())
    done = await engine.db.jobs.get(source.id)
    assert done and done.relay_id

    remix = await engine.remix(source.id, "make it blue", Requester(guild_id=1, user_id=11))
    await seen.wait_for(lambda _: remix.id in seen.finished())
    row = await engine.db.jobs.get(remix.id)
    assert row and row.status == "succeeded" and row.format == "official"
    assert row.parent_job_id == source.id
    [call] = relay.requests_to("remix")
    assert call.path == f"/v1/videos/{done.relay_id}/remix" and call.json == {
        "prompt": "make it blue"
    }

    again = await engine.rerun(remix.id, Requester(guild_id=1, user_id=12))
    await seen.wait_for(lambda _: again.id in seen.finished())
    rerun_row = await engine.db.jobs.get(again.id)
    assert rerun_row and rerun_row.status == "succeeded"
    assert rerun_row.relay_name == row.relay_name and len(relay.requests_to("remix")) == 2

    private = await engine.submit(new_job("secret", private=True))
    await seen.wait_for(lambda _: private.id in seen.finished())
    with pytest.raises(JobError) as info:
        await engine.remix(private.id, "x", Requester(guild_id=1, user_id=11))
    assert info.value.code == "remix_private"


async def test_rerun_is_a_new_job_with_the_same_request(open_engine, relay: FakeRelay) -> None:
    engine, seen = await open_engine()
    await engine.start()
    first = await engine.submit(new_job("a lighthouse"))
    await seen.wait_for(lambda _: first.id in seen.finished())
    again = await engine.rerun(first.id, Requester(guild_id=1, user_id=12))
    await seen.wait_for(lambda _: again.id in seen.finished())
    assert again.request == first.request and again.parent_job_id == first.id
    assert relay.submits_for("a lighthouse") == 2


def test_deadlines_grow_with_duration_and_hd() -> None:
    short = VideoRequest.build(prompt="x")
    long_hd = VideoRequest.build(prompt="x", duration=15, hd=True, model="sora-2-pro")
    assert render_deadline(long_hd, 20) > render_deadline(short, 20) == 20 * 60


async def test_a_cancel_between_leaving_the_line_and_starting_is_honoured(
    open_engine, relay: FakeRelay
) -> None:
    """The slot was taken (popped from the line) but the task hadn't started: the cancel
    must still stick, be refunded, and the job must never reach the relay."""
    held = asyncio.Event()
    relay.fail_next("task_poll", status=None, wait=held, times=1000)
    engine, seen = await open_engine(max_running=1)
    await engine.start()
    ahead = await engine.submit(new_job("ahead"))
    await seen.wait_for(lambda ups: any(u.kind == "started" for u in ups))
    job = await engine.submit(new_job("a race"))
    assert engine.queue_position(job.id) == 1

    # A slot frees, and the pump claims the job from the line…
    claimed = await engine.db.jobs.claim(
        engine.owner, lease_seconds=30, max_running=2, max_per_guild=3
    )
    assert [j.id for j in claimed.jobs] == [job.id]
    cancelled = await engine.cancel(job.id, guild_id=1, user_id=10)  # …while the cancel lands
    assert cancelled.status == "cancelled"
    engine._spawn(job)  # what the pump was about to do with the row it had read
    await asyncio.gather(*(t for jid, t in engine._tasks.items() if jid != ahead.id))
    assert relay.submits_for("a race") == 0
    assert await ledger_kinds(engine, job.id) == Counter(reserve=1, refund=1)
    held.set()


async def test_a_job_acts_only_in_the_server_that_owns_it(open_engine, relay: FakeRelay) -> None:
    """Remix, rerun and cancel from another server (or of a DM job) are refused before
    anything is reserved: neither server's ledger moves."""
    gate = asyncio.Event()
    engine, seen = await open_engine("task")
    await engine.start()
    done = await engine.submit(new_job("a red kite", guild=1))
    await seen.wait_for(lambda _: done.id in seen.finished())
    relay.fail_next("task_poll", status=None, wait=gate, times=1000)
    running = await engine.submit(new_job("still going", guild=1))
    await seen.wait_for(
        lambda ups: any(u.kind == "progress" and u.job.id == running.id for u in ups)
    )
    before = [e.id for e in await engine.db.quotas.ledger(1, limit=10_000)]

    stranger = Requester(guild_id=2, user_id=10, is_admin=True)
    for attempt in (
        engine.remix(done.id, "make it blue", stranger),
        engine.rerun(done.id, stranger),
        engine.cancel(running.id, guild_id=2, user_id=10, is_admin=True),
        engine.find(done.id, guild_id=2),
    ):
        with pytest.raises(JobError) as info:
            await attempt
        assert info.value.code == "other_server"
    assert [e.id for e in await engine.db.quotas.ledger(1, limit=10_000)] == before
    assert await engine.db.quotas.ledger(2, limit=10_000) == []
    assert relay.submits_for("a red kite") == 1 and relay.requests_to("remix") == []
    assert (await engine.find(running.id, guild_id=1)).status == "running"
    gate.set()
