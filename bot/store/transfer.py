"""Moving an installation between backends, and applying migrations by hand.

`copy_sqlite_to_postgres` (`python -m bot copy-db --from sqlite:PATH --to postgresql://…`)
copies every table of a SQLite store into an empty PostgreSQL store, keeping ids (job
numbers are on buttons and in history), in ONE PostgreSQL transaction: a failure leaves
the target as it was. The source is read inside one SQLite read transaction, so a bot
still writing to it can't make the copy half old and half new (stop the bot anyway:
what it writes after the snapshot is not copied). The copy is generic over the schema:
each SQLite table must have a PostgreSQL twin with the same columns (each backend's
migrations keep them in step), and values are converted by the target column's type
(ISO text → TIMESTAMPTZ, 0/1 → BOOLEAN). Afterwards every table is read back from both
sides, normalised, and compared row by row, and the ledger audit runs on both: the
command reports success only when they match.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import sqlite3
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from bot.store._util import from_db
from bot.store.database import Database, connect, load_migrations, migrate, schema_version
from bot.store.postgres.database import (
    PgDatabase,
    is_postgres_url,
    load_pg_migrations,
    pg_migrate,
    pg_schema_version,
    safe_url,
    text,
)

BATCH = 500


class TransferError(Exception):
    """A copy or migration that can't be done; `str()` is one sentence for the operator."""


@dataclass(frozen=True, slots=True)
class MigrateReport:
    where: str
    before: int
    after: int

    def line(self) -> str:
        if self.before == self.after:
            return f"{self.where}: schema version {self.after}, already the newest"
        return f"{self.where}: schema version {self.before} -> {self.after}"


@dataclass(frozen=True, slots=True)
class CopyReport:
    tables: dict[str, int]  # rows copied per table
    digest: str  # of every row, normalised; equal on both sides
    drift: int = 0  # running totals that disagree with the ledger, the same on both sides

    @property
    def rows(self) -> int:
        return sum(self.tables.values())

    def line(self, source: str, target: str) -> str:
        return (
            f"copied {self.rows} rows in {len(self.tables)} tables from {source} to {target};"
            f" every row reads back the same (digest {self.digest[:12]}) and the quota"
            " ledger audit is "
            + ("clean on both" if not self.drift else f"the same on both ({self.drift} drifts)")
        )


async def migrate_store(url: str | None, path: str | Path) -> MigrateReport:
    """Apply the pending migrations of the configured store; says from which version to
    which. Refuses a schema newer than the code (`SchemaTooNewError`)."""
    if url:
        try:
            conn = await asyncpg.connect(url)
        except (OSError, asyncpg.PostgresError) as exc:
            raise TransferError(f"Cannot reach {safe_url(url)}: {_reason(exc)}.") from None
        try:
            before = await pg_schema_version(conn)
            after = await pg_migrate(conn, url=url)
        finally:
            await conn.close()
        return MigrateReport(safe_url(url), before, after)
    lite = await connect(path)
    try:
        before = await schema_version(lite)
        after = await migrate(lite, path=str(path))
    finally:
        await lite.close()
    return MigrateReport(str(path), before, after)


def parse_source(spec: str) -> Path:
    """`sqlite:PATH` (or a bare path) → the SQLite file, which must exist."""
    if is_postgres_url(spec):
        raise TransferError("copy-db copies from SQLite: --from must be sqlite:PATH.")
    path = Path(spec.removeprefix("sqlite:"))
    if not path.is_file():
        raise TransferError(f"There is no SQLite database at {path}.")
    return path


