"""The line as the database last showed it: the caps, the waiting jobs, the running count.

Which job runs next is decided by `JobRepo.claim`, in the database, so the order and the
caps hold across every process sharing it: a FIFO with a global cap and a per-guild cap
on jobs at the relay, where a waiting job whose guild is at its cap keeps its place while
later jobs from other guilds start. This object keeps the caps the engine claims under
and the picture the last claim left, for `/queue` and for each job's place in line.
"""

from __future__ import annotations

from collections.abc import Sequence


class JobQueue:
    def __init__(self, max_running: int, max_per_guild: int) -> None:
        self.max_running = max_running
        self.max_per_guild = max_per_guild
        self._waiting: list[int] = []
        self.running = 0  # jobs at a relay or claimed, across every process

    def __len__(self) -> int:
        return len(self._waiting)

    def update(self, waiting: Sequence[int], running: int) -> None:
        """What the last claim saw: the waiting jobs, oldest first, and the running count."""
        self._waiting = list(waiting)
        self.running = running

    def position(self, job_id: int) -> int | None:
        """1-based place among waiting jobs, or None when the job isn't waiting."""
        try:
            return self._waiting.index(job_id) + 1
        except ValueError:
            return None

    def ahead_of(self, job_id: int) -> int:
        """How many waiting jobs are older than `job_id`."""
        return sum(1 for waiting in self._waiting if waiting < job_id)

    def waiting(self) -> list[int]:
        return list(self._waiting)

    def forget(self, job_id: int) -> None:
        """The job left the line (cancelled) before the next claim shows it."""
        if job_id in self._waiting:
            self._waiting.remove(job_id)
