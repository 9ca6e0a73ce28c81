"""Store fixtures: a clock that moves only when told, and the store itself.

`db` runs each test twice: on a real SQLite file in tmp_path and on a fresh database of
the test PostgreSQL server (tests/pg.py; skipped with the reason where PostgreSQL is
not installed, failed under CI=true). `sqlite_db` is for tests of SQLite's own
machinery (its thread, pragmas, group commit, file migrations).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.relay.models import VideoRequest
from bot.store import Database, NewJob
from bot.store.postgres import PgDatabase

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 15, 12, 0, tzinfo=UTC))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "bot.db"


@pytest.fixture
async def sqlite_db(db_path: Path, clock: FakeClock) -> AsyncIterator[Database]:
    async with await Database.open(
        db_path, clock=clock, default_guild_monthly=100, default_user_daily=10
    ) as database:
        yield database


@pytest.fixture(params=BACKENDS)
async def db(
    request: pytest.FixtureRequest, db_path: Path, clock: FakeClock
) -> AsyncIterator[Database]:
    """The same store interface on each backend (typed as the SQLite one for the tests)."""
    if request.param == "sqlite":
        async with await Database.open(
            db_path, clock=clock, default_guild_monthly=100, default_user_daily=10
        ) as database:
            yield database
        return
    url = request.getfixturevalue("pg_url")
    async with await PgDatabase.open(
        url, clock=clock, default_guild_monthly=100, default_user_daily=10
    ) as pg:
        yield pg  # type: ignore[misc]


def new_job(
    guild_id: int | None = 1, user_id: int = 10, prompt: str = "a cat on a piano", **kw: object
) -> NewJob:
    return NewJob(
        guild_id=guild_id,
        channel_id=kw.pop("channel_id", 100),  # type: ignore[arg-type]
        user_id=user_id,
        request=VideoRequest.build(prompt=prompt),
        format=kw.pop("format", "task"),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )
