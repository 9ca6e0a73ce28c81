"""Failover between relays: only when the first one certainly did not take the job."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from bot.clock import FakeClock
from bot.fakes.relay import FakeRelay
from bot.relay.client import RelayClient
from bot.relay.errors import (
    TaskNotFoundError,
    UnavailableError,
)
from bot.relay.models import Finished, Submitted, VideoRequest
from bot.relay.pool import RelayPool

from .conftest import KEY, collect


@pytest.fixture
async def backup() -> AsyncIterator[FakeRelay]:
    async with FakeRelay(api_key=KEY) as fake:
        yield fake


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def pool_of(clock: FakeClock):
    made: list[RelayPool] = []

    def build(*urls: str, threshold: int = 3, cooldown: float = 60.0) -> RelayPool:
        names = ["primary", "backup", "third"]
        pool = RelayPool(
            [
                (names[i], RelayClient(url, SecretStr(KEY), clock=clock))
                for i, url in enumerate(urls)
            ],
            clock=clock,
            threshold=threshold,
            cooldown=cooldown,
        )
        made.append(pool)
        return pool

    yield build
    for pool in made:
        await pool.aclose()


def request(prompt: str = "a fox in the snow") -> VideoRequest:
    return VideoRequest.build(prompt=prompt)


def submitted(events) -> Submitted:
    return next(e for e in events if isinstance(e, Submitted))


async def test_an_unreachable_relay_hands_the_job_to_the_next(pool_of, backup: FakeRelay) -> None:
    pool = pool_of(f"http://127.0.0.1:{closed_port()}", backup.url)
    events = await collect(pool.generate(request()))
    assert submitted(events).relay == "backup" and submitted(events).format == "task"
    assert isinstance(events[-1], Finished)
    assert backup.submits_for("a fox") == 1


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (403, '{"error":{"message":"该令牌额度已用尽","type":"new_api_error"}}'),
        (401, '{"error":{"message":"无效的令牌","type":"new_api_error"}}'),
        (429, '{"error":{"message":"当前分组上游负载已饱和，请稍后再试"}}'),
        (
            503,
            '{"error":{"message":"当前分组 default 下对于模型 sora-2 无可用渠道",'
            '"code":"model_not_found"}}',
        ),
    ],
)
async def test_a_relay_that_refuses_hands_the_job_over(
    pool_of, relay: FakeRelay, backup: FakeRelay, status: int, body: str
) -> None:
    relay.fail_next("task_submit", status=status, body=body)
    events = await collect(pool_of(relay.url, backup.url).generate(request()))
    assert submitted(events).relay == "backup"
    assert relay.submits_for("a fox") == 0 and backup.submits_for("a fox") == 1


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 502, "body": "<html>502 Bad Gateway</html>", "content_type": "text/html"},
        {"status": 500, "body": '{"error":{"message":"internal"}}'},
        {"drop": True, "after_accept": True},
    ],
)
async def test_an_ambiguous_submit_failure_is_never_resubmitted_elsewhere(
    pool_of, relay: FakeRelay, backup: FakeRelay, fault: dict
) -> None:
    relay.fail_next("task_submit", **fault)
    with pytest.raises(UnavailableError):
        await collect(pool_of(relay.url, backup.url).generate(request()))
    assert backup.submits_for("a fox") == 0


async def test_an_accepted_job_stays_with_its_relay(
    pool_of, relay: FakeRelay, backup: FakeRelay
) -> None:
    # Issue 9 point 3 (was: a 401 mid-poll failed the job): the relay has the job, so a
    # refused status read is waited out on that relay, never moved elsewhere.
    relay.fail_next(
        "task_poll", status=401, body='{"error":{"message":"该令牌额度已用尽"}}', times=10
    )
    events = await collect(pool_of(relay.url, backup.url).generate(request()))
    assert isinstance(events[-1], Finished) and submitted(events).relay == "primary"
    assert relay.submits_for("a fox") == 1 and backup.submits_for("a fox") == 0


async def test_a_failing_relay_is_skipped_while_its_breaker_is_open(
    pool_of, relay: FakeRelay, backup: FakeRelay, clock: FakeClock
) -> None:
    # A cool-down longer than the renders in between (each takes a minute or so of clock).
    pool = pool_of(relay.url, backup.url, threshold=2, cooldown=600)
    relay.fail_next("task_submit", status=403, body='{"error":{"message":"用户额度不足"}}', times=2)
    for n in range(2):
        await collect(pool.generate(request(f"job {n}")))
    assert pool.members[0].breaker.state == "open"

    await collect(pool.generate(request("job 2")))
    assert len(relay.requests_to("task_submit")) == 2  # the open breaker sent nothing
    assert backup.submits_for("job 2") == 1

    clock.advance(601)  # half-open: one attempt decides; the relay has recovered
    events = await collect(pool.generate(request("job 3")))
    assert submitted(events).relay == "primary"
    assert pool.members[0].breaker.state == "closed"


async def test_when_every_relay_is_down_the_job_fails_as_unavailable(pool_of) -> None:
    pool = pool_of(f"http://127.0.0.1:{closed_port()}", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(UnavailableError) as info:
        await collect(pool.generate(request()))
    assert info.value.refund


async def test_resume_and_remix_go_to_the_named_relay(
    pool_of, relay: FakeRelay, backup: FakeRelay
) -> None:
    pool = pool_of(relay.url, backup.url)
    relay.fail_next("task_submit", status=403, body='{"error":{"message":"用户额度不足"}}')
    first = submitted(await collect(pool.generate(request())))
    assert first.relay == "backup" and first.relay_id

    resumed = await collect(pool.resume(first.relay_id, "task", relay_name="backup"))
    assert isinstance(resumed[-1], Finished)
    assert relay.requests_to("task_poll") == []

    remix = VideoRequest.build(prompt="now at night", remix_of=first.relay_id)
    events = await collect(pool.generate(remix, relay_name="backup"))
    assert submitted(events).format == "official" and len(backup.requests_to("remix")) == 1
    with pytest.raises(TaskNotFoundError):
        pool.resume("x", "task", relay_name="retired")


async def test_health_reports_every_relay(pool_of, relay: FakeRelay) -> None:
    pool = pool_of(relay.url, f"http://127.0.0.1:{closed_port()}")
    report = await pool.health()
    assert [(h.name, h.ok) for h in report] == [("primary", True), ("backup", False)]
    assert report[0].models and report[1].error


async def _open_then_cool(pool: RelayPool, relay: FakeRelay, clock: FakeClock) -> None:
    """Two refusals open the first relay's breaker; the cool-down makes it half-open."""
    # (A cool-down of 600 s: longer than those two renders take on the clock.)
    relay.fail_next("task_submit", status=403, body='{"error":{"message":"用户额度不足"}}', times=2)
    for n in range(2):
        await collect(pool.generate(request(f"opening {n}")))
    assert pool.members[0].breaker.state == "open"
    clock.advance(601)
    assert pool.members[0].breaker.state == "half-open"