async def copy_sqlite_to_postgres(
    source: Path, target: str, *, replace: bool = False
) -> CopyReport:
    """Copy every table of the SQLite store at `source` into the PostgreSQL store at
    `target` (migrating both first), then prove the copy; see the module docstring.

    Refuses a target that holds any row, unless `replace` (which empties it first, in
    the same transaction as the copy).
    """
    if not is_postgres_url(target):
        raise TransferError("--to must be a postgresql:// URL.")
    # Both ends at the newest schema, exactly as a starting bot would leave them.
    async with await Database.open(source) as lite:
        audit = await lite.quotas.audit()  # a drift is copied as it is, and must stay so
    try:
        pg = await PgDatabase.open(target, pool_size=2)
    except (OSError, asyncpg.PostgresError) as exc:
        raise TransferError(f"Cannot reach {safe_url(target)}: {_reason(exc)}.") from None
    try:
        src = sqlite3.connect(source, check_same_thread=False, isolation_level=None)
        try:
            await asyncio.to_thread(src.execute, "BEGIN")  # one snapshot for copy and check
            report = await _copy(src, pg, replace=replace, where=safe_url(target))
            await asyncio.to_thread(src.execute, "COMMIT")
        finally:
            src.close()
        if await pg.quotas.audit() != audit:
            raise TransferError("The quota ledger audit differs after the copy.")
        return dataclasses.replace(report, drift=len(audit))
    finally:
        await pg.close()


async def _copy(
    src: sqlite3.Connection, pg: PgDatabase, *, replace: bool, where: str
) -> CopyReport:
    tables = await asyncio.to_thread(_sqlite_tables, src)
    async with pg.pool.acquire() as conn:
        target_columns = await _pg_columns(conn)
        order = await _pg_table_order(conn, list(target_columns))
        for table, (columns, _) in tables.items():
            if table not in target_columns:
                raise TransferError(
                    f"Table {table} has no PostgreSQL twin; run a bot with its migration first."
                )
            missing = [c for c in columns if c not in target_columns[table]]
            if missing:
                raise TransferError(
                    f"Column {table}.{missing[0]} has no PostgreSQL twin; nothing was copied."
                )
        filled = [t for t in order if await conn.fetchval(f'SELECT EXISTS (SELECT 1 FROM "{t}")')]
        if filled and not replace:
            raise TransferError(
                f"{where} already holds data (table {filled[0]}); copy into an empty database,"
                " or pass --replace to empty it first."
            )
        plan = [(t, *tables[t]) for t in order if t in tables]
        copied: dict[str, int] = {}
        async with conn.transaction():
            if filled:
                names = ", ".join(f'"{t}"' for t in order)
                await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
            for table, columns, keys in plan:
                types = [target_columns[table][c] for c in columns]
                count = 0
                cursor = await asyncio.to_thread(src.execute, _select(table, columns, keys))
                while rows := await asyncio.to_thread(cursor.fetchmany, BATCH):
                    records = [_convert(table, columns, row, types) for row in rows]
                    await conn.copy_records_to_table(table, records=records, columns=columns)
                    count += len(records)
                copied[table] = count
            await _advance_identities(conn, src)
        # Read both sides back, in the same order, and compare every row normalised.
        digest = hashlib.sha256()
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            for table, columns, keys in plan:
                types = [target_columns[table][c] for c in columns]
                cursor = await asyncio.to_thread(src.execute, _select(table, columns, keys))
                theirs = conn.cursor(
                    _select(table, columns, keys, target_columns[table]), prefetch=BATCH
                )
                mine = _batches(cursor)
                async for record in theirs:
                    row = await anext(mine, None)
                    if row is None or _convert(table, columns, row, types) != tuple(record):
                        raise TransferError(
                            f"Table {table} does not read back the same; the copy is suspect."
                        )
                    digest.update(repr((table, tuple(record))).encode())
                if await anext(mine, None) is not None:
                    raise TransferError(f"Table {table} lost rows in the copy.")
    return CopyReport(copied, digest.hexdigest())


async def _batches(cursor: sqlite3.Cursor) -> AsyncIterator[Sequence[Any]]:
    while rows := await asyncio.to_thread(cursor.fetchmany, BATCH):
        for row in rows:
            yield row


