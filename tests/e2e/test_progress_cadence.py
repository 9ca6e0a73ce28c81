"""Ten renders in one channel, on a clock that runs only while everything waits: every
job's message moves at least every 5 s of that clock, within Discord's own buckets."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio

from bot.clock import FakeClock
from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import Behaviour, FakeRelay

from .conftest import FINAL_TITLES, RELAY_KEY, StartBot, is_final


class VirtualClock(FakeClock):
    """A FakeClock whose sleepers really wait, each until the test moves time past its
    deadline: ten jobs sleeping 5 s at once take 5 s of clock time, not 50."""

    def __init__(self) -> None:
        super().__init__(datetime.now(UTC))
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        woken = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.monotonic() + seconds, next(self._order), woken))
        try:
            await woken
        finally:
            woken.cancel()

    def next_deadline(self) -> float | None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    def advance_to(self, moment: float) -> None:
        self.advance(max(0.0, moment - self.monotonic()))
        while self._sleepers and self._sleepers[0][0] <= self.monotonic():
            _, _, woken = heapq.heappop(self._sleepers)
            if not woken.done():
                woken.set_result(None)


async def _settled(fake: FakeDiscord, relay: FakeRelay) -> None:
    """Until the bot and both fakes have nothing left to do at this moment of clock time:
    no new request for a few real milliseconds (so time never runs during an edit)."""
    seen = (-1, -1)
    while seen != (len(fake.requests), len(relay.requests)):
        seen = (len(fake.requests), len(relay.requests))
        for _ in range(3):
            await asyncio.sleep(0.002)


async def run_clock(
    clock: VirtualClock, fake: FakeDiscord, relay: FakeRelay, *, step: float = 0.1
) -> None:
    """Move clock time forward in `step`s (or to the next sleeper) whenever the bot and
    the fakes are idle, for as long as the test runs."""
    while True:
        await _settled(fake, relay)
        moment = clock.monotonic() + step
        deadline = clock.next_deadline()
        clock.advance_to(min(moment, deadline) if deadline is not None else moment)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def fake_discord_options(clock: VirtualClock) -> dict[str, Any]:
    """Discord's own buckets (edits: 5 per 5 s per channel, and per interaction token; 50
    requests a second in all), on the bot's clock, and answers that take Discord's usual
    quarter of a second of that clock."""

    async def answer_delay(method: str, path: str) -> None:
        await clock.sleep(ANSWER_SECONDS)

    return {
        "clock": clock.monotonic,
        "edit_rate_limit": (5, 5.0),
        "global_rate_limit": (50, 1.0),
        "answer_delay": answer_delay,
    }


@pytest_asyncio.fixture
async def relay(clock: VirtualClock) -> AsyncIterator[FakeRelay]:
    async with FakeRelay(api_key=RELAY_KEY, clock=clock) as fake:
        fake.behaviour = Behaviour(render_seconds=RENDER_SECONDS)
        yield fake


@pytest_asyncio.fixture
async def time_runs(
    clock: VirtualClock, fake_discord: FakeDiscord, relay: FakeRelay
) -> AsyncIterator[None]:
    """Clock time passes (only) while the test and its bot wait."""
    driver = asyncio.create_task(run_clock(clock, fake_discord, relay))
    yield
    driver.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await driver


def _final_title(embed: dict[str, Any]) -> bool:
    return str(embed.get("title", "")).startswith(FINAL_TITLES)


RENDER_SECONDS = 60.0
ANSWER_SECONDS = 0.25
JOBS = 10
GAP = 5.0


async def test_ten_renders_in_one_channel_each_move_every_5_seconds(
    fake_discord: FakeDiscord,
    relay: FakeRelay,
    clock: VirtualClock,
    time_runs: None,
    start_bot: StartBot,
) -> None:
    """Ten 60 s renders in one channel at once, default pacing settings: on the clock every
    job's message changes at least every 5 s from its post to its final state, and Discord
    never answers 429."""
    bot = await start_bot(
        clock=clock,
        progress_edit_interval=GAP,
        max_concurrent_jobs=JOBS,
        max_concurrent_jobs_per_guild=JOBS,
        quota_guild_monthly=1000,
        quota_user_daily=1000,
    )
    assert bot.settings.progress_edits_per_second == 3.0  # the shipped budget
    sent = await asyncio.gather(
        *(fake_discord.run_slash("video", {"prompt": f"a boat {n}"}) for n in range(JOBS))
    )
    assert len({i.channel_id for i in sent}) == 1

    def all_final() -> bool:
        return all(i.original is not None and is_final(i.original) for i in sent)

    await fake_discord.changes.wait_for(lambda: all_final() or None, timeout=120)
    assert fake_discord.rate_limited_count == 0
    for inter in sent:
        assert inter.original is not None
        # From the job's first message to its first final state (the file may follow).
        versions = [v for v in inter.original.history if not v.flags & 128]  # 128: thinking
        end = next(n for n, v in enumerate(versions) if v.embeds and _final_title(v.embeds[0]))
        shown = [v.at for v in versions[: end + 1]]
        gaps = [b - a for a, b in itertools.pairwise(shown)]
        assert shown[-1] - shown[0] >= RENDER_SECONDS - 1
        assert max(gaps) <= GAP, (inter.id, [round(g, 2) for g in gaps])
