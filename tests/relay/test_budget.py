"""The request budget alone (issue 10): its window, its priorities, a 429's shrink and the
recovery, and cancelling a request that waits. Time is a hand-turned clock: nothing moves
until the test says so, so the order of grants is exactly what the budget decided."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from bot.clock import FakeClock
from bot.fakes.relay import FakeRelay
from bot.relay.budget import Priority, RequestBudget, stated_limit
from bot.relay.errors import RateLimitedError
from bot.relay.http import RelayHTTP, watch_submits

from .conftest import KEY


class HandClock:
    """Moves only on `advance()`; a sleeper wakes when its time has come."""

    def __init__(self) -> None:
        self._mono = 1000.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC)

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._mono + max(seconds, 0.0), future))
        try:
            await future
        finally:
            self._sleepers = [(t, f) for t, f in self._sleepers if f is not future]

    async def advance(self, seconds: float) -> None:
        self._mono += seconds
        for when, future in list(self._sleepers):
            if when <= self._mono + 1e-9 and not future.done():
                future.set_result(None)
        await settle()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def take(budget: RequestBudget, priority: Priority, log: list[str], name: str) -> None:
    async with await budget.slot(priority):
        log.append(name)


async def test_at_most_n_requests_in_any_minute_counted_from_their_answers() -> None:
    clock = HandClock()
    budget = RequestBudget(3, clock)  # type: ignore[arg-type]
    log: list[str] = []
    for n in range(3):
        await take(budget, Priority.STATUS, log, f"r{n}")
    fourth = asyncio.create_task(take(budget, Priority.STATUS, log, "r3"))
    await settle()
    assert log == ["r0", "r1", "r2"] and budget.waiting == 1
    await clock.advance(59.5)
    assert not fourth.done()
    await clock.advance(0.5)
    await fourth
    assert log[-1] == "r3"


async def test_a_slot_counts_from_its_answer_not_from_when_it_was_sent() -> None:
    clock = HandClock()
    budget = RequestBudget(1, clock)  # type: ignore[arg-type]
    slot = await budget.slot(Priority.SUBMIT)
    await clock.advance(20)  # the relay took 20 s to answer
    slot.answered()
    log: list[str] = []
    waiter = asyncio.create_task(take(budget, Priority.SUBMIT, log, "next"))
    await clock.advance(59)  # 79 s after sending, 59 s after the answer
    assert not waiter.done()
    await clock.advance(1)
    await waiter
    assert log == ["next"]


async def test_a_submit_queued_behind_many_status_reads_goes_first_then_downloads() -> None:
    clock = HandClock()
    budget = RequestBudget(1, clock, starve_after=10_000)  # type: ignore[arg-type]
    log: list[str] = []
    await take(budget, Priority.STATUS, log, "first")
    tasks = [
        asyncio.create_task(take(budget, Priority.STATUS, log, f"status{n}")) for n in range(5)
    ]
    tasks.append(asyncio.create_task(take(budget, Priority.DOWNLOAD, log, "download")))
    tasks.append(asyncio.create_task(take(budget, Priority.SUBMIT, log, "submit")))
    await settle()
    for _ in range(7):
        await clock.advance(60)
    await asyncio.gather(*tasks)
    assert log == ["first", "submit", "download", *(f"status{n}" for n in range(5))]


async def test_a_request_that_waited_long_goes_before_fresher_submits() -> None:
    """No class starves: a status read waiting past `starve_after` overtakes new submits."""
    clock = HandClock()
    budget = RequestBudget(1, clock, starve_after=90)  # type: ignore[arg-type]
    log: list[str] = []
    await take(budget, Priority.SUBMIT, log, "s0")
    tasks = [asyncio.create_task(take(budget, Priority.STATUS, log, "read"))]
    await settle()
    tasks += [asyncio.create_task(take(budget, Priority.SUBMIT, log, f"s{n}")) for n in (1, 2)]
    await settle()
    for _ in range(3):
        await clock.advance(60)
    await asyncio.gather(*tasks)
    assert log == ["s0", "s1", "read", "s2"]  # at 120 s the read had waited 120 > 90 s


def test_the_refusal_states_its_limit() -> None:
    assert stated_limit("您已达到请求数限制：1分钟内最多请求10次") == 10
    assert stated_limit("您已达到请求数限制：2分钟内最多请求10次") == 5
    assert stated_limit("Rate limit: 30 requests per minute") == 30
    assert stated_limit("too many requests") is None


async def test_a_429_shrinks_the_budget_for_a_while_then_it_recovers() -> None:
    clock = HandClock()
    budget = RequestBudget(10, clock, shrink_for=300)  # type: ignore[arg-type]
    assert budget.limit() == 10
    budget.refused(None, "您已达到请求数限制：1分钟内最多请求4次")
    assert budget.limit() == 4  # what the relay stated, lower than half
    budget.refused(None, "too many requests")
    assert budget.limit() == 2  # halved again
    await clock.advance(299)
    assert budget.limit() == 2
    await clock.advance(1)
    assert budget.limit() == 10
    assert budget.refusals == 2


async def test_without_a_budget_a_429_limits_to_half_of_what_was_used() -> None:
    clock = HandClock()
    budget = RequestBudget(None, clock, shrink_for=300)  # type: ignore[arg-type]
    log: list[str] = []
    for n in range(8):
        await take(budget, Priority.STATUS, log, str(n))
    assert budget.limit() is None
    budget.refused()
    assert budget.limit() == 4
    waiter = asyncio.create_task(take(budget, Priority.STATUS, log, "after"))
    await clock.advance(59)
    assert not waiter.done()  # eight in the window, four allowed
    await clock.advance(1)
    await waiter
    await clock.advance(300)
    assert budget.limit() is None


async def test_without_a_budget_the_end_of_a_shrink_does_not_send_the_queue_at_once() -> None:
    """The relay allows 4 a minute and 30 requests wait when the five-minute shrink ends:
    "no limit" would send them in one burst the relay refuses (a submit refused twice fails
    its job), so the queue keeps the shrunk pace until it has drained."""
    clock = HandClock()
    budget = RequestBudget(None, clock, shrink_for=300)  # type: ignore[arg-type]
    log: list[str] = []
    for n in range(8):
        await take(budget, Priority.STATUS, log, str(n))
    budget.refused(None, "您已达到请求数限制：1分钟内最多请求4次")
    assert budget.limit() == 4
    waiters = [asyncio.create_task(take(budget, Priority.STATUS, log, f"w{n}")) for n in range(30)]
    await settle()
    for minute in range(1, 8):
        await clock.advance(60)
        assert budget.used() == 4, minute  # the relay's four a minute, past the five minutes
        assert budget.limit() == 4 and budget.waiting == 30 - 4 * minute
    await clock.advance(60)
    await asyncio.gather(*waiters)
    assert budget.limit() is None  # the queue has drained: the shrink is over


async def test_retry_after_stops_every_request_until_it_has_passed() -> None:
    clock = HandClock()
    budget = RequestBudget(100, clock)  # type: ignore[arg-type]
    budget.refused(30.0)
    log: list[str] = []
    waiter = asyncio.create_task(take(budget, Priority.SUBMIT, log, "submit"))
    await clock.advance(29)
    assert not waiter.done()
    await clock.advance(1)
    await waiter
    assert log == ["submit"]


async def test_a_cancelled_waiter_leaves_the_queue_and_uses_nothing() -> None:
    clock = HandClock()
    budget = RequestBudget(1, clock)  # type: ignore[arg-type]
    log: list[str] = []
    await take(budget, Priority.STATUS, log, "first")
    cancelled = asyncio.create_task(take(budget, Priority.SUBMIT, log, "cancelled"))
    other = asyncio.create_task(take(budget, Priority.STATUS, log, "other"))
    await settle()
    assert budget.waiting == 2
    cancelled.cancel()
    await settle()
    assert cancelled.cancelled() and budget.waiting == 1
    await clock.advance(60)
    await other
    assert log == ["first", "other"]
    assert budget.used() == 1


async def test_a_waiter_cancelled_as_it_is_granted_gives_the_slot_back() -> None:
    clock = HandClock()
    budget = RequestBudget(1, clock)  # type: ignore[arg-type]
    log: list[str] = []
    await take(budget, Priority.STATUS, log, "first")
    waiter = asyncio.create_task(take(budget, Priority.SUBMIT, log, "late"))
    await settle()
    clock._mono += 60  # the window passes; the grant and the cancel land together
    budget._wake()
    await asyncio.sleep(0)
    waiter.cancel()
    await settle()
    assert waiter.cancelled() and log == ["first"]
    assert budget.used() == 0  # the granted slot came back: nothing was sent
    await take(budget, Priority.STATUS, log, "now")
    assert log == ["first", "now"]


# --- through the HTTP seam, against the fake relay ------------------------------------


async def test_a_submit_cancelled_while_it_waits_for_the_budget_reached_nobody() -> None:
    """Issue 9's rule holds: a cancel while the submit waits for the budget is refunded
    (the SubmitWatch says nothing may have reached the relay), and the relay saw no submit."""
    clock = HandClock()
    async with FakeRelay(api_key=KEY) as relay:
        http = RelayHTTP(relay.url, SecretStr(KEY), clock=clock, requests_per_minute=1)  # type: ignore[arg-type]
        try:
            await http.get_json("/v1/models")  # the minute's only request
            watches = []

            async def submit() -> None:
                with watch_submits() as watch:
                    watches.append(watch)
                    await http.post_json("/v2/videos/generations", {"prompt": "a kite"})

            task = asyncio.create_task(submit())
            await settle()
            assert http.budget.waiting == 1
            task.cancel()
            await settle()
            assert task.cancelled()
            assert watches[0].may_have_reached is False
            assert relay.requests_to("submit") == [] and not relay.jobs
        finally:
            await http.aclose()


async def test_every_kind_of_request_takes_a_slot() -> None:
    """Submit, status read, listing and a download from the relay all count."""
    clock = FakeClock()
    async with FakeRelay(api_key=KEY, clock=clock) as relay:
        relay.behaviour.official_link = "none"
        http = RelayHTTP(relay.url, SecretStr(KEY), clock=clock, requests_per_minute=100)
        try:
            reply = await http.post_form("/v1/videos", {"prompt": "a kite", "model": "sora-2"}, {})
            video = reply.data["id"]
            await http.get_json(f"/v1/videos/{video}", paced=True)
            await http.get_json("/v1/models")
            relay.finish(video)
            await http.get_json(f"/v1/videos/{video}", paced=True)
            assert await http.download(f"/v1/videos/{video}/content", max_bytes=10**6)
            assert http.budget.granted == 5 and http.budget.used() == 5
        finally:
            await http.aclose()


@pytest.mark.parametrize("status", [429, 200])
async def test_new_apis_refusal_in_a_429_or_a_200_shrinks_the_budget(status: int) -> None:
    clock = FakeClock()
    async with FakeRelay(api_key=KEY, clock=clock) as relay:
        relay.requests_per_minute = 2
        relay.rate_limit_status = status
        http = RelayHTTP(relay.url, SecretStr(KEY), clock=clock)  # no budget configured
        try:
            for _ in range(2):
                await http.get_json("/v1/models", retries=0)
            with pytest.raises(RateLimitedError):
                await http.get_json("/v1/models", retries=0)
            assert relay.rate_refusals == 1 and http.budget.refusals == 1
            assert http.budget.limit() == 1  # half of three, and under the stated two
            # Reads retried through the budget now wait their turn instead of being refused.
            for _ in range(3):
                await http.get_json("/v1/models")
            assert relay.rate_refusals == 1
        finally:
            await http.aclose()


def _ulp_short_offset() -> float:
    """An advance from FakeClock's start to a reading `s` where sleeping the minute that
    remains lands an ulp before `s + 60` (float rounding: about one reading in fifty)."""
    for n in range(1, 100_000):
        s = 1000.0 + n / 1000
        if s + ((s + 60.0) - s) - 60.0 < s:
            return n / 1000
    raise AssertionError("no such reading")


async def test_a_slot_frees_when_the_relay_frees_it_never_a_rounding_error_before() -> None:
    """The relay counts a request when it arrives; the budget when its answer began, the
    same instant on a FakeClock. When the budget's sleep to the window's edge lands an ulp
    short, it must not send: the relay still counts the old request (a 429; on a submit,
    the job goes elsewhere or fails). It waits the last microsecond instead."""
    clock = FakeClock()
    clock.advance(_ulp_short_offset())
    async with FakeRelay(api_key=KEY, clock=clock) as relay:
        relay.requests_per_minute = 1
        http = RelayHTTP(relay.url, SecretStr(KEY), clock=clock, requests_per_minute=1)
        try:
            start = clock.monotonic()
            await http.get_json("/v1/models")  # the minute's only request, counted at `start`
            await http.post_json("/v2/videos/generations", {"prompt": "a kite"})
            assert relay.rate_refusals == 0, "sent before the relay's minute had passed"
            assert clock.monotonic() - start >= 60.0
            assert len(relay.requests_to("submit")) == 1 and http.budget.waited == 1
        finally:
            await http.aclose()
