"""Running quota totals: kept with every ledger row, backfilled on upgrade, auditable."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.store import Database, Job, QuotaExceededError, UsageTotals
from bot.store.database import connect, migrate

from .conftest import new_job

STAMP = "2026-03-15T11:00:00.000000+00:00"


async def test_upgrade_from_version_4_backfills_totals(db_path: Path, clock: FakeClock) -> None:
    conn = await connect(db_path)
    assert await migrate(conn, target=4) == 4
    for _ in range(6):
        await conn.execute(
            "INSERT INTO jobs (guild_id, channel_id, user_id, locale, request_json, format,"
            " relay_name, status, cost, created_at, updated_at)"
            " VALUES (1, 2, 10, 'en-US', '{\"prompt\": \"p\"}', 'task', 'default', 'queued',"
            " 1, ?, ?)",
            (STAMP, STAMP),
        )
    rows = [  # (guild, user, job, ref, kind, units, day)
        (1, 10, 1, None, "reserve", 5, "2026-03-15"),  # 1
        (1, 11, 2, None, "reserve", 3, "2026-03-15"),  # 2
        (1, None, None, None, "reset", 8, "2026-03-15"),  # 3: the guild's month
        (1, 10, 3, None, "reserve", 4, "2026-03-15"),  # 4
        (1, 10, 1, 1, "refund", 5, "2026-03-15"),  # 5: of a reservation before the reset
        (1, None, None, None, "grant", 50, "2026-03-15"),  # 6
        (1, 10, None, None, "grant", 2, "2026-03-15"),  # 7
        (None, 10, 4, None, "reserve", 6, "2026-03-15"),  # 8: a DM
        (None, 10, None, None, "reset", 6, "2026-03-15"),  # 9
        (None, 10, 5, None, "reserve", 1, "2026-03-15"),  # 10
        (None, 10, 4, 8, "refund", 6, "2026-03-15"),  # 11: before the DM reset
        (1, 10, 6, None, "reserve", 7, "2026-02-28"),  # 12: last month
        (1, 11, 2, 2, "commit", 3, "2026-03-15"),  # 13
    ]
    for guild, user, job, ref, kind, units, day in rows:
        await conn.execute(
            "INSERT INTO quota_ledger (guild_id, user_id, job_id, ref_id, kind, units, day,"
            " month, actor, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 99, ?)",
            (guild, user, job, ref, kind, units, day, day[:7], STAMP),
        )
    await conn.close()

    async with await Database.open(
        db_path, clock=clock, default_guild_monthly=100, default_user_daily=10
    ) as db:
        assert await db.quotas.audit() == []
        status = await db.quotas.status(1, 10)
        assert (status.guild_used, status.guild_limit) == (4, 150)
        assert (status.user_used, status.user_limit) == (4, 12)
        assert (await db.quotas.status(1, 11)).user_used == 3
        assert (await db.quotas.status(None, 10)).user_used == 1
        totals = await db.fetchall("SELECT * FROM usage_guild_month ORDER BY month")
        assert [tuple(r) for r in totals] == [(1, "2026-02", 7, 0, 0), (1, "2026-03", 4, 50, 3)]
        dm = await db.fetchone("SELECT * FROM usage_user_day WHERE guild_key = 0")
        assert dm is not None and tuple(dm) == (0, 10, "2026-03-15", 1, 0, 9)

        # The totals keep going from there.
        await db.jobs.finish(3, "failed", refund=True)
        await db.jobs.finish(6, "failed", refund=True)
        status = await db.quotas.status(1, 10)
        assert (status.guild_used, status.user_used) == (0, 0)
        await db.jobs.create(new_job(), cost=2)
        assert (await db.quotas.status(1, 10)).guild_used == 2
        assert await db.quotas.audit() == []


async def test_audit_reports_a_total_that_disagrees_with_the_ledger(db: Database) -> None:
    await db.jobs.create(new_job(), cost=3)
    await db.jobs.create(new_job(guild_id=None), cost=2)
    assert await db.quotas.audit() == []
    await db.execute("UPDATE usage_guild_month SET used = used + 1")
    await db.execute("DELETE FROM usage_user_day WHERE guild_key = 0")
    drift = await db.quotas.audit()
    assert [(d.scope, d.guild_id, d.user_id, d.period) for d in drift] == [
        ("guild", 1, None, "2026-03"),
        ("user", None, 10, "2026-03-15"),
    ]
    assert (drift[0].ledger, drift[0].totals) == (UsageTotals(3, 0, 0), UsageTotals(4, 0, 0))
    assert (drift[1].ledger, drift[1].totals) == (UsageTotals(2, 0, 0), UsageTotals(0, 0, 0))


async def _random_step(db: Database, clock: FakeClock, rng: random.Random, jobs: list[Job]) -> None:
    guild = rng.choice([1, 2, None])
    user = rng.choice([10, 11, 12])
    op = rng.random()
    if op < 0.45:
        try:
            roles = rng.choice([(), (500,), (600,)])
            jobs.append(
                await db.jobs.create(new_job(guild, user), cost=rng.randint(0, 4), roles=roles)
            )
        except QuotaExceededError:
            pass
    elif op < 0.75 and jobs:
        job = jobs.pop(rng.randrange(len(jobs)))
        refund = rng.random() < 0.5
        await db.jobs.finish(job.id, "failed" if refund else "succeeded", refund=refund)
    elif op < 0.82:
        if guild is None or rng.random() < 0.5:
            await db.quotas.grant(guild, rng.randint(1, 5), user_id=user, actor=99)
        else:
            await db.quotas.grant(guild, rng.randint(1, 20), actor=99)
    elif op < 0.9:
        if guild is None or rng.random() < 0.5:
            await db.quotas.reset(guild, user_id=user, actor=99)
        else:
            await db.quotas.reset(guild, actor=99)
    else:
        clock.advance(rng.choice([60, 3600, 6 * 3600, 24 * 3600, 20 * 24 * 3600, -3600]))


@pytest.mark.parametrize("seed", range(8))
async def test_random_history_never_drifts(db: Database, clock: FakeClock, seed: int) -> None:
    rng = random.Random(seed)
    clock.set(datetime(2026, 3, 30, 20, 0, tzinfo=UTC))  # near a day and a month boundary
    await db.quotas.set_role_rule(1, 500, multiplier=2.0)
    await db.quotas.set_role_rule(1, 600, exempt=True)
    jobs: list[Job] = []
    for round_ in range(12):
        if round_ % 2:  # concurrent: many steps share one group commit
            await asyncio.gather(*(_random_step(db, clock, rng, jobs) for _ in range(25)))
        else:
            for _ in range(25):
                await _random_step(db, clock, rng, jobs)
        assert await db.quotas.audit() == [], f"round {round_}"
    for job in jobs:  # settle the rest, some in a later period than they were made
        await db.jobs.finish(job.id, "failed", refund=True)
    assert await db.quotas.audit() == []


async def test_a_failing_function_rolls_back_alone_in_a_group_commit(sqlite_db: Database) -> None:
    def write(n: int, conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO guild_settings (guild_id, updated_at) VALUES (?, 'x')", (n,))
        if n % 3 == 0:
            raise RuntimeError(f"boom {n}")
        return n

    results = await asyncio.gather(
        *(sqlite_db.run_transaction(partial(write, n)) for n in range(1, 31)),
        return_exceptions=True,
    )
    for n, result in enumerate(results, 1):
        if n % 3 == 0:
            assert isinstance(result, RuntimeError) and str(result) == f"boom {n}"
        else:
            assert result == n
    rows = await sqlite_db.fetchall("SELECT guild_id FROM guild_settings ORDER BY guild_id")
    assert [r[0] for r in rows] == [n for n in range(1, 31) if n % 3]
    assert not sqlite_db._conn.in_transaction


async def test_concurrent_creates_and_finishes_match_the_ledger(db: Database) -> None:
    jobs = await asyncio.gather(
        *(db.jobs.create(new_job(user_id=10 + i % 5), cost=1) for i in range(50))
    )
    await asyncio.gather(
        *(db.jobs.finish(j.id, "failed" if j.id % 2 else "succeeded", refund=bool(j.id % 2))
          for j in jobs)
    )  # fmt: skip
    assert await db.quotas.audit() == []
    assert (await db.quotas.status(1, 10)).guild_used == 25
