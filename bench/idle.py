"""Benchmark 2: what the bot costs while 1,000 videos render at the relay.

The bot runs as its own process so `/proc/PID` measures it alone; the fakes run in this
process. 1,000 `/video` commands put 1,000 jobs at the relay (caps and quotas raised),
then the bot is watched over two windows while the relay answers IN_PROGRESS:

- "steady": the relay's render clock is frozen, so every poll repeats the last
  percent — the floor cost of waiting (polls only, no progress to show);
- "advancing": the render clock runs (a 30-minute render), so most polls bring a new
  percent: a database write, an engine event and, at most every 5 s per job, an edit.

The bot's poll cadence is its own (2 s at first, slowing with elapsed time), so a
window early in the renders sees more polls per job than one late in a long render.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import tempfile
import time
from pathlib import Path

from bench.procs import RELAY_KEY, BotProcess, ProcSample, bot_env
from bench.report import Figure
from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import Behaviour, FakeRelay

NAME = "1k-rendering"
RSS_LIMIT_MB = 120.0
CPU_LIMIT_PERCENT = 3.0
RENDER_SECONDS = 1800.0
BATCH = 100


class RelayClock:
    """The fake relay's render clock: real time that can be frozen and resumed."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._frozen: float | None = None

    def monotonic(self) -> float:
        return self._frozen if self._frozen is not None else time.monotonic() + self._offset

    def freeze(self) -> None:
        self._frozen = self.monotonic()

    def resume(self) -> None:
        if self._frozen is not None:
            self._offset = self._frozen - time.monotonic()
            self._frozen = None

    def now(self) -> object:  # the relay only reads monotonic(); Clock asks for the rest
        raise NotImplementedError

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def _until(condition: object, limit: float) -> bool:
    """Poll `condition()`; False when `limit` seconds ran out (the figures then show it)."""
    deadline = time.monotonic() + limit
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def run(
    jobs: int = 1000, *, window: float = 30.0, settle: float = 5.5, limit: float = 120.0
) -> list[Figure]:
    """Start `jobs` renders, then measure the bot over a steady and an advancing window."""
    clock = RelayClock()
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as scratch:
        workdir = Path(scratch)
        async with (
            FakeDiscord(heartbeat_interval_ms=41250, callback_deadline=60.0) as discord,
            FakeRelay(api_key=RELAY_KEY, clock=clock) as relay,  # type: ignore[arg-type]
        ):
            relay.behaviour = Behaviour(render_seconds=RENDER_SECONDS)
            env = bot_env(
                discord,
                relay,
                workdir,
                max_concurrent_jobs=jobs,
                max_concurrent_jobs_per_guild=jobs,
            )
            async with BotProcess(env, workdir) as bot:
                start = time.monotonic()
                for first in range(0, jobs, BATCH):
                    batch = await asyncio.gather(
                        *(
                            discord.run_slash("video", {"prompt": f"render {n}"})
                            for n in range(first, min(first + BATCH, jobs))
                        )
                    )
                    await _until(lambda b=batch: all(i.responded for i in b), limit)
                await _until(lambda: sum(1 for j in relay.jobs.values() if j.polls) >= jobs, limit)
                ramp = time.monotonic() - start
                # Frozen past the relay's "queued" first tenth: each job's next poll shows a
                # new percent, the one after repeats it; then the last edits go out.
                clock.freeze()
                for job in relay.jobs.values():
                    job.started -= RENDER_SECONDS * 0.15
                seen = {job.id: job.polls for job in relay.jobs.values()}
                await _until(
                    lambda: (
                        sum(j.polls >= seen[j.id] + 2 for j in relay.jobs.values())
                        >= 0.95 * len(seen)
                    ),
                    limit / 4,
                )
                await asyncio.sleep(settle)
                steady = await _window(bot, relay, discord, window)
                clock.resume()
                advancing = await _window(bot, relay, discord, window)
                peak = bot.sample().peak_rss
                polled = {r.path for r in relay.requests[advancing.requests_from :]}
            statuses = _statuses(workdir / "bot.db")
        return [
            Figure(NAME, "jobs at the relay", len(relay.jobs), "", ">=", jobs),
            Figure(
                NAME,
                "jobs polled in the last window",
                len(polled),
                note="the poll budget (RELAY_POLLS_PER_SECOND) spreads polls over all jobs",
            ),
            Figure(
                NAME,
                "jobs that failed",
                sum(n for status, n in statuses.items() if status != "running"),
                "",
                "==",
                0,
                note=", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())),
            ),
            Figure(NAME, "time to start them all", ramp, "s"),
            *steady.figures("steady"),
            *advancing.figures("advancing"),
            Figure(NAME, "bot peak RSS", peak / 2**20, "MB", "<", RSS_LIMIT_MB),
        ]


class _Window:
    """What happened in one measuring window."""

    def __init__(
        self, first: ProcSample, last: ProcSample, polls: int, edits: int, requests_from: int
    ) -> None:
        self.first, self.last = first, last
        self.polls, self.edits = polls, edits
        self.requests_from = requests_from  # index of the window's first relay request

    def figures(self, label: str) -> list[Figure]:
        wall = self.last.at - self.first.at
        cpu = (self.last.cpu_seconds - self.first.cpu_seconds) / wall * 100
        return [
            Figure(
                NAME,
                f"bot CPU, {label}",
                cpu,
                "% of a core",
                "<",
                CPU_LIMIT_PERCENT,
                note=f"{wall:.0f} s window",
            ),
            Figure(NAME, f"bot RSS, {label}", self.last.rss / 2**20, "MB", "<", RSS_LIMIT_MB),
            Figure(NAME, f"relay polls/s, {label}", self.polls / wall, "/s"),
            Figure(
                NAME,
                f"bot CPU per poll, {label}",
                (self.last.cpu_seconds - self.first.cpu_seconds) / max(self.polls, 1) * 1000,
                "ms",
                note="all work in the window / polls",
            ),
            Figure(NAME, f"Discord edits/s, {label}", self.edits / wall, "/s"),
        ]


async def _window(
    bot: BotProcess, relay: FakeRelay, discord: FakeDiscord, seconds: float
) -> _Window:
    polls0 = len(relay.requests)
    edits0 = len(discord.requests)
    first = bot.sample()
    await asyncio.sleep(seconds)
    last = bot.sample()
    polls = sum(1 for r in relay.requests[polls0:] if r.endpoint == "task_poll")
    edits = sum(1 for r in discord.requests[edits0:] if r.method == "PATCH")
    return _Window(first, last, polls, edits, polls0)


def _statuses(path: Path) -> dict[str, int]:
    """Job statuses in the bot's database once it stopped (all should still be running)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
    return {str(status): int(n) for status, n in rows}
