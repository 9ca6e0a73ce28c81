"""Time as a dependency, so polling, deadlines and quota periods can be tested without waiting."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """What the relay client and the job engine need to know about time."""

    def now(self) -> datetime:
        """Current wall-clock time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes backwards."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that only moves when told to, or when someone sleeps on it.

    `sleep()` advances time at once and yields to the event loop, so a poller that
    would wait an hour finishes in microseconds while still observing the hour.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._mono = 1000.0
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds

    def set(self, when: datetime) -> None:
        delta = (when - self._now).total_seconds()
        self.advance(delta)

    async def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.slept.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)


class Pacer:
    """At most `rate` events a second, spread evenly: each caller books the next slot."""

    def __init__(self, rate: float, clock: Clock) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.clock = clock
        self._next = float("-inf")

    async def wait(self) -> None:
        if not self.interval:
            return
        now = self.clock.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await self.clock.sleep(slot - now)


class ScaledClock:
    """Real time running `speed` times faster; a `Clock` for the bot and a callable for
    the fake Discord (whose rate-limit windows then pass in bot time)."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._real0 = time.monotonic()
        self._wall0 = datetime.now(UTC)

    def _elapsed(self) -> float:
        return (time.monotonic() - self._real0) * self.speed

    def monotonic(self) -> float:
        return 1000.0 + self._elapsed()

    def now(self) -> datetime:
        return self._wall0 + timedelta(seconds=self._elapsed())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)

    def __call__(self) -> float:
        return self.monotonic()


class ParkingClock(FakeClock):
    """A FakeClock whose next sleep of `park_next(seconds)` or more waits for `release()`.

    Tests hold a job inside a wait (a 429's Retry-After, a connect retry) to act there.
    """

    def __init__(self, start: datetime | None = None) -> None:
        super().__init__(start)
        self._park_at: float | None = None
        self.parked = asyncio.Event()
        self._release = asyncio.Event()

    def park_next(self, seconds: float) -> None:
        self._park_at = seconds
        self.parked.clear()
        self._release.clear()

    def release(self) -> None:
        self._release.set()

    async def sleep(self, seconds: float) -> None:
        if self._park_at is not None and seconds >= self._park_at:
            self._park_at = None
            self.parked.set()
            await self._release.wait()
        await super().sleep(seconds)
