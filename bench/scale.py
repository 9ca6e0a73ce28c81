"""Benchmark: 1,000 renders shared by two bot processes on one PostgreSQL, then one killed.

Two `python -m bot` processes (shards 0 and 1 of 2, as `compose.yaml` runs them) share a
throwaway PostgreSQL 15 (`tests/pg.py`, the machine's own binaries) and the loopback
fakes: a Discord with one guild per shard and a relay whose renders take 30 minutes.
1,000 `/video` commands, half in each guild, put 1,000 jobs at the relay; then both
processes are watched over a window (CPU, RSS, and the relay's status reads a second,
from both together). Last, the process of shard 0 gets SIGKILL: the figure is the time
until none of its jobs is held by it any more (all taken over by the other process,
which needs the dead one's leases to expire: `JOB_LEASE_SECONDS`).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.idle import RelayClock
from bench.procs import RELAY_KEY, sample
from bench.report import Figure
from bot.fakes.discord import FakeDiscord
from bot.fakes.processes import BotProcess, bot_env
from bot.fakes.relay import Behaviour, FakeRelay

NAME = "2-procs-pg"
RENDER_SECONDS = 1800.0
BATCH = 100
ACTIVE = "('queued', 'submitting', 'running')"


async def _until(condition: object, limit: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + limit
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(step)
    return True


async def _held_by(url: str, name: str) -> int:
    """Active jobs whose lease the process called `name` (PROCESS_NAME) holds."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        count = await conn.fetchval(
            f"SELECT count(*) FROM jobs WHERE lease_owner LIKE $1 AND status IN {ACTIVE}",
            f"{name}:%",
        )
    finally:
        await conn.close()
    return int(count)


async def run(
    jobs: int = 1000, *, window: float = 20.0, lease: float = 10.0, limit: float = 240.0
) -> list[Figure]:
    from bot.settings import Settings
    from tests.pg import PgServer, pg_unavailable

    reason = pg_unavailable()
    if "job_lease_seconds" not in Settings.model_fields:
        reason = "job leases (JOB_LEASE_SECONDS) are not in this version"
    if reason:
        return [Figure(NAME, f"skipped: {reason}", float("nan"))]
    clock = RelayClock()
    with PgServer.start() as server, tempfile.TemporaryDirectory(prefix="bench-2p-") as scratch:
        url = server.create_database()
        workdir = Path(scratch)
        discord = FakeDiscord(
            shards=2, default_guild=False, callback_deadline=60.0, edit_rate_limit=(50, 1.0)
        )
        guild_a = discord.add_guild("A", shard=0)
        guild_b = discord.add_guild("B", shard=1)
        async with discord, FakeRelay(api_key=RELAY_KEY, clock=clock) as relay:  # type: ignore[arg-type]
            relay.behaviour = Behaviour(render_seconds=RENDER_SECONDS)
            shared = {
                "database_url": url,
                "shard_count": 2,
                "job_lease_seconds": lease,
                "max_concurrent_jobs": jobs,
                "max_concurrent_jobs_per_guild": jobs,
                "quota_guild_monthly": 100_000_000,
                "quota_user_daily": 100_000_000,
                "log_level": "WARNING",
            }
            processes: list[BotProcess] = []
            try:
                for shard in (0, 1):
                    env = bot_env(
                        discord,
                        relay,
                        RELAY_KEY,
                        shard_ids=shard,
                        process_name=f"bot-{shard}",
                        database_path=workdir / f"p{shard}" / "bot.db",
                        **shared,
                    )
                    (workdir / f"p{shard}").mkdir()
                    env["LOG_LEVEL"] = "INFO"  # "ready as" is an INFO line
                    processes.append(await BotProcess.start(f"bot-{shard}", env, workdir))
                    await processes[-1].ready(60)
                first = processes[0]
                start = time.monotonic()
                for low in range(0, jobs, BATCH):
                    batch = await asyncio.gather(
                        *(
                            discord.run_slash(
                                "video",
                                {"prompt": f"render {n}"},
                                guild_id=(guild_a if n % 2 == 0 else guild_b).id,
                            )
                            for n in range(low, min(low + BATCH, jobs))
                        )
                    )
                    await _until(lambda b=batch: all(i.responded for i in b), limit)
                await _until(lambda: sum(1 for j in relay.jobs.values() if j.polls) >= jobs, limit)
                ramp = time.monotonic() - start

                before = [sample(p.pid) for p in processes]
                reads_from = len(relay.requests)
                await asyncio.sleep(window)
                after = [sample(p.pid) for p in processes]
                reads = sum(1 for r in relay.requests[reads_from:] if r.endpoint.endswith("poll"))
                held = await _held_by(url, "bot-0")
                killed = time.monotonic()
                await first.kill()
                taken = False
                deadline = killed + lease * 4 + 30
                while not taken and time.monotonic() < deadline:
                    taken = await _held_by(url, "bot-0") == 0
                    if not taken:
                        await asyncio.sleep(0.2)
                takeover = time.monotonic() - killed if taken else float("nan")
            finally:
                for process in processes:
                    await process.stop()
        figures = [
            Figure(NAME, "jobs at the relay", len(relay.jobs), "", "==", jobs),
            Figure(
                NAME,
                "renders submitted more than once",
                sum(n - 1 for n in Counter(j.prompt for j in relay.jobs.values()).values()),
                "",
                "==",
                0,
                note="a second submit of one job is billed twice",
            ),
            Figure(NAME, "time to start them all", ramp, "s"),
            Figure(NAME, "status reads/s, both processes", reads / window, "/s"),
        ]
        for n, (b, a) in enumerate(zip(before, after, strict=True)):
            cpu = 100 * (a.cpu_seconds - b.cpu_seconds) / (a.at - b.at)
            figures.append(Figure(NAME, f"shard {n} process CPU", cpu, "%"))
            figures.append(Figure(NAME, f"shard {n} process peak RSS", a.peak_rss / 2**20, "MB"))
        figures += [
            Figure(NAME, "jobs held by the killed process", held),
            Figure(
                NAME,
                "time until all were taken over",
                takeover,
                "s",
                "<=",
                lease * 2,
                note=f"JOB_LEASE_SECONDS={lease:g}",
            ),
        ]
        return figures
