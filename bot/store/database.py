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

Group commit: a COMMIT in WAL mode (with its share of checkpoints) costs more than the
statements of a typical write, so `run_transaction` calls that arrive while a write is
on the thread are queued and run together in the next hop: one `BEGIN IMMEDIATE … COMMIT`
with each function in its own SAVEPOINT, so each still commits or rolls back on its own
and nothing is reported as done before the shared COMMIT succeeded.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, cast

import aiosqlite

from bot.clock import Clock, SystemClock
from bot.store.characters import CharacterRepo
from bot.store.guilds import GuildRepo
from bot.store.images import ImageRepo
from bot.store.jobs import JobRepo
from bot.store.preferences import PreferenceRepo
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

    def __init__(
        self, path: str, found: int, known: int, *, setting: str = "DATABASE_PATH"
    ) -> None:
        super().__init__(
            f"The database {path} has schema version {found}, but this bot only knows "
            f"versions up to {known}; upgrade the bot or point {setting} elsewhere."
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


def _b64decode(text: str | None) -> bytes | None:
    """Pydantic wrote image bytes as URL-safe base64; older rows may be standard base64."""
    if text is None:
        return None
    text = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _sha256(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


# SQL functions that migrations may call (SQLite has no base64 or SHA-256 of its own).
MIGRATION_FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "bot_b64decode": _b64decode,
    "bot_sha256": _sha256,
}


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
    if current < target:
        for name, fn in MIGRATION_FUNCTIONS.items():
            await conn.create_function(name, 1, fn, deterministic=True)
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
    """The bot's storage: `jobs`, `quotas`, `characters`, `guilds`, `images` and `preferences`
    repositories."""

    backend = "sqlite"

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
        # Group commit (see `run_transaction`): functions waiting for the next batch, and
        # whether a coroutine or `_drainer` is already taking care of them.
        self._pending: list[_Pending] = []
        self._draining = False
        self._drainer: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.clock = clock
        self.quotas = QuotaRepo(
            self, default_guild_monthly=default_guild_monthly, default_user_daily=default_user_daily
        )
        self.jobs = JobRepo(self, self.quotas)
        self.characters = CharacterRepo(self)
        self.guilds = GuildRepo(self)
        self.images = ImageRepo(self)
        self.preferences = PreferenceRepo(self)

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        clock: Clock | None = None,
        default_guild_monthly: int | None = 200,
        default_user_daily: int | None = 24,
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
        await self._idle.wait()  # writes already handed to run_transaction finish first
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
        """`fn(conn)` inside a `BEGIN IMMEDIATE` write transaction, in one hop (see `run`).

        `fn`'s writes commit if it returns and roll back if it raises; both happen on the
        worker thread, so cancelling the caller cannot skip them. `fn` must not BEGIN,
        COMMIT or ROLLBACK itself.

        Group commit: if a write is already on the thread, `fn` waits with any others that
        arrive meanwhile, and the next hop runs them all in one transaction, each inside
        its own SAVEPOINT (an `fn` that raises only rolls back to it). The result comes
        back after that COMMIT; if the COMMIT fails, every `fn` of the batch gets its error.
        A call cancelled before its batch starts never runs; once the batch has started,
        `fn` runs to completion. Calls run in the order they were made.
        """
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        self._pending.append((fn, done))
        if not self._draining:  # idle: queue a batch now, as one `run` would
            self._draining = True
            self._idle.clear()
            try:
                await self._drain(once=True)
            except asyncio.CancelledError:
                done.cancel()
                raise
        return cast(T, await done)

    async def _drain(self, *, once: bool) -> None:
        """Run the pending functions in batches, one hop each (`once`: one batch only).

        Whoever leaves functions pending hands them to a `_drainer` task, so nothing
        waits on a caller that has already been answered or cancelled.
        """
        try:
            while self._pending:
                async with self._lock:
                    batch = [item for item in self._pending if not item[1].done()]
                    self._pending.clear()
                    if batch:
                        await self._run_batch(batch)
                if once:
                    break
        except asyncio.CancelledError:
            if not once:  # the task itself was cancelled (shutdown): nobody will run these
                for _, waiting in self._pending:
                    waiting.cancel()
                self._pending.clear()
            raise
        finally:
            if self._pending:
                self._drainer = asyncio.get_running_loop().create_task(self._drain(once=False))
            else:
                self._draining = False
                self._drainer = None
                self._idle.set()

    async def _run_batch(self, batch: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        try:
            # The thread answers each caller itself (`_deliver`), so a cancelled hop
            # still reports every result.
            await self._conn._execute(_transaction_batch, batch, loop, self._conn._conn)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # never reached the thread, e.g. the connection closed
            for _, waiting in batch:
                if not waiting.done():
                    waiting.set_exception(exc)

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


_Pending = tuple[Callable[[sqlite3.Connection], Any], "asyncio.Future[Any]"]
_Outcome = tuple[bool, Any]  # (returned, value or exception)


def _transaction_batch(
    batch: list[_Pending], loop: asyncio.AbstractEventLoop, conn: sqlite3.Connection
) -> None:
    """Run on the worker thread: every function of `batch` in one transaction, each in a
    SAVEPOINT, then answer each caller. COMMIT and ROLLBACK live here so no await can
    skip them."""
    outcomes: list[_Outcome] = []
    first = 0  # outcomes[first:] belong to the transaction now open
    try:
        conn.execute("BEGIN IMMEDIATE")
        for fn, _ in batch:
            conn.execute("SAVEPOINT run_transaction")
            try:
                value = fn(conn)
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK TO run_transaction")
                    conn.execute("RELEASE run_transaction")
                    outcomes.append((False, exc))
                else:  # SQLite rolled back the whole transaction: earlier writes are gone
                    outcomes[first:] = [(False, exc)] * (len(outcomes) - first + 1)
                    first = len(outcomes)
                    conn.execute("BEGIN IMMEDIATE")
            else:
                conn.execute("RELEASE run_transaction")
                outcomes.append((True, value))
        conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        outcomes[first:] = [(False, exc)] * (len(batch) - first)
    loop.call_soon_threadsafe(_deliver, batch, outcomes)


def _deliver(batch: list[_Pending], outcomes: list[_Outcome]) -> None:
    """On the event loop: hand each caller its result or exception."""
    for (_, waiting), (returned, value) in zip(batch, outcomes, strict=True):
        if waiting.done():  # the caller was cancelled while its function ran
            continue
        if returned:
            waiting.set_result(value)
        else:
            waiting.set_exception(value)
