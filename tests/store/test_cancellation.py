"""A write cancelled at any point must not leave SQLite's write lock held."""

from __future__ import annotations

import asyncio
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
