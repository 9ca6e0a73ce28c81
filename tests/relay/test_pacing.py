"""Polls share a per-relay budget, so many jobs in flight cost a bounded rate of requests."""

from __future__ import annotations

import asyncio

from pydantic import SecretStr

from bot.clock import FakeClock, Pacer
from bot.fakes.relay import FakeRelay
from bot.relay.client import RelayClient
from bot.relay.models import VideoRequest

from .conftest import KEY, collect


async def test_the_pacer_books_evenly_spaced_slots() -> None:
    clock = FakeClock()
    pacer = Pacer(4.0, clock)
    await asyncio.gather(*(pacer.wait() for _ in range(9)))
    assert clock.slept == [0.25] * 8  # the first goes at once, then one slot apart each


async def test_every_poll_takes_a_slot_in_the_relays_budget(relay: FakeRelay) -> None:
    clock = FakeClock()
    relay.behaviour.render_polls = 6
    client = RelayClient(relay.url, SecretStr(KEY), clock=clock, polls_per_second=2.0)
    async with client:
        start = clock.monotonic()
        results = await asyncio.gather(
            *(collect(client.generate(VideoRequest.build(prompt=f"job {n}"))) for n in range(20))
        )
        booked_until = client._http._pacer._next - start
    polls = len(relay.requests_to("task_poll"))
    assert all(result[-1].result.url for result in results)  # type: ignore[union-attr]
    assert polls >= 20 * 6
    assert booked_until >= polls / 2.0  # one slot per poll, half a second apart
