"""PostgreSQL storage: an asyncpg pool, versioned migrations, and the same repositories.

Selected by `DATABASE_URL=postgresql://…`. Several bot processes may share one database,
so nothing here relies on being the only writer: a write transaction takes row locks
(quota scopes are serialised through their running-total rows, see `quotas.py`), and
migrations run under an advisory lock so two processes starting together migrate once.

Migrations live in `bot/store/pg_migrations/NNNN_name.sql`, numbered from 0001 on their
own (0001 is the end state of SQLite's 0001–0008). Each runs in its own transaction
together with the `schema_version` row, so a crash leaves a whole version; a database
newer than the code is refused (`SchemaTooNewError`), as on SQLite.

`run_transaction(fn)` is the twin of the SQLite `Database.run_transaction`: `fn(conn)`
runs inside one transaction and, once started, runs to its COMMIT or ROLLBACK even if
the caller is cancelled (a shielded task), so a cancelled caller never leaves a
half-written job behind.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from types import TracebackType
from typing import Any, TypeAlias, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bot.clock import Clock, SystemClock
from bot.store.database import Migration, MigrationError, SchemaTooNewError

T = TypeVar("T")

_MIGRATION_NAME = re.compile(r"^(\d{4})_\w+\.sql$")
# pg_advisory_lock key held while migrating ("sora-bot migrate" as a number).
MIGRATION_LOCK = 0x50_52_41_42_4F_54_4D_47

Connection: TypeAlias = asyncpg.Connection
Record: TypeAlias = asyncpg.Record


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=user + host))


def load_pg_migrations() -> list[Migration]:
    """The bundled PostgreSQL scripts in order; numbering must run 1, 2, 3… without gaps."""
    folder = resources.files("bot.store").joinpath("pg_migrations")
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


async def pg_schema_version(conn: Connection) -> int:
    exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return 0
    version = await conn.fetchval("SELECT max(version) FROM schema_version")
    return int(version or 0)


async def pg_migrate(
    conn: Connection,
    *,
    target: int | None = None,
    migrations: Sequence[Migration] | None = None,
    url: str = "database",
) -> int:
    """Bring the database up to `target` (default: newest); returns the new version.

    Holds an advisory lock for the whole run, so concurrent processes wait for one
    another instead of applying a step twice.
    """
    steps = list(migrations) if migrations is not None else load_pg_migrations()
    known = len(steps)
    target = known if target is None else target
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        current = await pg_schema_version(conn)
        if current > known:
            raise SchemaTooNewError(safe_url(url), current, known, setting="DATABASE_URL")
        for step in steps[current:target]:
            try:
                async with conn.transaction():
                    await conn.execute(
                        "CREATE TABLE IF NOT EXISTS schema_version ("
                        " version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL"
                        " DEFAULT now())"
                    )
                    await conn.execute(step.sql)
                    await conn.execute(
                        "INSERT INTO schema_version (version) VALUES ($1)", step.version
                    )
            except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise MigrationError(f"migration {step.name} failed: {exc}") from exc
            current = step.version
        return current
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)


_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\bIS\s+\?|\?", re.IGNORECASE)


def to_dollar(sql: str) -> str:
    """`?` placeholders (SQLite style) as `$1, $2, …`, and SQLite's `IS ?` as
    `IS NOT DISTINCT FROM $n`, leaving quoted strings alone."""
    counter = iter(range(1, 10_000))

    def swap(match: re.Match[str]) -> str:
        if match[0].startswith("'"):
            return match[0]
        if match[0] == "?":
            return f"${next(counter)}"
        return f"IS NOT DISTINCT FROM ${next(counter)}"

    return _PLACEHOLDER.sub(swap, sql)


def text(value: str | None) -> str | None:
    """Free text as PostgreSQL can keep it: TEXT refuses NUL, which a relay's error or a
    link could carry, and a refused write must never keep a job from finishing; NUL
    becomes U+FFFD (SQLite keeps it as is)."""
    return value.replace("\x00", "\ufffd") if value is not None and "\x00" in value else value


def rowcount(status: str) -> int:
    """Rows changed, from asyncpg's command tag (`UPDATE 3`, `INSERT 0 1`, `DELETE 0`)."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class PgDatabase:
    """The bot's storage on PostgreSQL: the same repositories as the SQLite `Database`."""

    backend = "postgresql"

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        clock: Clock,
        default_guild_monthly: int | None,
        default_user_daily: int | None,
        url: str,
    ) -> None:
        from bot.store.postgres.characters import PgCharacterRepo
        from bot.store.postgres.guilds import PgGuildRepo
        from bot.store.postgres.images import PgImageRepo
        from bot.store.postgres.jobs import PgJobRepo
        from bot.store.postgres.preferences import PgPreferenceRepo
        from bot.store.postgres.quotas import PgQuotaRepo

        self.pool = pool
        self.clock = clock
        self.url = safe_url(url)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.quotas = PgQuotaRepo(
            self, default_guild_monthly=default_guild_monthly, default_user_daily=default_user_daily
        )
        self.jobs = PgJobRepo(self, self.quotas)
        self.characters = PgCharacterRepo(self)
        self.guilds = PgGuildRepo(self)
        self.images = PgImageRepo(self)
        self.preferences = PgPreferenceRepo(self)

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        clock: Clock | None = None,
        default_guild_monthly: int | None = 200,
        default_user_daily: int | None = 24,
        pool_size: int = 10,
        migrate: bool = True,
    ) -> PgDatabase:
        """Connect and migrate to the newest schema (or, with `migrate=False`, only
        refuse a schema newer than the code)."""
        pool = await asyncpg.create_pool(
            url, min_size=1, max_size=max(1, pool_size), command_timeout=60
        )
        try:
            async with pool.acquire() as conn:
                if migrate:
                    await pg_migrate(conn, url=url)
                else:
                    found, known = await pg_schema_version(conn), len(load_pg_migrations())
                    if found > known:
                        raise SchemaTooNewError(safe_url(url), found, known, setting="DATABASE_URL")
        except BaseException:
            await pool.close()
            raise
        return cls(
            pool,
            clock=clock or SystemClock(),
            default_guild_monthly=default_guild_monthly,
            default_user_daily=default_user_daily,
            url=url,
        )

    async def close(self) -> None:
        if self._tasks:  # transactions already started finish first
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pool.close()

    async def __aenter__(self) -> PgDatabase:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def run_transaction(self, fn: Callable[[Connection], Awaitable[T]]) -> T:
        """`await fn(conn)` inside one transaction: commits if it returns, rolls back if it
        raises. Once started it runs to the end even if the caller is cancelled."""

        async def body() -> T:
            async with self.pool.acquire() as conn, conn.transaction():
                return await fn(conn)

        task = asyncio.get_running_loop().create_task(body())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(task)

    async def run(self, fn: Callable[[Connection], Awaitable[T]]) -> T:
        """`await fn(conn)` on a pooled connection, outside any explicit transaction."""
        async with self.pool.acquire() as conn:
            return await fn(conn)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Connection]:
        """A read-only REPEATABLE READ transaction: several reads of one instant."""
        async with (
            self.pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            yield conn

    # Ad-hoc SQL with SQLite-style `?` placeholders, so tools and tests can run the same
    # statement on either backend. The repositories use `$n` SQL directly.

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Record | None:
        row: Record | None = await self.pool.fetchrow(to_dollar(sql), *params)
        return row

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Record]:
        rows: list[Record] = await self.pool.fetch(to_dollar(sql), *params)
        return rows

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """One statement in its own transaction; returns the number of rows changed."""
        return rowcount(await self.pool.execute(to_dollar(sql), *params))
