"""Issue 9 point 3: once the relay has the job, a failed status read means "not yet".

The real client polls the fake relay on loopback; outages are timed on the shared
FakeClock, so a minute of 502 pages passes in no real time.
"""

from __future__ import annotations

import json
import logging

import pytest

from bot.clock import FakeClock
from bot.fakes.relay import FakeRelay
from bot.relay.errors import (
    ContentPolicyError,
    RelayError,
    TaskNotFoundError,
    TimedOutError,
)
from bot.relay.models import Event, Progress
from bot.relay.polling import MAX_BACKOFF, NOT_FOUND_GRACE, backoff

from .conftest import KEY, collect, finished, req


def phases(events: list[Event]) -> list[str]:
    return [e.phase for e in events if isinstance(e, Progress)]


@pytest.mark.parametrize("fmt", ["task", "official"])
@pytest.mark.parametrize("seconds", [10, 60])
@pytest.mark.parametrize("kind", ["html_502", "reset"])
async def test_status_reads_failing_mid_render_are_waited_out(
    relay: FakeRelay, make_client, clock: FakeClock, fmt: str, seconds: int, kind: str
) -> None:
    relay.clock = clock
    relay.behaviour.render_seconds = 300  # still rendering when the outage ends
    fault = {"drop": True} if kind == "reset" else {}
    outage = relay.outage("poll", seconds=seconds, after=30, **fault)

    events = await collect(make_client(format=fmt).generate(req()))

    done = finished(events)
    assert done.result.url == relay.video_url(done.result.relay_id)
    assert outage.hits >= 2  # reads really failed, more than once
    assert relay.submits_for("a cat") == 1
    seen = phases(events)
    assert "no_answer" in seen
    after = seen[len(seen) - seen[::-1].index("no_answer") :]
    assert "rendering" in after  # back to the relay's own progress once reads work


@pytest.mark.parametrize("fmt", ["task", "official"])
async def test_a_resumed_job_whose_first_reads_fail_is_still_collected(
    relay: FakeRelay, make_client, clock: FakeClock, fmt: str
) -> None:
    """After a restart the first look already fails: the job is the relay's, keep reading."""
    gen = make_client(format=fmt).generate(req("resume me"))
    submitted = await anext(gen)
    await gen.aclose()
    relay.clock = clock
    relay.outage("poll", seconds=45, drop=True)
    events = await collect(make_client().resume(submitted.relay_id, fmt, deadline=600))
    assert finished(events).result.relay_id == submitted.relay_id
    assert relay.submits_for("resume me") == 1


@pytest.mark.parametrize("fmt", ["task", "official"])
async def test_task_not_exist_on_the_first_reads_is_not_yet(
    relay: FakeRelay, make_client, fmt: str
) -> None:
    relay.behaviour.not_found_polls = 2
    events = await collect(make_client(format=fmt).generate(req()))
    finished(events)
    assert relay.submits_for("a cat") == 1
    assert "no_answer" not in phases(events)  # the relay answered; it just didn't know yet


async def test_a_task_the_relay_keeps_not_knowing_ends_after_the_grace(
    relay: FakeRelay, make_client, clock: FakeClock
) -> None:
    relay.behaviour.not_found_polls = 10_000
    started = clock.monotonic()
    with pytest.raises(TaskNotFoundError):
        await collect(make_client().generate(req()))
    assert clock.monotonic() - started >= NOT_FOUND_GRACE
    assert len(relay.requests_to("poll")) >= 3


@pytest.mark.parametrize("fmt", ["task", "official"])
async def test_status_words_the_parser_does_not_know_are_not_yet(
    relay: FakeRelay, make_client, fmt: str
) -> None:
    relay.behaviour.odd_status_polls = 3
    relay.behaviour.render_polls = 6
    finished(await collect(make_client(format=fmt).generate(req())))
    assert relay.submits_for("a cat") == 1


async def test_a_failure_the_relay_states_ends_the_job_at_once(
    relay: FakeRelay, make_client
) -> None:
    """Reads that fail are retried; a readable FAILED status is an answer, not retried,
    whatever class its reason maps to (an upstream failure may be "unavailable")."""
    relay.behaviour.outcome = "failed"
    relay.fail_next("poll", status=502, times=3)
    with pytest.raises(RelayError) as info:
        await collect(make_client().generate(req()))
    assert not isinstance(info.value, TimedOutError | TaskNotFoundError)
    polls = relay.requests_to("poll")
    assert len(polls) == 3 + relay.behaviour.render_polls  # nothing read after the answer


async def test_a_policy_refusal_in_an_error_body_ends_the_job(
    relay: FakeRelay, make_client
) -> None:
    body = '{"error": {"message": "the prompt violates our content policy", "code": ""}}'
    relay.fail_next("poll", status=400, body=body)
    with pytest.raises(ContentPolicyError):
        await collect(make_client().generate(req()))
    assert len(relay.requests_to("poll")) == 1


async def test_the_deadline_still_ends_a_job_whose_reads_keep_failing(
    relay: FakeRelay, make_client, clock: FakeClock
) -> None:
    relay.clock = clock
    relay.outage("poll", seconds=3600)
    started = clock.monotonic()
    with pytest.raises(TimedOutError) as info:
        await collect(make_client().generate(req(), deadline=300))
    assert 300 <= clock.monotonic() - started < 300 + MAX_BACKOFF
    assert "not answering" in info.value.detail
    assert len(relay.requests_to("poll")) < 20  # backed off, not hammered


async def test_a_retry_after_on_a_failed_read_is_honoured(
    relay: FakeRelay, make_client, clock: FakeClock
) -> None:
    relay.fail_next("poll", status=503, headers={"Retry-After": "23"})
    finished(await collect(make_client().generate(req())))
    assert 23.0 in clock.slept


def test_backoff_grows_to_a_minute_with_jitter() -> None:
    firsts = [backoff(1) for _ in range(50)]
    assert all(3.0 <= d <= 5.0 for d in firsts) and len(set(firsts)) > 1
    assert 12.0 <= backoff(3) <= 20.0
    assert all(backoff(n) <= MAX_BACKOFF for n in range(1, 30))
    assert backoff(30) >= 0.8 * MAX_BACKOFF
    assert backoff(5, hint=7.0) == 7.0


async def test_a_relay_envelope_echoing_the_key_is_waited_out_and_never_logged(
    relay: FakeRelay, make_client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = json.dumps({"code": "busy", "message": f"key {KEY} is busy, retry", "data": None})
    relay.fail_next("poll", status=200, body=body, times=2)
    finished(await collect(make_client().generate(req())))
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("bot"))
    assert "is busy, retry" in logged  # the relay's words were logged ...
    assert KEY not in logged and KEY[3:-3] not in logged  # ... without the key
