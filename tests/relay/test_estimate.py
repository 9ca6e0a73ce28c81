"""Reads scheduled from an estimate of the finish (bot/relay/estimate.py), and what that
costs against the loopback relay: counted reads on a FakeClock, never timed."""

from __future__ import annotations

from itertools import pairwise

import pytest
from pydantic import SecretStr

from bot.clock import FakeClock
from bot.fakes.relay import FakeRelay
from bot.relay.client import RelayClient
from bot.relay.errors import TimedOutError
from bot.relay.estimate import (
    EARLY_READ,
    MAX_GAP,
    MAX_OVERRUN_GAP,
    MIN_GAP,
    FinishEstimate,
    default_seconds,
    fit_finish,
    from_history,
    next_read,
)

from .conftest import KEY, collect, finished, req


def schedule(finish: float, until: float, *, callbacks: bool = False) -> list[float]:
    """The read times a job whose estimate stays `finish` gets, up to `until`."""
    estimate = FinishEstimate(finish)
    times: list[float] = []
    now = 0.0
    while True:
        now += estimate.next_read(now, reads=len(times), callbacks=callbacks)
        if now > until:
            return times
        times.append(now)


def test_progress_points_give_the_finish() -> None:
    # 25 % at 15 s and 50 % at 30 s: a minute in all, whatever the prior said.
    assert fit_finish([(15.0, 25.0), (30.0, 50.0)], prior=300.0) == pytest.approx(60.0)
    # A queue before the render: 0 % is no evidence, the slope after it is.
    assert fit_finish([(10.0, 0.0), (30.0, 20.0), (50.0, 60.0)], prior=90.0) == pytest.approx(
        70.0, abs=1.0
    )
    # One point: linear from acceptance, trusted fully from TRUST_PERCENT on.
    assert fit_finish([(20.0, 40.0)], prior=500.0) == pytest.approx(50.0)


def test_little_progress_leans_on_the_prior() -> None:
    # 5 % after 10 s alone would say 200 s; with a prior of 60 s the estimate stays near it.
    assert 60.0 < fit_finish([(10.0, 5.0)], prior=60.0) < 100.0
    # Nothing moving yet (queued, 0 %): the prior as it is.
    assert fit_finish([(3.0, 0.0)], prior=75.0) == 75.0
    assert fit_finish([], prior=75.0) == 75.0


def test_a_stall_never_puts_the_finish_in_the_past() -> None:
    assert fit_finish([(50.0, 99.0), (80.0, 99.0)], prior=60.0) >= 80.0


def test_history_seeds_the_prior_and_the_default_is_conservative() -> None:
    assert from_history([61.0, 58.0, 300.0, 60.0, 59.0]) == 60.0  # the median: one outlier
    assert from_history([]) is None
    assert from_history([0.0, -3.0]) is None
    # No history: the vendor's figures, longer for 15/25 s and much longer for HD.
    assert default_seconds(10) == 120.0
    assert default_seconds(10) < default_seconds(15) < default_seconds(25)
    assert default_seconds(15, hd=True) > default_seconds(25)


def test_reads_are_few_mid_render_and_dense_near_the_end() -> None:
    times = schedule(60.0, until=62.0)
    assert times[0] == EARLY_READ  # a refusal is seen at once
    assert len(times) <= 8
    near = [t for t in times if 50.0 <= t <= 62.0]
    middle = [t for t in times if EARLY_READ < t < 50.0]
    assert len(near) >= 3 and len(middle) <= 2, times
    assert any(abs(t - 60.0) < 0.01 for t in times)  # a read lands on the estimate itself
    gaps = [b - a for a, b in pairwise(times)]
    assert min(gaps) >= MIN_GAP and max(gaps) <= MAX_GAP


def test_a_job_later_than_its_estimate_is_read_with_growing_bounded_gaps() -> None:
    times = schedule(60.0, until=20 * 60.0)  # the estimate is wrong: it never ends
    late = [t for t in times if t > 60.0]
    gaps = [b - a for a, b in pairwise(late)]
    assert gaps == sorted(gaps)  # backing off …
    assert max(gaps) <= MAX_OVERRUN_GAP  # … but never out of sight, until the deadline
    assert times[-1] > 20 * 60.0 - MAX_OVERRUN_GAP
    assert len(times) < 100


