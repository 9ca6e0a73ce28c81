"""One SQLite connection, versioned migrations, and the repositories the bot uses.

Migrations follow mautrix's `upgrade.py`: each `migrations/NNNN_name.sql` runs in its own
transaction that also sets `PRAGMA user_version`, so a crash leaves the database at a
whole version; a database newer than the code is refused instead of being misread.

SQLite serialises writers anyway, so the bot uses ONE connection, and an `asyncio.Lock`
keeps coroutines from interleaving statements inside each other's `BEGIN IMMEDIATE`
transaction. Reads take the lock too, so they never see another coroutine's
half-finished transaction on the shared connection.

Every awaited aiosqlite call (execute, fetch, cursor close) is a round trip to its
worker thread, ~100–240 µs each. So the repositories write each transaction as one
synchronous function over the plain `sqlite3.Connection` and hand it to `Database.run`
or `Database.run_transaction`, which cost one round trip however many statements run.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, cast

import aiosqlite

from bot.clock import Clock, SystemClock
from bot.store.characters import CharacterRepo
from bot.store.guilds import GuildRepo
from bot.store.jobs import JobRepo
from bot.store.quotas import QuotaRepo

T = TypeVar("T")

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
            require_thread_api(conn)
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

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(conn)` on aiosqlite's worker thread, in ONE round trip, under the lock.

        Why: each awaited aiosqlite call is its own hop to that thread, so a transaction
        written as awaits pays ~10–25 hops; a synchronous `fn` pays one. aiosqlite has no
        public API for running a function on its thread, so this is the only place that
        uses its private `Connection._execute` (`require_thread_api` checks it at `open`).

        Once queued, `fn` runs to completion even if the awaiting coroutine is cancelled.
        The lock is then released early, but the thread runs its queue in order, so work
        queued afterwards still starts only after `fn` returns. `fn` must therefore never
        leave a transaction open: use `run_transaction` for writes, which commits or rolls
        back inside `fn` itself.
        """
        async with self._lock:
            return cast(T, await self._conn._execute(fn, self._conn._conn))

    async def run_transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(conn)` inside `BEGIN IMMEDIATE`, all in one hop (see `run`).

        Commits if `fn` returns, rolls back if it raises; both happen on the worker
        thread, so cancelling the caller cannot skip them.
        """
        return await self.run(partial(_in_transaction, fn))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A `BEGIN IMMEDIATE` write transaction that no other coroutine can interleave with.

        Commits when the block ends, rolls back if it raises (cancellation included).
        Each statement in the block is a separate hop; prefer `run_transaction`.
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

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        args = tuple(params)
        row: sqlite3.Row | None = await self.run(lambda conn: conn.execute(sql, args).fetchone())
        return row

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        args = tuple(params)
        return await self.run(lambda conn: conn.execute(sql, args).fetchall())

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """One write statement in its own transaction; returns the number of rows changed."""
        args = tuple(params)
        return await self.run_transaction(lambda conn: conn.execute(sql, args).rowcount)


def require_thread_api(conn: aiosqlite.Connection) -> None:
    """Fail at startup if this aiosqlite lacks the private API `Database.run` relies on."""
    execute = getattr(conn, "_execute", None)
    try:
        raw = getattr(conn, "_conn", None)
    except ValueError:  # aiosqlite's property raises this when no connection is open
        raw = None
    if not callable(execute) or not isinstance(raw, sqlite3.Connection):
        raise RuntimeError(
            f"aiosqlite {getattr(aiosqlite, '__version__', '?')} has no Connection._execute"
            " or Connection._conn, which Database.run needs; install aiosqlite>=0.22,<0.23"
        )


def _in_transaction(fn: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection) -> T:
    """Run on the worker thread: COMMIT and ROLLBACK live here so no await can skip them."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # False if BEGIN itself failed or SQLite rolled back already
            conn.execute("ROLLBACK")
        raise
    return result
