"""The PostgreSQL backend's own machinery: migrations, the version table, several
connections and several OS processes writing the same quotas."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from bot.clock import FakeClock
from bot.store import Database, SchemaTooNewError, open_store
from bot.store.database import Migration, MigrationError
from bot.store.postgres import PgDatabase, safe_url
from bot.store.postgres.database import load_pg_migrations, pg_migrate, to_dollar
from bot.store.quotas import UNLIMITED

from .conftest import new_job

ROOT = Path(__file__).resolve().parents[2]


async def _version(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT max(version) FROM schema_version"))
    finally:
        await conn.close()


def test_pg_migrations_are_numbered_without_gaps() -> None:
    versions = [m.version for m in load_pg_migrations()]
    assert versions == list(range(1, len(versions) + 1))


def test_placeholders_and_password_redaction() -> None:
    assert to_dollar("SELECT '?', a FROM t WHERE b IS ? AND c = ?") == (
        "SELECT '?', a FROM t WHERE b IS NOT DISTINCT FROM $1 AND c = $2"
    )
    assert safe_url("postgresql://bot:s3cret@db:5432/bot") == "postgresql://bot:***@db:5432/bot"
    assert safe_url("postgresql://bot@db/bot") == "postgresql://bot@db/bot"


async def test_open_migrates_an_empty_database_once_even_when_processes_race(
    pg_url: str, clock: FakeClock
) -> None:
    opened = await asyncio.gather(*(PgDatabase.open(pg_url, clock=clock) for _ in range(4)))
    for db in opened:
        await db.close()
    assert await _version(pg_url) == len(load_pg_migrations())
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM schema_version") == len(
            load_pg_migrations()
        )
    finally:
        await conn.close()


async def test_newer_schema_is_refused_with_one_line(pg_url: str) -> None:
    url = pg_url.replace("postgres@", "postgres:hunter2@")  # trust auth ignores it
    async with await PgDatabase.open(url):
        pass
    conn = await asyncpg.connect(pg_url)
    await conn.execute("INSERT INTO schema_version (version) VALUES (99)")
    await conn.close()
    for migrate in (True, False):
        with pytest.raises(SchemaTooNewError) as info:
            await PgDatabase.open(url, migrate=migrate)
        message = str(info.value)
        assert "\n" not in message and "hunter2" not in message
        assert "99" in message and "DATABASE_URL" in message
        assert info.value.found == 99


async def test_failed_migration_rolls_back_whole_step(pg_url: str) -> None:
    steps = [
        *load_pg_migrations(),
        Migration(
            len(load_pg_migrations()) + 1,
            "9999_bad.sql",
            "CREATE TABLE extra (x INTEGER);\nSELECT * FROM nowhere;",
        ),
    ]
    conn = await asyncpg.connect(pg_url)
    try:
        with pytest.raises(MigrationError, match="9999_bad"):
            await pg_migrate(conn, migrations=steps)
        assert await conn.fetchval("SELECT max(version) FROM schema_version") == len(steps) - 1
        assert await conn.fetchval("SELECT to_regclass('extra')") is None
    finally:
        await conn.close()


async def test_data_survives_reopen(pg_url: str, clock: FakeClock) -> None:
    async with await PgDatabase.open(pg_url, clock=clock) as db:
        job = await db.jobs.create(new_job(), cost=3)
    async with await PgDatabase.open(pg_url, clock=clock) as db:
        assert await db.jobs.get(job.id) == job


async def test_a_cancelled_caller_never_leaves_half_a_job(pg_url: str, clock: FakeClock) -> None:
    """Cancelling `create` at any point: the job and its reservation exist together or
    not at all, and no connection stays in a transaction."""
    async with await PgDatabase.open(pg_url, clock=clock, pool_size=2) as db:
        for yields in range(12):
            task = asyncio.create_task(db.jobs.create(new_job(user_id=yields), cost=1))
            for _ in range(yields):
                await asyncio.sleep(0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await asyncio.gather(*db._tasks, return_exceptions=True)
        jobs = await db.fetchall("SELECT id FROM jobs")
        reserves = await db.fetchall("SELECT job_id FROM quota_ledger WHERE kind = 'reserve'")
        assert sorted(r[0] for r in jobs) == sorted(r[0] for r in reserves)
        assert await db.quotas.audit() == []
        assert db.pool.get_size() <= 2
        await db.jobs.create(new_job(), cost=1)  # the pool still works


async def test_two_pools_reserve_against_one_budget(pg_url: str, clock: FakeClock) -> None:
    """Two stores on one database (as two processes would be): the budget holds."""
    async with (
        await PgDatabase.open(pg_url, clock=clock, pool_size=8) as one,
        await PgDatabase.open(pg_url, clock=clock, pool_size=8) as two,
    ):
        await one.quotas.set_limits(1, monthly=100, user_daily=UNLIMITED)
        results = await asyncio.gather(
            *(
                (one if i % 2 else two).jobs.create(new_job(user_id=1000 + i), cost=1)
                for i in range(300)
            ),
            return_exceptions=True,
        )
        made = [r for r in results if not isinstance(r, BaseException)]
        assert len(made) == 100
        assert (await two.quotas.status(1, 5)).guild_used == 100
        assert await one.quotas.audit() == []


async def test_open_store_picks_the_backend_from_the_url(pg_url: str, tmp_path: Path) -> None:
    async with await open_store(pg_url, tmp_path / "unused.db") as pg:
        assert pg.backend == "postgresql" and isinstance(pg, PgDatabase)
    assert not (tmp_path / "unused.db").exists()
    async with await open_store(None, tmp_path / "bot.db") as lite:
        assert lite.backend == "sqlite" and isinstance(lite, Database)
    assert (tmp_path / "bot.db").exists()
    with pytest.raises(ValueError, match="postgresql://"):
        await open_store("mysql://x", tmp_path / "bot.db")
