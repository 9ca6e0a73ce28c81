"""Benchmark 4: quota reservations per second on SQLite, and that none go astray.

Many coroutines at once reserve (`JobRepo.create`: quota check + insert in one
`BEGIN IMMEDIATE`) and settle (`JobRepo.finish`: commit, or refund for every fifth) on
the bot's one connection to a real file. One small guild has a limit the workers try to
exceed, so the atomic check is exercised too. Afterwards the ledger is summed by hand and
compared with what `QuotaRepo.status` reports and with what the workers were granted:
any difference is drift.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench.report import Figure
from bot.clock import SystemClock
from bot.relay.models import VideoRequest
from bot.store import Database, NewJob, QuotaExceededError

NAME = "quota"
TARGET_PER_SECOND = 2000.0
GUILDS = 8
USERS_PER_GUILD = 25
TIGHT_GUILD = 1  # guild id whose monthly limit the workers run into
TIGHT_LIMIT = 50


async def run(reservations: int = 6000, *, workers: int = 64) -> list[Figure]:
    """`reservations` create+finish cycles spread over `workers` concurrent coroutines."""
    request = VideoRequest.build(prompt="quota bench")
    granted: dict[tuple[int, int], int] = defaultdict(int)  # (guild, user) -> units kept
    rejected = 0
    with tempfile.TemporaryDirectory(prefix="bench-quota-") as scratch:
        db = await Database.open(
            Path(scratch) / "quota.db",
            clock=SystemClock(),
            default_guild_monthly=10**9,
            default_user_daily=10**9,
        )
        try:
            await db.quotas.set_limits(TIGHT_GUILD, monthly=TIGHT_LIMIT)
            counter = iter(range(reservations))

            async def worker() -> None:
                nonlocal rejected
                for n in counter:  # shared iterator: each number is taken once
                    guild = 1 + n % GUILDS
                    user = 1000 + (n // GUILDS) % USERS_PER_GUILD
                    cost = 1 + n % 3
                    new = NewJob(guild_id=guild, channel_id=1, user_id=user, request=request,
                                 format="task")  # fmt: skip
                    try:
                        job = await db.jobs.create(new, cost=cost)
                    except QuotaExceededError:
                        rejected += 1
                        continue
                    refund = n % 5 == 0
                    status = "failed" if refund else "succeeded"
                    await db.jobs.finish(job.id, status, refund=refund)
                    if not refund:
                        granted[(guild, user)] += cost

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(workers)))
            elapsed = time.perf_counter() - start
            drift, tight_used = await _drift(db, granted)
        finally:
            await db.close()
    return [
        Figure(NAME, "reserve+settle cycles", reservations, note=f"{workers} concurrent"),
        Figure(
            NAME,
            "reservations/s",
            reservations / elapsed,
            "/s",
            ">=",
            TARGET_PER_SECOND,
            note="each with its commit or refund",
        ),
        Figure(NAME, "rejected over a limit", rejected),
        Figure(NAME, "tight guild used", tight_used, "", "<=", TIGHT_LIMIT),
        Figure(NAME, "ledger drift", drift, "units", "==", 0),
    ]


async def _drift(db: Database, granted: dict[tuple[int, int], int]) -> tuple[int, int]:
    """Sum of |ledger - reported| and |ledger - granted| over every guild and user."""
    rows = await db.fetchall(
        "SELECT guild_id, user_id, kind, SUM(units) FROM quota_ledger"
        " WHERE kind IN ('reserve', 'refund') GROUP BY guild_id, user_id, kind"
    )
    ledger: dict[tuple[int, int], int] = defaultdict(int)
    for guild, user, kind, units in rows:
        ledger[(guild, user)] += units if kind == "reserve" else -units
    unsettled = await db.fetchone(
        "SELECT COUNT(*) FROM quota_ledger r WHERE r.kind = 'reserve' AND NOT EXISTS"
        " (SELECT 1 FROM quota_ledger s WHERE s.ref_id = r.id AND s.kind IN ('commit', 'refund'))"
    )
    drift = int(unsettled[0]) if unsettled else 0
    per_guild: dict[int, int] = defaultdict(int)
    for (guild, user), units in ledger.items():
        status = await db.quotas.status(guild, user)
        drift += abs(status.user_used - units) + abs(granted.get((guild, user), 0) - units)
        per_guild[guild] += units
    for guild, units in per_guild.items():
        status = await db.quotas.status(guild, 1000)
        drift += abs(status.guild_used - units)
    return drift, per_guild.get(TIGHT_GUILD, 0)