def _sqlite_tables(src: sqlite3.Connection) -> dict[str, tuple[list[str], list[str]]]:
    """Each table's columns and primary key columns (in key order)."""
    names = [
        row[0]
        for row in src.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY name"
        )
    ]
    out: dict[str, tuple[list[str], list[str]]] = {}
    for name in names:
        info = src.execute(f'PRAGMA table_info("{name}")').fetchall()
        columns = [row[1] for row in info]
        keys = [row[1] for row in sorted(info, key=lambda r: r[5]) if row[5]]
        out[name] = (columns, keys or columns)
    return out


def _select(
    table: str, columns: Sequence[str], keys: Sequence[str], types: dict[str, str] | None = None
) -> str:
    """Every row in one order on both backends: by primary key, text compared as bytes
    (SQLite's BINARY and PostgreSQL's "C" collation agree). `types`: the PostgreSQL
    column types, when the statement is for PostgreSQL."""
    order = ", ".join(
        f'"{k}"' + (' COLLATE "C"' if types and types[k] == "text" else "") for k in keys
    )
    cols = ", ".join(f'"{c}"' for c in columns)
    return f'SELECT {cols} FROM "{table}" ORDER BY {order}'


async def _pg_columns(conn: asyncpg.Connection) -> dict[str, dict[str, str]]:
    rows = await conn.fetch(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name <> 'schema_version'"
        " ORDER BY table_name, ordinal_position"
    )
    out: dict[str, dict[str, str]] = {}
    for row in rows:
        out.setdefault(row[0], {})[row[1]] = row[2]
    return out


async def _pg_table_order(conn: asyncpg.Connection, tables: list[str]) -> list[str]:
    """Tables ordered so that every table comes after the tables it references."""
    rows = await conn.fetch(
        "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint"
        " WHERE contype = 'f' AND connamespace = current_schema()::regnamespace"
    )
    needs: dict[str, set[str]] = {t: set() for t in tables}
    for child, parent in rows:
        if child != parent and child in needs:
            needs[child].add(parent)
    order: list[str] = []
    while needs:
        ready = sorted(t for t, deps in needs.items() if not deps - set(order))
        if not ready:
            raise TransferError("The PostgreSQL tables reference each other in a cycle.")
        order += ready
        for t in ready:
            del needs[t]
    return order


def _convert(
    table: str, columns: Sequence[str], row: Sequence[Any], types: Sequence[str]
) -> tuple[Any, ...]:
    """A SQLite row as the PostgreSQL columns hold it."""
    out: list[Any] = []
    for column, value, kind in zip(columns, row, types, strict=True):
        try:
            out.append(_value(value, kind))
        except (TypeError, ValueError):
            raise TransferError(
                f"{table}.{column} holds {str(value)[:40]!r}, which is not a {kind};"
                " nothing was copied."
            ) from None
    return tuple(out)


def _value(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "timestamp with time zone":
        return value if isinstance(value, datetime) else from_db(value)
    if kind == "boolean":
        return bool(value)
    if kind == "bytea":
        return bytes(value)
    if kind in ("bigint", "integer", "smallint"):
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return int(value)
    if kind in ("double precision", "real"):
        return float(value)
    if isinstance(value, str):
        return text(value)
    return value


async def _advance_identities(conn: asyncpg.Connection, src: sqlite3.Connection) -> None:
    """New ids continue after the highest ever used (SQLite's AUTOINCREMENT never reuses
    an id, even a deleted one's; neither may the copy)."""
    used = dict(
        await asyncio.to_thread(
            lambda: src.execute("SELECT name, seq FROM sqlite_sequence").fetchall()
        )
    )
    rows = await conn.fetch(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND is_identity = 'YES'"
    )
    for table, column in rows:
        highest = await conn.fetchval(f'SELECT max("{column}") FROM "{table}"') or 0
        highest = max(int(highest), int(used.get(table, 0)))
        if highest > 0:
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'), $1)", highest
            )


def _reason(exc: BaseException) -> str:
    text_ = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text_.rstrip(".")


__all__ = [
    "CopyReport",
    "MigrateReport",
    "TransferError",
    "copy_sqlite_to_postgres",
    "load_migrations",
    "load_pg_migrations",
    "migrate_store",
    "parse_source",
]
