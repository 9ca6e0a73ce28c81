"""Migrations, pragmas and the write lock, on real SQLite files."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiosqlite
import pytest

from bot.clock import FakeClock
from bot.store import Database, SchemaTooNewError
from bot.store.database import (
    Migration,
    MigrationError,
    connect,
    load_migrations,
    migrate,
    require_thread_api,
)

from .conftest import new_job


async def _user_version(path: Path) -> int:
    async with aiosqlite.connect(path) as conn, conn.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


def test_migrations_are_numbered_without_gaps() -> None:
    versions = [m.version for m in load_migrations()]
    assert versions == list(range(1, len(versions) + 1))
    assert len(versions) >= 2


async def test_open_creates_folder_and_migrates_an_empty_file(db_path: Path) -> None:
    assert not db_path.parent.exists()
    async with await Database.open(db_path):
        pass
    assert await _user_version(db_path) == len(load_migrations())


async def test_pragmas(sqlite_db: Database) -> None:
    async with sqlite_db.reading() as conn:
        for pragma, expected in [
            ("foreign_keys", 1),
            ("journal_mode", "wal"),
            ("synchronous", 1),
            ("busy_timeout", 5000),
        ]:
            async with conn.execute(f"PRAGMA {pragma}") as cur:
                row = await cur.fetchone()
            assert row is not None and row[0] == expected, pragma


async def test_upgrade_from_version_1_keeps_data(db_path: Path, clock: FakeClock) -> None:
    conn = await connect(db_path)
    assert await migrate(conn, target=1) == 1
    await conn.execute(
        "INSERT INTO jobs (guild_id, channel_id, user_id, locale, request_json, format,"
        " relay_name, status, cost, created_at, updated_at)"
        " VALUES (1, 2, 3, 'en-US', ?, 'task', 'default', 'queued', 2, ?, ?)",
        (
            '{"prompt": "old job"}',
            "2026-03-15T11:00:00.000000+00:00",
            "2026-03-15T11:00:00.000000+00:00",
        ),
    )
    await conn.execute(
        "INSERT INTO jobs (guild_id, channel_id, user_id, locale, request_json, format,"
        " relay_name, status, cost, created_at, updated_at, finished_at, result_url)"
        " VALUES (1, 2, 3, 'en-US', ?, 'task', 'default', 'succeeded', 1, ?, ?, ?, 'u')",
        ('{"prompt": "done"}', *["2026-03-15T10:00:00.000000+00:00"] * 3),
    )
    await conn.execute(
        "INSERT INTO quota_ledger (guild_id, user_id, job_id, kind, units, day, month,"
        " created_at) VALUES (1, 3, 1, 'reserve', 2, '2026-03-15', '2026-03', ?)",
        ("2026-03-15T11:00:00.000000+00:00",),
    )
    await conn.close()
    assert await _user_version(db_path) == 1

    async with await Database.open(db_path, clock=clock) as db:
        job = await db.jobs.get(1)
        assert job is not None
        assert (job.request.prompt, job.cost, job.status) == ("old job", 2, "queued")
        done = await db.jobs.get(2)
        assert done is not None and done.result_url == "u"
        # 0003: jobs already final count as delivered, so a restart does not re-post them.
        assert done.delivered_at == done.finished_at and job.delivered_at is None
        assert await db.jobs.undelivered() == []
        status = await db.quotas.status(1, 3)
        assert (status.guild_used, status.user_used) == (2, 2)
        # The tables from migration 2 work.
        await db.characters.add(
            1, "bob", character_id="c1", username="bob.x", permalink=None, picture_url=None,
            created_by=3,
        )  # fmt: skip
        await db.quotas.set_limits(1, monthly=5)
        assert (await db.quotas.status(1, 3)).guild_limit == 5
    assert await _user_version(db_path) == len(load_migrations())


async def test_newer_schema_is_refused_with_one_line(db_path: Path) -> None:
    async with await Database.open(db_path):
        pass
    async with aiosqlite.connect(db_path) as conn:
        await conn.execute("PRAGMA user_version = 99")
    with pytest.raises(SchemaTooNewError) as info:
        await Database.open(db_path)
    message = str(info.value)
    assert "\n" not in message
    assert "99" in message and str(len(load_migrations())) in message
    assert info.value.found == 99


async def test_failed_migration_rolls_back_whole_step(db_path: Path) -> None:
    steps = [
        *load_migrations(),
        Migration(
            len(load_migrations()) + 1,
            "9999_bad.sql",
            "CREATE TABLE extra (x INTEGER);\nSELECT * FROM nowhere;",
        ),
    ]
    conn = await connect(db_path)
    try:
        with pytest.raises(MigrationError, match="9999_bad"):
            await migrate(conn, migrations=steps)
        async with conn.execute("PRAGMA user_version") as cur:
            assert (await cur.fetchone())[0] == len(load_migrations())  # type: ignore[index]
        async with conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'extra'") as cur:
            assert (await cur.fetchone())[0] == 0  # type: ignore[index]
        assert not conn.in_transaction
    finally:
        await conn.close()


async def test_transaction_rolls_back_on_error(sqlite_db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with sqlite_db.transaction() as conn:
            await conn.execute("INSERT INTO guild_settings (guild_id, updated_at) VALUES (1, 'x')")
            raise RuntimeError("boom")
    assert await sqlite_db.fetchone("SELECT * FROM guild_settings") is None
    # The connection is usable afterwards.
    await sqlite_db.jobs.create(new_job(), cost=1)


async def test_cancelled_transaction_rolls_back_and_releases_lock(sqlite_db: Database) -> None:
    entered = asyncio.Event()

    async def writer() -> None:
        async with sqlite_db.transaction() as conn:
            await conn.execute("INSERT INTO guild_settings (guild_id, updated_at) VALUES (1, 'x')")
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(writer())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await sqlite_db.fetchone("SELECT * FROM guild_settings") is None
    await sqlite_db.jobs.create(new_job(), cost=1)


async def test_data_survives_reopen(db_path: Path, clock: FakeClock) -> None:
    async with await Database.open(db_path, clock=clock) as db:
        job = await db.jobs.create(new_job(), cost=3)
    async with await Database.open(db_path, clock=clock) as db:
        again = await db.jobs.get(job.id)
    assert again == job


async def test_run_transaction_commits_returns_and_rolls_back(sqlite_db: Database) -> None:
    def insert(conn: sqlite3.Connection) -> int:
        cursor = conn.execute("INSERT INTO guild_settings (guild_id, updated_at) VALUES (1, 'x')")
        assert conn.in_transaction
        return cursor.rowcount

    assert await sqlite_db.run_transaction(insert) == 1

    def insert_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO guild_settings (guild_id, updated_at) VALUES (2, 'x')")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await sqlite_db.run_transaction(insert_then_fail)
    rows = await sqlite_db.run(
        lambda conn: conn.execute("SELECT guild_id FROM guild_settings").fetchall()
    )
    assert [row["guild_id"] for row in rows] == [1]  # sqlite3.Row, as through aiosqlite
    assert not sqlite_db._conn.in_transaction


async def test_run_transactions_never_interleave(sqlite_db: Database) -> None:
    """Read-modify-write with a gap, mixing `run_transaction` with awaited `transaction`
    blocks: a lost update or a nested BEGIN would show."""
    await sqlite_db.execute(
        "INSERT INTO guild_settings (guild_id, monthly_limit, updated_at) VALUES (1, 0, 'x')"
    )
    select = "SELECT monthly_limit FROM guild_settings WHERE guild_id = 1"
    update = "UPDATE guild_settings SET monthly_limit = ? WHERE guild_id = 1"

    def bump(conn: sqlite3.Connection) -> None:
        conn.execute(update, (conn.execute(select).fetchone()[0] + 1,))

    async def bump_awaiting() -> None:
        async with sqlite_db.transaction() as conn:
            async with conn.execute(select) as cursor:
                row = await cursor.fetchone()
            await asyncio.sleep(0)
            assert row is not None
            await conn.execute(update, (row[0] + 1,))

    await asyncio.gather(
        *(sqlite_db.run_transaction(bump) if n % 2 else bump_awaiting() for n in range(60))
    )
    assert (await sqlite_db.quotas.limits(1)).monthly == 60


async def test_missing_aiosqlite_internals_fail_loudly(sqlite_db: Database) -> None:
    require_thread_api(sqlite_db._conn)  # the installed aiosqlite has them
    with pytest.raises(RuntimeError, match=r"aiosqlite .*Connection\._execute"):
        require_thread_api(object())  # type: ignore[arg-type]