async def test_half_open_lets_exactly_one_trial_through_while_others_go_elsewhere(
    pool_of, relay: FakeRelay, backup: FakeRelay, clock: FakeClock
) -> None:
    pool = pool_of(relay.url, backup.url, threshold=2, cooldown=600)
    await _open_then_cool(pool, relay, clock)
    before = len(relay.requests_to("task_submit"))
    hold = asyncio.Event()
    relay.fail_next("task_submit", wait=hold)  # the trial's answer is held back

    jobs = [asyncio.create_task(collect(pool.generate(request(f"burst {n}")))) for n in range(5)]
    done = await asyncio.wait_for(_first_finished(jobs, 4), 10)
    assert [submitted(job.result()).relay for job in done] == ["backup"] * 4
    assert len(relay.requests_to("task_submit")) == before + 1  # exactly one trial
    assert pool.members[0].breaker.state == "half-open" and not pool.members[0].breaker.allows()

    hold.set()  # the relay answers the trial: it has recovered
    results = await asyncio.wait_for(asyncio.gather(*jobs), 10)
    assert sorted(submitted(events).relay for events in results) == ["backup"] * 4 + ["primary"]
    assert pool.members[0].breaker.state == "closed"
    for n in range(5):
        assert relay.submits_for(f"burst {n}") + backup.submits_for(f"burst {n}") == 1


async def _first_finished(jobs: list[asyncio.Task[list]], count: int) -> set[asyncio.Task[list]]:
    done: set[asyncio.Task[list]] = set()
    while len(done) < count:
        finished_now, _ = await asyncio.wait(set(jobs) - done, return_when="FIRST_COMPLETED")
        done |= finished_now
    return done


async def test_a_failed_trial_reopens_and_a_cancelled_one_frees_the_slot(
    pool_of, relay: FakeRelay, backup: FakeRelay, clock: FakeClock
) -> None:
    pool = pool_of(relay.url, backup.url, threshold=2, cooldown=600)
    await _open_then_cool(pool, relay, clock)
    breaker = pool.members[0].breaker

    trial = asyncio.create_task(collect(pool.generate(request("cancelled trial"))))
    await asyncio.sleep(0)  # the trial runs up to its first network wait
    assert not breaker.allows()  # it holds the slot
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    assert breaker.state == "half-open" and breaker.allows()  # no verdict: the slot is free

    relay.fail_next("task_submit", status=403, body='{"error":{"message":"用户额度不足"}}')
    events = await collect(pool.generate(request("failing trial")))
    assert submitted(events).relay == "backup"
    assert breaker.state == "open"  # the trial failed: open again for a full cool-down
    sent = len(relay.requests_to("task_submit"))
    await collect(pool.generate(request("while open")))
    assert len(relay.requests_to("task_submit")) == sent
