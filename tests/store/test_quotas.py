"""Quotas: atomic reservation under concurrency, periods, grants, resets, roles, DMs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.store import UNLIMITED, Database, QuotaExceededError

from .conftest import new_job


async def _reserved(db: Database, guild_id: int | None) -> int:
    row = await db.fetchone(
        "SELECT COALESCE(SUM(units), 0) FROM quota_ledger WHERE guild_id IS ? AND kind = 'reserve'",
        (guild_id,),
    )
    assert row is not None
    return int(row[0])


async def _count_jobs(db: Database) -> int:
    row = await db.fetchone("SELECT count(*) FROM jobs")
    assert row is not None
    return int(row[0])


async def test_500_concurrent_creates_against_guild_budget(db: Database) -> None:
    await db.quotas.set_limits(1, monthly=100, user_daily=UNLIMITED)
    results = await asyncio.gather(
        *(db.jobs.create(new_job(user_id=1000 + i), cost=1) for i in range(500)),
        return_exceptions=True,
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(results) - len(errors) == 100
    assert len(errors) == 400 and all(isinstance(e, QuotaExceededError) for e in errors)
    assert {e.scope for e in errors} == {"guild"}  # type: ignore[attr-defined]
    assert await _count_jobs(db) == 100
    assert await _reserved(db, 1) == 100
    assert (await db.quotas.status(1, 1000)).guild_used == 100


async def test_500_concurrent_creates_against_user_daily(db: Database) -> None:
    await db.quotas.set_limits(1, monthly=UNLIMITED, user_daily=100)
    results = await asyncio.gather(
        *(db.jobs.create(new_job(user_id=7), cost=1) for _ in range(500)),
        return_exceptions=True,
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 400 and all(
        isinstance(e, QuotaExceededError) and e.scope == "user" for e in errors
    )
    assert await _count_jobs(db) == 100
    assert await _reserved(db, 1) == 100
    status = await db.quotas.status(1, 7)
    assert (status.user_used, status.user_limit, status.guild_limit) == (100, 100, None)


async def test_rejected_create_writes_nothing(db: Database) -> None:
    await db.jobs.create(new_job(), cost=9)
    with pytest.raises(QuotaExceededError) as info:
        await db.jobs.create(new_job(), cost=2)
    assert (info.value.scope, info.value.used, info.value.limit, info.value.cost) == (
        "user", 9, 10, 2,
    )  # fmt: skip
    assert str(info.value) == (
        "You have used 9 of your 10 daily units; this video needs 2. "
        "Your quota resets at 00:00 UTC."
    )
    assert info.value.resets_at == datetime(2026, 3, 16, tzinfo=UTC)
    assert await _count_jobs(db) == 1
    rows = await db.fetchall("SELECT kind FROM quota_ledger")
    assert [r[0] for r in rows] == ["reserve"]


async def test_guild_message_and_reset_date(db: Database, clock: FakeClock) -> None:
    clock.set(datetime(2026, 11, 20, 8, 30, tzinfo=UTC))
    await db.quotas.set_limits(1, monthly=200, user_daily=UNLIMITED)
    await db.jobs.create(new_job(), cost=198)
    with pytest.raises(QuotaExceededError) as info:
        await db.jobs.create(new_job(user_id=11), cost=5)
    assert info.value.scope == "guild"
    assert info.value.resets_at == datetime(2026, 12, 1, tzinfo=UTC)
    assert str(info.value) == (
        "This server has used 198 of its 200 units this month; this video needs 5. "
        "It resets on 1 Dec at 00:00 UTC."
    )


async def test_user_day_rolls_over_at_midnight_utc(db: Database, clock: FakeClock) -> None:
    clock.set(datetime(2026, 3, 15, 23, 59, 59, tzinfo=UTC))
    await db.jobs.create(new_job(), cost=10)
    status = await db.quotas.status(1, 10)
    assert (status.user_used, status.user_resets_at) == (10, datetime(2026, 3, 16, tzinfo=UTC))
    with pytest.raises(QuotaExceededError):
        await db.jobs.create(new_job(), cost=1)
    clock.advance(1)
    status = await db.quotas.status(1, 10)
    assert (status.user_used, status.guild_used) == (0, 10)
    assert status.user_resets_at == datetime(2026, 3, 17, tzinfo=UTC)
    await db.jobs.create(new_job(), cost=10)


async def test_guild_month_rolls_over_on_the_first(db: Database, clock: FakeClock) -> None:
    await db.quotas.set_limits(1, monthly=20, user_daily=UNLIMITED)
    clock.set(datetime(2026, 12, 31, 23, 0, tzinfo=UTC))
    await db.jobs.create(new_job(), cost=20)
    status = await db.quotas.status(1, 10)
    assert (status.guild_used, status.guild_resets_at) == (20, datetime(2027, 1, 1, tzinfo=UTC))
    with pytest.raises(QuotaExceededError):
        await db.jobs.create(new_job(), cost=1)
    clock.set(datetime(2027, 1, 1, tzinfo=UTC))
    status = await db.quotas.status(1, 10)
    assert (status.guild_used, status.guild_resets_at) == (0, datetime(2027, 2, 1, tzinfo=UTC))
    await db.jobs.create(new_job(), cost=20)


async def test_refund_counts_in_the_period_the_job_was_created(
    db: Database, clock: FakeClock
) -> None:
    clock.set(datetime(2026, 3, 15, 23, 59, tzinfo=UTC))
    job = await db.jobs.create(new_job(), cost=4)
    clock.advance(120)  # next day
    await db.jobs.create(new_job(), cost=3)
    await db.jobs.finish(job.id, "failed", refund=True)
    assert (await db.quotas.status(1, 10)).user_used == 3  # today's usage is untouched
    clock.set(datetime(2026, 3, 15, 23, 59, 30, tzinfo=UTC))
    assert (await db.quotas.status(1, 10)).user_used == 0  # yesterday's went back down


async def test_limits_defaults_overrides_and_zero(db: Database) -> None:
    status = await db.quotas.status(1, 10)
    assert (status.guild_limit, status.user_limit, status.user_exempt) == (100, 10, False)
    await db.quotas.set_limits(1, user_daily=3)
    assert (await db.quotas.limits(1)).user_daily == 3
    assert (await db.quotas.status(1, 10)).user_limit == 3
    await db.quotas.set_limits(1, monthly=0)
    with pytest.raises(QuotaExceededError, match="turned off") as info:
        await db.jobs.create(new_job(), cost=1)
    assert info.value.scope == "guild"
    await db.quotas.set_limits(1, monthly=None, user_daily=None)  # back to defaults
    status = await db.quotas.status(1, 10)
    assert (status.guild_limit, status.user_limit) == (100, 10)
    with pytest.raises(ValueError):
        await db.quotas.set_limits(1, monthly=-2)


async def test_unlimited_defaults(tmp_path: Path, clock: FakeClock) -> None:
    async with await Database.open(
        tmp_path / "u.db", clock=clock, default_guild_monthly=None, default_user_daily=None
    ) as db:
        await db.jobs.create(new_job(), cost=10_000)
        status = await db.quotas.status(1, 10)
        assert (status.guild_limit, status.user_limit, status.guild_used) == (None, None, 10_000)


async def test_grants_raise_the_limit_for_the_period(db: Database, clock: FakeClock) -> None:
    await db.jobs.create(new_job(), cost=10)
    await db.quotas.grant(1, 5, user_id=10, actor=99)
    assert (await db.quotas.status(1, 10)).user_limit == 15
    await db.jobs.create(new_job(), cost=5)
    with pytest.raises(QuotaExceededError):
        await db.jobs.create(new_job(), cost=1)
    await db.quotas.grant(1, 50, actor=99)
    assert (await db.quotas.status(1, 10)).guild_limit == 150
    clock.advance(24 * 3600)  # the user grant was for that day only
    assert (await db.quotas.status(1, 10)).user_limit == 10
    assert (await db.quotas.status(1, 10)).guild_limit == 150
    clock.set(datetime(2026, 4, 1, tzinfo=UTC))  # the guild grant was for March only
    assert (await db.quotas.status(1, 10)).guild_limit == 100
    with pytest.raises(ValueError):
        await db.quotas.grant(1, 0, actor=99)


async def test_resets_zero_usage_and_keep_history(db: Database) -> None:
    old = await db.jobs.create(new_job(), cost=6)
    await db.jobs.create(new_job(user_id=11), cost=4)
    await db.quotas.reset(1, user_id=10, actor=99)
    status = await db.quotas.status(1, 10)
    assert (status.user_used, status.guild_used) == (0, 10)
    await db.jobs.create(new_job(), cost=2)
    # Refunding a job reserved before the reset does not push usage below what came after.
    await db.jobs.finish(old.id, "failed", refund=True)
    assert (await db.quotas.status(1, 10)).user_used == 2
    assert (await db.quotas.status(1, 10)).guild_used == 6
    await db.quotas.reset(1, actor=99)
    status = await db.quotas.status(1, 10)
    assert (status.guild_used, status.user_used) == (0, 2)  # guild reset leaves users alone

    entries = await db.quotas.ledger(1)
    kinds = [e.kind for e in reversed(entries)]
    assert kinds == ["reserve", "reserve", "reset", "reserve", "refund", "reset"]
    resets = [e for e in entries if e.kind == "reset"]
    assert [(e.user_id, e.units, e.actor) for e in resets] == [(None, 6, 99), (10, 6, 99)]
    mine = await db.quotas.ledger(1, user_id=11)
    assert [(e.kind, e.units) for e in mine] == [("reserve", 4)]
    assert len(await db.quotas.ledger(1, limit=2)) == 2


async def test_role_multiplier_and_exemption(db: Database) -> None:
    await db.quotas.set_role_rule(1, 500, multiplier=2.0)
    await db.quotas.set_role_rule(1, 501, multiplier=1.5)
    await db.quotas.set_role_rule(1, 600, exempt=True)
    assert (await db.quotas.status(1, 10, roles=[501])).user_limit == 15
    assert (await db.quotas.status(1, 10, roles=[500, 501])).user_limit == 20  # largest wins
    assert (await db.quotas.status(1, 10, roles=[42])).user_limit == 10
    await db.jobs.create(new_job(), cost=20, roles=[500])
    with pytest.raises(QuotaExceededError):
        await db.jobs.create(new_job(), cost=1, roles=[500])

    # Exempt members skip the daily limit but still count toward the guild's month.
    status = await db.quotas.status(1, 10, roles=[600])
    assert (status.user_exempt, status.user_limit) == (True, None)
    await db.jobs.create(new_job(), cost=70, roles=[600])
    assert (await db.quotas.status(1, 10)).guild_used == 90
    with pytest.raises(QuotaExceededError) as info:
        await db.jobs.create(new_job(), cost=11, roles=[600])
    assert info.value.scope == "guild"

    assert {r.role_id for r in await db.quotas.role_rules(1)} == {500, 501, 600}
    assert await db.quotas.clear_role_rule(1, 600)
    assert not await db.quotas.clear_role_rule(1, 600)
    assert not (await db.quotas.status(1, 10, roles=[600])).user_exempt
    with pytest.raises(ValueError):
        await db.quotas.set_role_rule(1, 1, multiplier=-1)


async def test_admins_not_exempt_unless_guild_says_so(db: Database) -> None:
    assert not (await db.quotas.status(1, 10, is_admin=True)).user_exempt
    await db.jobs.create(new_job(), cost=10, is_admin=True)
    with pytest.raises(QuotaExceededError):
        await db.jobs.create(new_job(), cost=1, is_admin=True)
    await db.quotas.set_limits(1, admins_exempt=True)
    assert (await db.quotas.status(1, 10, is_admin=True)).user_exempt
    assert not (await db.quotas.status(1, 10)).user_exempt
    await db.jobs.create(new_job(), cost=1, is_admin=True)


async def test_direct_messages_have_only_the_user_daily_limit(db: Database) -> None:
    await db.quotas.set_limits(1, monthly=0)  # a guild's limits do not leak into DMs
    await db.jobs.create(new_job(guild_id=None), cost=10, roles=[500])
    status = await db.quotas.status(None, 10)
    assert (status.guild_used, status.guild_limit, status.user_used, status.user_limit) == (
        0, None, 10, 10,
    )  # fmt: skip
    with pytest.raises(QuotaExceededError) as info:
        await db.jobs.create(new_job(guild_id=None), cost=1)
    assert info.value.scope == "user"
    # DM usage and guild usage are separate scopes.
    assert (await db.quotas.status(2, 10)).user_used == 0
    await db.quotas.grant(None, 2, user_id=10, actor=99)
    await db.jobs.create(new_job(guild_id=None), cost=2)
    await db.quotas.reset(None, user_id=10, actor=99)
    assert (await db.quotas.status(None, 10)).user_used == 0
    with pytest.raises(ValueError):
        await db.quotas.grant(None, 1, actor=99)


async def test_ledger_explains_balances(db: Database) -> None:
    jobs = [await db.jobs.create(new_job(user_id=10 + i % 3), cost=1 + i % 4) for i in range(12)]
    for i, job in enumerate(jobs):
        if i % 3 == 0:
            await db.jobs.finish(job.id, "failed", refund=True)
        elif i % 3 == 1:
            await db.jobs.finish(job.id, "succeeded")
    entries = await db.quotas.ledger(1, limit=1000)
    explained = sum(
        e.units if e.kind == "reserve" else -e.units for e in entries if e.kind != "commit"
    )
    final = [await db.jobs.get(j.id) for j in jobs]
    charged = sum(j.cost for j in final if j is not None and j.status != "failed")
    assert explained == charged == (await db.quotas.status(1, 10)).guild_used
