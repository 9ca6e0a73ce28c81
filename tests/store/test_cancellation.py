"""A write cancelled at any point must not leave SQLite's write lock held or a transaction open."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import aiosqlite
import pytest

from bot.store.database import Database


@pytest.mark.parametrize("yields_before_cancel", range(6))
async def test_a_cancelled_write_never_keeps_the_lock(
    tmp_path: Path, yields_before_cancel: int
) -> None:
    path = tmp_path / "bot.db"
    db = await Database.open(path)
    try:
        write = asyncio.create_task(
            db.execute("INSERT INTO guild_settings (guild_id) VALUES (?)", (1,))
        )
        for _ in range(yields_before_cancel):  # land the cancel at a different step each time
            await asyncio.sleep(0)
        write.cancel()
        await asyncio.gather(write, return_exceptions=True)
        await db.fetchone("SELECT 1")  # everything queued on the connection has run

        async with aiosqlite.connect(path, isolation_level=None, timeout=0.2) as other:
            await other.execute("BEGIN IMMEDIATE")  # "database is locked" if the lock leaked
            await other.execute("ROLLBACK")
        assert not db._conn.in_transaction
    finally:
        await db.close()


async def _lock_is_free(path: Path) -> None:
    async with aiosqlite.connect(path, isolation_level=None, timeout=0.2) as other:
        await other.execute("BEGIN IMMEDIATE")  # "database is locked" if the lock leaked
        await other.execute("ROLLBACK")


@pytest.mark.parametrize("fails", [False, True])
@pytest.mark.parametrize("yields_before_cancel", range(4))
async def test_a_cancelled_run_transaction_still_commits_or_rolls_back(
    tmp_path: Path, yields_before_cancel: int, fails: bool
) -> None:
    path = tmp_path / "bot.db"
    db = await Database.open(path)
    started = threading.Event()

    def write(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO guild_settings (guild_id, updated_at) VALUES (1, 'x')")
        started.set()
        time.sleep(0.05)  # still running on the thread when the caller is cancelled
        if fails:
            raise RuntimeError("boom")

    try:
        task = asyncio.create_task(db.run_transaction(write))
        for _ in range(yields_before_cancel):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        # Queued behind the cancelled function, so this runs once it has finished; a
        # transaction left open would make this BEGIN fail.
        rows = await db.fetchall("SELECT guild_id FROM guild_settings")
        async with db.transaction():
            pass
        await _lock_is_free(path)
        assert not db._conn.in_transaction
        if yields_before_cancel == 0:  # cancelled while waiting for the lock: never queued
            assert not started.is_set() and rows == []
        else:  # the function ran to the end: committed if it returned, else rolled back
            assert started.is_set()
            assert [tuple(r) for r in rows] == ([] if fails else [(1,)])
    finally:
        await db.close()
