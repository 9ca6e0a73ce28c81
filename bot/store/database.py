"""One SQLite connection, versioned migrations, and the repositories the bot uses.

Migrations follow mautrix's `upgrade.py`: each `migrations/NNNN_name.sql` runs in its own
transaction that also sets `PRAGMA user_version`, so a crash leaves the database at a
whole version; a database newer than the code is refused instead of being misread.

SQLite serialises writers anyway, so the bot uses ONE connection, and an `asyncio.Lock`
keeps coroutines from interleaving statements inside each other's `BEGIN IMMEDIATE`
transaction. Reads take the lock too, so they never see another coroutine's
half-finished transaction on the shared connection.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite

from bot.clock import Clock, SystemClock
from bot.store.characters import CharacterRepo
from bot.store.guilds import GuildRepo
from bot.store.jobs import JobRepo
from bot.store.quotas import QuotaRepo

_MIGRATION_NAME = re.compile(r"^(\d{4})_\w+\.sql$")

PRAGMAS = (
    "PRAGMA foreign_keys = ON",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA busy_timeout = 5000",
)


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer bot; reading it could corrupt it."""

    def __init__(self, path: str, found: int, known: int) -> None:
        super().__init__(
            f"The database {path} has schema version {found}, but this bot only knows "
            f"versions up to {known}; upgrade the bot or point DATABASE_PATH elsewhere."
        )
        self.path = path
        self.found = found
        self.known = known


class MigrationError(RuntimeError):
    """A migration script failed; the database stays at the previous version."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """The bundled migration scripts in order; numbering must run 1, 2, 3… without gaps."""
    folder = resources.files("bot.store").joinpath("migrations")
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, 1):
        if migration.version != expected:
            raise MigrationError(f"migration {expected:04d} is missing (found {migration.name})")
    return found


async def schema_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def migrate(
    conn: aiosqlite.Connection,
    *,
    target: int | None = None,
    migrations: Sequence[Migration] | None = None,
    path: str = "database",
) -> int:
    """Bring `conn` up to `target` (default: the newest version). Returns the new version.

    The connection must be in autocommit mode (`isolation_level=None`): each step
    opens its own `BEGIN IMMEDIATE` and commits together with its `user_version`.
    """
    steps = list(migrations) if migrations is not None else load_migrations()
    known = len(steps)
    target = known if target is None else target
    current = await schema_version(conn)
    if current > known:
        raise SchemaTooNewError(path, current, known)
    for step in steps[current:target]:
        script = (
            f"BEGIN IMMEDIATE;\n{step.sql}\n;\nPRAGMA user_version = {step.version:d};\nCOMMIT;"
        )
        try:
            await conn.executescript(script)
        except Exception as exc:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise MigrationError(f"migration {step.name} failed: {exc}") from exc
        current = step.version
    return current


async def connect(path: str | Path) -> aiosqlite.Connection:
    """A connection in autocommit mode with the pragmas the bot relies on."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        conn.row_factory = aiosqlite.Row
        for pragma in PRAGMAS:
            await conn.execute(pragma)
    except BaseException:
        await conn.close()
        raise
    return conn


class Database:
    """The bot's storage: `jobs`, `quotas`, `characters` and `guilds` repositories."""

    def __init__(
        self,
        conn: aiosqlite.Connection,
        *,
        clock: Clock,
        default_guild_monthly: int | None,
        default_user_daily: int | None,
    ) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self.clock = clock
        self.quotas = QuotaRepo(
            self, default_guild_monthly=default_guild_monthly, default_user_daily=default_user_daily
        )
        self.jobs = JobRepo(self, self.quotas)
        self.characters = CharacterRepo(self)
        self.guilds = GuildRepo(self)

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        clock: Clock | None = None,
        default_guild_monthly: int | None = 200,
        default_user_daily: int | None = 10,
    ) -> Database:
        """Open (creating it and its folder if needed) and migrate to the newest schema.

        Quota defaults: an int is a limit in cost units (0 allows nothing), None is
        unlimited. Guilds can override both (see `QuotaRepo.set_limits`).
        """
        conn = await connect(path)
        try:
            await migrate(conn, path=str(path))
        except BaseException:
            await conn.close()
            raise
        return cls(
            conn,
            clock=clock or SystemClock(),
            default_guild_monthly=default_guild_monthly,
            default_user_daily=default_user_daily,
        )

    async def close(self) -> None:
        async with self._lock:
            await self._conn.close()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A `BEGIN IMMEDIATE` write transaction that no other coroutine can interleave with.

        Commits when the block ends, rolls back if it raises (cancellation included).
        """
        async with self._lock:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
            except BaseException:
                # A cancellation can land while BEGIN is still running on aiosqlite's
                # thread; statements run in order there, so a ROLLBACK queued now always
                # comes after it. Shielded, so a second cancellation can't skip it and
                # leave the write lock held.
                await asyncio.shield(self._rollback())
                raise
            await asyncio.shield(self._conn.execute("COMMIT"))

    async def _rollback(self) -> None:
        try:
            await self._conn.execute("ROLLBACK")
        except sqlite3.OperationalError:
            pass  # BEGIN itself failed: no transaction is open

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[aiosqlite.Connection]:
        """The connection for a few reads in a row, between other coroutines' transactions."""
        async with self._lock:
            yield self._conn

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Row | None:
        async with self.reading() as conn, conn.execute(sql, tuple(params)) as cursor:
            return await cursor.fetchone()

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        async with self.reading() as conn, conn.execute(sql, tuple(params)) as cursor:
            return list(await cursor.fetchall())

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """One write statement in its own transaction; returns the number of rows changed."""
        async with self.transaction() as conn, conn.execute(sql, tuple(params)) as cursor:
            return cursor.rowcount
