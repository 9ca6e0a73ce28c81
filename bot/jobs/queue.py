"""Who runs next: a FIFO with a global cap and a per-guild cap on jobs at the relay.

A busy server must not starve the others, so a waiting job whose guild is at its cap is
skipped (it keeps its place) while later jobs from other guilds start.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Slot:
    job_id: int
    guild_id: int | None


class JobQueue:
    def __init__(self, max_running: int, max_per_guild: int) -> None:
        self.max_running = max_running
        self.max_per_guild = max_per_guild
        self._waiting: list[Slot] = []
        self._running: dict[int, Slot] = {}
        self._per_guild: Counter[int | None] = Counter()

    def __len__(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return len(self._running)

    def push(self, job_id: int, guild_id: int | None) -> None:
        self._waiting.append(Slot(job_id, guild_id))

    def remove(self, job_id: int) -> bool:
        for index, slot in enumerate(self._waiting):
            if slot.job_id == job_id:
                del self._waiting[index]
                return True
        return False

    def position(self, job_id: int) -> int | None:
        """1-based place among waiting jobs, or None when the job isn't waiting."""
        for index, slot in enumerate(self._waiting, 1):
            if slot.job_id == job_id:
                return index
        return None

    def waiting(self) -> list[int]:
        return [slot.job_id for slot in self._waiting]

    def mark_running(self, job_id: int, guild_id: int | None) -> None:
        """Count a job that is already at the relay (a resumed one) without queueing it."""
        slot = Slot(job_id, guild_id)
        self._running[job_id] = slot
        self._per_guild[guild_id] += 1

    def pop_ready(self) -> Slot | None:
        """Take the oldest waiting job that fits under both caps, and count it as running."""
        if len(self._running) >= self.max_running:
            return None
        for index, slot in enumerate(self._waiting):
            if slot.guild_id is None or self._per_guild[slot.guild_id] < self.max_per_guild:
                del self._waiting[index]
                self.mark_running(slot.job_id, slot.guild_id)
                return slot
        return None

    def done(self, job_id: int) -> None:
        slot = self._running.pop(job_id, None)
        if slot is not None:
            self._per_guild[slot.guild_id] -= 1
            if self._per_guild[slot.guild_id] <= 0:
                del self._per_guild[slot.guild_id]
