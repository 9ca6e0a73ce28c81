"""A request budget per relay: at most N requests in any minute, submits first.

Relays ration requests per key (new-api's own refusal: "1分钟内最多请求10次"), and a
refused request is worse than a late one: a refused poll is a wasted look, a refused
submit sends the job to another relay. So every request to a relay (submit, status read,
download from the relay, model list) takes a slot here before it is sent.

- **The window.** A slot counts from the moment its answer began (headers, or an error),
  not from when it was sent: the relay counted it somewhere in between, so a slot that is
  free again here is certainly free at the relay, whatever the network's delay (a relay
  that counts in whole seconds keeps the same minute-long gaps). "Certainly" also at the
  edge: a slot frees when a full window has passed, never a rounding error before it (a
  sleep of what remains may land an ulp short; then the budget sleeps a microsecond more).
- **Priorities.** Waiting requests go by class: submits (a member is waiting for the
  job to start), then downloads of finished videos (the member's result is made and
  paid), then status reads, then listings. A request that has waited two windows
  goes before any class, oldest first, so no class starves another.
- **A 429 shrinks the budget.** A refusal ("too many requests", new-api's
  "您已达到请求数限制：1分钟内最多请求N次", in any status) halves the budget, or takes the
  limit the relay states if lower, for `shrink_for` seconds, then the configured budget
  returns. Without a configured budget the shrink starts from what was used in the last
  window, and it ends only once no request waits: "no limit" would send the whole queue
  at once, a burst the relay refuses (and a submit refused twice fails its job). A
  `Retry-After` stops all requests until it has passed.
- **Cancelling a waiter costs nothing**: it leaves the queue and nothing was sent.
- **Several processes share the key.** Each keeps `1 / share` of the configured budget
  (at least one request a minute), `share` being the live processes on the database
  (`JobEngine.processes`), so together they stay within it.

Time is the relay client's `Clock`, so tests observe minutes without waiting for them.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import re
from dataclasses import dataclass, field
from enum import IntEnum
from types import TracebackType
from typing import Any

from bot.clock import Clock

WINDOW = 60.0
MARGIN = 0.0
SHRINK_SECONDS = 300.0
MAX_PAUSE = 60.0
# The shortest sleep: a sleep of what remains may land an ulp short of the edge, and the
# next one must then get past it rather than spin.
_EPS = 1e-6

# new-api: "您已达到请求数限制：1分钟内最多请求10次"; English gateways: "10 requests per minute".
_STATED = (
    re.compile(r"(\d+)\s*分钟内最多请求\s*(\d+)\s*次"),
    re.compile(r"(\d+)\s*requests?\s*(?:per|in|/)\s*(\d*)\s*min", re.I),
)


class Priority(IntEnum):
    """Who goes first when requests wait: lower values."""

    SUBMIT = 0
    DOWNLOAD = 1
    STATUS = 2
    LISTING = 3


def stated_limit(text: str) -> int | None:
    """Requests per minute a refusal states ("1分钟内最多请求10次" → 10), if it says."""
    match = _STATED[0].search(text)
    if match:
        minutes, count = int(match.group(1)), int(match.group(2))
        return max(1, count // max(minutes, 1))
    match = _STATED[1].search(text)
    if match:
        count, minutes = int(match.group(1)), int(match.group(2) or 1)
        return max(1, count // max(minutes, 1))
    return None


@dataclass
class _Waiter:
    priority: Priority
    seq: int
    since: float
    future: asyncio.Future[None] = field(repr=False)


class Slot:
    """One granted request. Leaving the block (or `answered()`) starts its minute."""

    __slots__ = ("_budget", "_open")

    def __init__(self, budget: RequestBudget) -> None:
        self._budget = budget
        self._open = True

    def answered(self) -> None:
        """The relay has answered (its headers arrived) or the attempt ended: count it now.
        A stream's slot is counted at its headers, not minutes later at its end."""
        if self._open:
            self._open = False
            self._budget._settle()

    async def __aenter__(self) -> Slot:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.answered()


