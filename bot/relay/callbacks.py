"""Relay callbacks (`notify_hook`): a nudge to read one task now, never a verdict.

A task-format relay calls the URL given as `notify_hook` when the task ends. Nothing
signs that call, so anyone who learns the URL could send one: a callback therefore only
wakes the poll loop of a task that is ours, for one immediate status read, and what that
read says decides money and delivery. A lie costs one read and changes nothing; a task
that is not ours (or no longer polled) costs nothing; callbacks arriving together
(relays retry them) are coalesced into that one read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bot.clock import Clock

log = logging.getLogger(__name__)

#: Callbacks for one task within this many seconds of a woken read make no new read.
COALESCE_SECONDS = 2.0


class Wake:
    """One polled task's doorbell: rung by callbacks, answered by one read."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._event = asyncio.Event()
        self._quiet_until = float("-inf")
        self.rung = 0  # callbacks received (coalesced ones included)

    def ring(self) -> bool:
        """A callback came; False when it is coalesced into a read already due or done."""
        self.rung += 1
        if self._event.is_set() or self._clock.monotonic() < self._quiet_until:
            return False
        self._event.set()
        return True

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    def answered(self) -> None:
        """The read it asked for is being made: callbacks soon after are the same news."""
        self._event.clear()
        self._quiet_until = self._clock.monotonic() + COALESCE_SECONDS

    async def wait(self) -> None:
        await self._event.wait()


class Callbacks:
    """The tasks being polled that a callback may wake, by relay name and task id."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._waiting: dict[tuple[str, str], Wake] = {}
        self.ignored = 0  # callbacks for tasks that are not (or no longer) ours

    @contextmanager
    def expect(self, relay: str, task_id: str) -> Iterator[Wake]:
        """While the block runs, callbacks for `task_id` at `relay` ring the returned wake."""
        key = (relay, task_id)
        wake = self._waiting.get(key) or Wake(self.clock)
        self._waiting[key] = wake
        try:
            yield wake
        finally:
            if self._waiting.get(key) is wake:
                del self._waiting[key]

    def ring(self, relay: str, task_id: str) -> bool:
        """A callback for `task_id` arrived: True if it will cause a read."""
        wake = self._waiting.get((relay, task_id))
        if wake is None:
            self.ignored += 1
            log.info("ignored a callback for a task that is not being polled at %s", relay)
            return False
        return wake.ring()

    def __len__(self) -> int:
        return len(self._waiting)


@dataclass(frozen=True, slots=True)
class Hook:
    """What a relay client needs to ask for callbacks: the URL the relay should call
    (`notify_hook`), and where a callback for one of its tasks rings."""

    url: str
    relay: str
    callbacks: Callbacks
