"""An engine on a real SQLite file, driving the real relay client against the fake relay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.clock import FakeClock
from bot.fakes.relay import FakeRelay
from bot.jobs.engine import JobEngine, JobUpdate
from bot.relay.client import RelayClient
from bot.relay.models import RelayFormat, VideoRequest
from bot.relay.pool import RelayPool
from bot.store.database import Database
from bot.store.jobs import NewJob

KEY = "sk-engine-test"


class Recorder:
    """An engine listener that lets a test await the updates it cares about."""

    def __init__(self) -> None:
        self.updates: list[JobUpdate] = []
        self._changed = asyncio.Condition()

    async def __call__(self, update: JobUpdate) -> None:
        async with self._changed:
            self.updates.append(update)
            self._changed.notify_all()

    async def wait_for(
        self, predicate: Callable[[list[JobUpdate]], bool], timeout: float = 10
    ) -> None:
        async def waiting() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: predicate(self.updates))

        await asyncio.wait_for(waiting(), timeout)

    def finished(self) -> dict[int, JobUpdate]:
        return {u.job.id: u for u in self.updates if u.kind == "finished"}

    def kinds(self, job_id: int) -> list[str]:
        return [u.kind for u in self.updates if u.job.id == job_id]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def relay(clock: FakeClock) -> AsyncIterator[FakeRelay]:
    async with FakeRelay(api_key=KEY, clock=clock) as fake:
        yield fake


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "bot.db"


@pytest.fixture
async def open_engine(relay: FakeRelay, clock: FakeClock, db_path: Path):
    """Build engines (several, for restart tests); everything is closed at teardown."""
    opened: list[tuple[JobEngine, Database, RelayClient]] = []

    async def build(fmt: RelayFormat = "task", **kw: object) -> tuple[JobEngine, Recorder]:
        db = await Database.open(
            db_path,
            clock=clock,
            default_guild_monthly=kw.pop("guild_monthly", 100),  # type: ignore[arg-type]
            default_user_daily=kw.pop("user_daily", 100),  # type: ignore[arg-type]
        )
        client = RelayClient(relay.url, SecretStr(KEY), format=fmt, clock=clock)
        engine = JobEngine(db, RelayPool([("default", client)], clock=clock), clock=clock, **kw)  # type: ignore[arg-type]
        recorder = Recorder()
        engine.add_listener(recorder)
        opened.append((engine, db, client))
        return engine, recorder

    yield build
    for engine, db, client in opened:
        await engine.stop()
        await client.aclose()
        await db.close()


def new_job(
    prompt: str = "a cat walks across a piano",
    *,
    guild: int | None = 1,
    user: int = 10,
    fmt: RelayFormat = "task",
    **fields: object,
) -> NewJob:
    return NewJob(
        guild_id=guild,
        channel_id=100,
        user_id=user,
        request=VideoRequest.build(prompt=prompt, **fields),
        format=fmt,
    )
