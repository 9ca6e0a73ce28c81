"""Issue 9 point 8 (a cancel before a relay accepted the job is not billed) and point 11
(a cancel or the deadline racing the job's finish must not swallow "finished").

The real engine, SQLite file and relay client against the fake relay on loopback. Waits
that a cancel must land in (a 429's Retry-After, a refused connection's retry) are parked
on the clock seam, so the test decides when they end.
"""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.clock import ParkingClock
from bot.fakes.relay import FakeRelay
from bot.jobs import engine as engine_module
from bot.jobs.engine import JobEngine, JobError, JobUpdate
from bot.relay.client import RelayClient
from bot.relay.models import RelayFormat
from bot.relay.pool import RelayPool
from bot.store.database import Database
from bot.store.jobs import Job

from .conftest import KEY, Recorder, new_job


class HeldUpdate:
    """An engine listener that holds the first update matching `which` until `release()`:
    the test acts while the engine is inside that update (a delivery, the last progress)."""

    def __init__(self, engine: JobEngine, which: Callable[[JobUpdate], bool]) -> None:
        self._which = which
        self._entered, self._release = asyncio.Event(), asyncio.Event()
        self.passed: list[str] = []  # the status of each held update, once let through
        engine.add_listener(self)

    async def __call__(self, update: JobUpdate) -> None:
        if self._which(update):
            self._entered.set()
            await self._release.wait()
            self.passed.append(update.job.status)

    async def entered(self) -> None:
        await asyncio.wait_for(self._entered.wait(), 10)

    def release(self) -> None:
        self._release.set()


@pytest.fixture
def clock() -> ParkingClock:
    return ParkingClock()


async def ledger_kinds(engine: JobEngine, job_id: int) -> Counter[str]:
    entries = await engine.db.quotas.ledger(1, limit=10_000)
    return Counter(e.kind for e in entries if e.job_id == job_id)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_cancel_during_a_429_wait_is_refunded_in_full(
    open_engine, relay: FakeRelay, clock: ParkingClock
) -> None:
    relay.fail_next("task_submit", status=429, headers={"Retry-After": "30"})
    clock.park_next(30)
    engine, _seen = await open_engine()
    await engine.start()
    job = await engine.submit(new_job())
    await asyncio.wait_for(clock.parked.wait(), 10)  # the relay said "busy, come back in 30 s"

    cancelled = await engine.cancel(job.id, guild_id=1, user_id=10)  # the member's own cancel

    assert cancelled.status == "cancelled" and cancelled.error_detail == "refunded"
    assert await ledger_kinds(engine, job.id) == Counter(reserve=1, refund=1)
    assert relay.submits_for("a cat walks") == 0 and len(relay.requests_to("submit")) == 1
    clock.release()
    await engine.wait_idle()
    assert len(relay.requests_to("submit")) == 1  # and nothing was sent after the cancel


async def test_a_cancel_while_retrying_a_refused_connection_is_refunded(
    tmp_path: Path, clock: ParkingClock
) -> None:
    db = await Database.open(
        tmp_path / "bot.db", clock=clock, default_guild_monthly=100, default_user_daily=100
    )
    client = RelayClient(f"http://127.0.0.1:{closed_port()}", SecretStr(KEY), clock=clock)
    engine = JobEngine(db, RelayPool([("default", client)], clock=clock), clock=clock)
    seen = Recorder()
    engine.add_listener(seen)
    try:
        clock.park_next(0.1)  # the pause before the connect is tried again
        await engine.start()
        job = await engine.submit(new_job())
        await asyncio.wait_for(clock.parked.wait(), 10)
        cancelled = await engine.cancel(job.id, guild_id=1, user_id=10)
        assert cancelled.status == "cancelled"
        assert await ledger_kinds(engine, job.id) == Counter(reserve=1, refund=1)
    finally:
        clock.release()
        await engine.stop()
        await client.aclose()
        await db.close()


async def on_the_wire(
    open_engine, relay: FakeRelay
) -> tuple[JobEngine, Recorder, Job, asyncio.Event]:
    """A started engine whose job's submit the relay has read and not answered (it may
    bill); set the returned event to let the relay answer."""
    held, arrived = asyncio.Event(), asyncio.Event()
    relay.fail_next("task_submit", status=None, wait=held, arrived=arrived)
    engine, seen = await open_engine()
    await engine.start()
    job = await engine.submit(new_job())
    await asyncio.wait_for(arrived.wait(), 10)
    return engine, seen, job, held


@pytest.mark.parametrize(
    ("user_id", "is_admin", "outcome"),
    [(10, False, "charged"), (99, True, "refunded")],
    ids=["the-members-own", "an-admins"],
)
async def test_a_cancel_while_the_submit_may_be_on_the_wire_never_resends(
    open_engine, relay: FakeRelay, user_id: int, is_admin: bool, outcome: str
) -> None:
    """The relay has read the request and not answered: it may bill, so the member's own
    cancel is charged (no relay id to collect) and an admin's refunded; either way the
    job is not submitted again."""
    engine, _seen, job, held = await on_the_wire(open_engine, relay)

    cancelled = await engine.cancel(job.id, guild_id=1, user_id=user_id, is_admin=is_admin)

    assert cancelled.status == "cancelled" and cancelled.error_detail == outcome
    settled = "commit" if outcome == "charged" else "refund"
    assert await ledger_kinds(engine, job.id) == Counter({"reserve": 1, settled: 1})
    held.set()
    await engine.wait_idle()
    assert len(relay.requests_to("submit")) == 1


async def test_the_watchdog_does_not_cut_a_finished_jobs_delivery(
    open_engine, relay: FakeRelay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relay reported the video done just before the real-time watchdog ran out; the
    "finished" update (the Discord layer uploads the file there) must run to its end."""
    monkeypatch.setattr(engine_module, "WATCHDOG_GRACE", 0.3)
    relay.behaviour.render_polls = 1
    engine, seen = await open_engine(deadline_minutes=0.001)  # 0.06 s on the fake clock
    delivered: list[str] = []

    async def slow_delivery(update: JobUpdate) -> None:
        if update.kind == "finished":
            await asyncio.sleep(0.6)  # a long upload, past the watchdog's end
            delivered.append(update.job.status)

    engine.add_listener(slow_delivery)
    await engine.start()
    job = await engine.submit(new_job())
    await seen.wait_for(lambda _: job.id in seen.finished())
    await engine.wait_idle()

    assert delivered == ["succeeded"]
    row = await engine.db.jobs.get(job.id)
    assert row is not None and row.status == "succeeded"
    assert [u.job.status for u in seen.updates if u.kind == "finished"] == ["succeeded"]
    assert await ledger_kinds(engine, job.id) == Counter(reserve=1, commit=1)


def in_delivery(update: JobUpdate) -> bool:
    return update.kind == "finished"


def in_last_progress(update: JobUpdate) -> bool:
    """The relay said "done": the 100 % progress is being recorded, `Finished` is next."""
    return update.kind == "progress" and update.job.phase == "finishing"


@pytest.mark.parametrize(
    ("fmt", "where"),
    [
        ("task", in_delivery),
        ("task", in_last_progress),
        ("official", in_last_progress),
        ("chat", in_last_progress),
    ],
)
async def test_a_cancel_once_the_relay_reported_the_video_done_is_refused_and_it_is_delivered(
    open_engine, relay: FakeRelay, fmt: RelayFormat, where: Callable[[JobUpdate], bool]
) -> None:
    """A cancel landing while the finished video is recorded or delivered would be charged
    and lose a paid video: it is refused, and the video is delivered, charged once."""
    engine, seen = await open_engine(fmt)
    held = HeldUpdate(engine, where)
    await engine.start()
    job = await engine.submit(new_job(fmt=fmt))
    await held.entered()

    with pytest.raises(JobError) as info:
        await engine.cancel(job.id, guild_id=1, user_id=10)
    assert info.value.code == "already_finished"
    held.release()
    await engine.wait_idle()
    await seen.wait_for(lambda _: job.id in seen.finished())
    assert seen.finished()[job.id].job.status == "succeeded"
    assert len(held.passed) == 1
    row = await engine.db.jobs.get(job.id)
    assert row is not None and row.status == "succeeded"
    assert await ledger_kinds(engine, job.id) == Counter(reserve=1, commit=1)


async def test_a_second_cancel_does_not_interrupt_the_first_ones_bookkeeping(
    open_engine, relay: FakeRelay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A double click on Cancel while the submit is on the wire (charged: the relay may
    bill). The second cancel arrives while the first is writing the charged row; it must
    not cut that write, or the row is left open and a fallback refunds a billed job.

    Hold points wrap the real repository and engine calls (they still run): the first
    cancel's row write waits until the second cancel has read the job and acted."""
    engine, seen, job, held = await on_the_wire(open_engine, relay)
    writing, write_may_go, second_acted = asyncio.Event(), asyncio.Event(), asyncio.Event()
    real_finish, real_find = engine.db.jobs.finish, engine.find

    async def held_finish(job_id: int, status: str, **kw: Any) -> bool:
        if status == "cancelled" and not writing.is_set():
            writing.set()
            await write_may_go.wait()
        return await real_finish(job_id, status, **kw)  # type: ignore[arg-type]

    async def noted_find(job_id: int, *, guild_id: int) -> Job:
        job = await real_find(job_id, guild_id=guild_id)
        if writing.is_set():
            second_acted.set()  # it acts on the job synchronously from here to its wait
        return job

    monkeypatch.setattr(engine.db.jobs, "finish", held_finish)
    monkeypatch.setattr(engine, "find", noted_find)

    first = asyncio.create_task(engine.cancel(job.id, guild_id=1, user_id=10))
    await asyncio.wait_for(writing.wait(), 10)
    second = asyncio.create_task(engine.cancel(job.id, guild_id=1, user_id=10))
    await asyncio.wait_for(second_acted.wait(), 10)
    write_may_go.set()
    results = await asyncio.gather(first, second, return_exceptions=True)
    held.set()  # the relay answers the submit now; it is not read (the job is cancelled)

    for result in results:
        if isinstance(result, BaseException):
            assert isinstance(result, JobError) and result.code == "already_finished"
        else:
            assert result.status == "cancelled" and result.error_detail == "charged"
    assert await ledger_kinds(engine, job.id) == Counter(reserve=1, commit=1)
    assert [u.job.status for u in seen.updates if u.kind == "finished"] == ["cancelled"]
    await engine.wait_idle()
    assert len(relay.requests_to("submit")) == 1