class RequestBudget:
    """At most `per_minute` requests to one relay in any `window` seconds; None = no limit
    until the relay refuses one."""

    def __init__(
        self,
        per_minute: int | None,
        clock: Clock,
        *,
        window: float = WINDOW,
        margin: float = MARGIN,
        shrink_for: float = SHRINK_SECONDS,
        starve_after: float | None = None,
    ) -> None:
        if per_minute is not None and per_minute < 1:
            raise ValueError("a request budget needs at least one request a minute")
        self.per_minute = per_minute
        self.share = 1  # processes sharing the relay key; this one keeps 1/share
        self.clock = clock
        self.window = window
        self.margin = margin
        self.shrink_for = shrink_for
        # One window would age every waiter of a full budget at once (first come, first
        # served); two keep the classes while bounding how long a status read waits.
        self.starve_after = 2 * window if starve_after is None else starve_after
        self._stamps: list[float] = []  # min-heap: when each counted request was answered
        self._in_flight = 0
        self._waiters: list[_Waiter] = []
        self._seq = itertools.count()
        self._shrunk: int | None = None
        self._shrunk_until = float("-inf")
        self._paused_until = float("-inf")
        self._changed = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        # What happened, for tests, benchmarks and `/relay status`.
        self.granted = 0
        self.waited = 0
        self.refusals = 0
        self.last_shrink: int | None = None  # the budget the last refusal left

    # --- the state ------------------------------------------------------------------

    def limit(self) -> int | None:
        """Requests allowed in the current window (None: no limit)."""
        if self._shrunk is not None and self._shrink_over():
            self._shrunk = None
        mine = None if self.per_minute is None else max(1, self.per_minute // self.share)
        if self._shrunk is None:
            return mine
        return self._shrunk if mine is None else min(mine, self._shrunk)

    def set_share(self, processes: int) -> None:
        """`processes` processes send to this relay with the same key: keep our part."""
        self.share = max(1, processes)
        self._wake()

    def _shrink_over(self) -> bool:
        """A shrink is over when its time has passed, and, without a configured budget (its
        end is "no limit"), once nobody waits: the queue is served at the shrunk pace."""
        if self.clock.monotonic() < self._shrunk_until:
            return False
        return self.per_minute is not None or not self._waiters

    def used(self) -> int:
        """Requests in flight plus those answered within the window.

        A stamp leaves once a whole window has passed since it, exactly: the relay counted
        the request at or before the stamp, so its window has passed there too. No
        tolerance: one in the early direction would send a request the relay still counts
        the old one against (a 429; on a submit, a job sent elsewhere or failed)."""
        now = self.clock.monotonic()
        span = self.window + self.margin
        while self._stamps and now - self._stamps[0] >= span:
            heapq.heappop(self._stamps)
        return self._in_flight + len(self._stamps)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def _free(self) -> bool:
        if self.clock.monotonic() < self._paused_until:
            return False
        limit = self.limit()
        return limit is None or self.used() < limit

    # --- taking a slot ----------------------------------------------------------------

    async def slot(self, priority: Priority) -> Slot:
        """Wait for a slot (by priority) and take it. Use as `async with await budget.slot(...)`."""
        if not self._waiters and self._free():
            return self._take()
        self.waited += 1
        waiter = _Waiter(
            priority,
            next(self._seq),
            self.clock.monotonic(),
            asyncio.get_running_loop().create_future(),
        )
        self._waiters.append(waiter)
        self._wake()
        try:
            await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                self._in_flight -= 1  # granted, but nothing was sent
                self.granted -= 1
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            self._wake()
            raise
        return Slot(self)

    def _take(self) -> Slot:
        self._in_flight += 1
        self.granted += 1
        return Slot(self)

    def _settle(self) -> None:
        self._in_flight -= 1
        heapq.heappush(self._stamps, self.clock.monotonic())
        self._wake()

    def _next(self) -> _Waiter:
        """The waiter to serve: one that has waited `starve_after` (oldest first), else
        the best class, first come first served within it."""
        aged = self.clock.monotonic() - self.starve_after
        starving = [w for w in self._waiters if w.since <= aged]
        if starving:
            return min(starving, key=lambda w: w.seq)
        return min(self._waiters, key=lambda w: (w.priority, w.seq))

    def _grant_ready(self) -> None:
        while self._waiters and self._free():
            waiter = self._next()
            self._waiters.remove(waiter)
            if waiter.future.done():
                continue
            self._in_flight += 1
            self.granted += 1
            waiter.future.set_result(None)

    def _until_change(self) -> float | None:
        """Seconds until a slot may free up by time alone; None if only an answer can."""
        now = self.clock.monotonic()
        if now < self._paused_until:
            return max(self._paused_until - now, _EPS)
        times = []
        if self._stamps:
            times.append(self._stamps[0] + self.window + self.margin - now)
        if self._shrunk is not None and (self.per_minute is not None or not self._waiters):
            # Without a configured budget the end of a shrink frees nobody who waits.
            times.append(self._shrunk_until - now)
        return max(min(times), _EPS) if times else None

    def _wake(self) -> None:
        self._changed.set()
        if self._waiters and (self._dispatcher is None or self._dispatcher.done()):
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch())

    async def _dispatch(self) -> None:
        """One sleeper for all waiters: grants slots as they free up."""
        while True:
            self._changed.clear()
            self._grant_ready()
            if not self._waiters:
                return
            delay = self._until_change()
            waits: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._changed.wait())}
            if delay is not None:
                waits.add(asyncio.ensure_future(self.clock.sleep(delay)))
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pending in waits:
                    pending.cancel()

    # --- the relay said no ------------------------------------------------------------

    def refused(self, retry_after: float | None = None, text: str = "") -> None:
        """A request was refused as too many: shrink the budget for a while, and honour
        the relay's `Retry-After` (capped at a minute)."""
        self.refusals += 1
        now = self.clock.monotonic()
        current = self.limit()
        if current is None:
            current = max(self.used(), 1)
        shrunk = max(1, current // 2)
        stated = stated_limit(text)
        if stated is not None:
            shrunk = min(shrunk, stated)
        self._shrunk = shrunk if self._shrunk is None else min(self._shrunk, shrunk)
        self.last_shrink = self._shrunk
        self._shrunk_until = now + self.shrink_for
        if retry_after:
            self._paused_until = max(self._paused_until, now + min(retry_after, MAX_PAUSE))
        self._wake()

    async def aclose(self) -> None:
        task, self._dispatcher = self._dispatcher, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.cancel()
        self._waiters.clear()