def test_with_callbacks_the_reads_are_a_slow_safety_net() -> None:
    times = schedule(60.0, until=20 * 60.0, callbacks=True)
    assert times[0] == EARLY_READ
    assert times[1] >= 60.0 + 20.0  # nothing between the early read and well past the end
    gaps = [b - a for a, b in pairwise(times)]
    assert max(gaps) <= 120.0 and len(times) < 30


def test_a_percent_far_from_done_brings_a_late_job_back_to_the_plan() -> None:
    estimate = FinishEstimate(60.0)
    estimate.observe(45.0, 20.0)
    estimate.observe(58.0, 25.0)  # far slower than the prior: about 220 s
    wait = estimate.next_read(60.0, reads=3)
    assert wait > MAX_OVERRUN_GAP  # not the dense pace of a job due now
    assert next_read(0.0, 60.0, reads=0) == EARLY_READ


# -- against the loopback relay: reads counted, time on a FakeClock -------------------


async def render(
    clock: FakeClock,
    *,
    seconds: float,
    expected: float | None = None,
    deadline: float | None = None,
    **behaviour: object,
) -> tuple[int, float]:
    """A task-format render of `seconds` (relay time): (status reads, finish→seen delay)."""
    async with FakeRelay(api_key=KEY, clock=clock) as relay:
        relay.behaviour.render_seconds = seconds
        for name, value in behaviour.items():
            setattr(relay.behaviour, name, value)
        async with RelayClient(relay.url, SecretStr(KEY), clock=clock) as client:
            start = clock.monotonic()
            events = await collect(client.generate(req(), deadline=deadline, expected=expected))
            finished(events)
            seen = clock.monotonic() - start
        return len(relay.requests_to("task_poll")), seen - seconds


async def test_a_60_s_render_with_percent_costs_at_most_8_reads_and_is_seen_at_once(
    clock: FakeClock,
) -> None:
    reads, delay = await render(clock, seconds=60)  # no history: the default prior
    assert reads <= 8, reads
    assert 0 <= delay <= MIN_GAP, delay


async def test_history_alone_schedules_a_relay_that_reports_no_percent(
    clock: FakeClock,
) -> None:
    reads, delay = await render(clock, seconds=60, expected=60.0, report_progress=False)
    assert reads <= 8, reads
    assert 0 <= delay <= MIN_GAP, delay


async def test_without_percent_or_history_the_default_still_delivers(clock: FakeClock) -> None:
    # 120 s assumed, 60 s taken: few reads, the finish seen within one mid-render gap.
    reads, delay = await render(clock, seconds=60, report_progress=False)
    assert reads <= 6, reads
    assert 0 <= delay <= MAX_GAP, delay


async def test_a_relay_slower_than_its_history_is_read_until_it_ends(clock: FakeClock) -> None:
    # History says a minute; this one takes four, without a percent to correct it.
    reads, delay = await render(clock, seconds=240, expected=60.0, report_progress=False)
    assert 0 <= delay <= MAX_OVERRUN_GAP, delay
    assert reads < 40, reads


async def test_a_job_slower_than_its_history_is_still_read_up_to_the_deadline(
    clock: FakeClock,
) -> None:
    async with FakeRelay(api_key=KEY, clock=clock) as relay:
        relay.behaviour.outcome = "never"  # 99 % forever
        relay.behaviour.render_seconds = 30
        async with RelayClient(relay.url, SecretStr(KEY), clock=clock) as client:
            start = clock.monotonic()
            with pytest.raises(TimedOutError):
                await collect(client.generate(req(), deadline=600, expected=30.0))
            assert 600 <= clock.monotonic() - start < 600 + MAX_OVERRUN_GAP
        reads = len(relay.requests_to("task_poll"))
    gaps = [g for g in clock.slept if g >= MIN_GAP]
    assert max(gaps) <= MAX_GAP and reads < 80
