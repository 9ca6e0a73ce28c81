"""Member and server defaults and allowed models on PostgreSQL (see
`bot.store.preferences`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from bot.store._util import UNSET, Unset
from bot.store.postgres.database import text
from bot.store.preferences import (
    _COLUMNS,
    FIELDS,
    Defaults,
    ModelNotAllowedError,
    Preferences,
    _defaults,
)

if TYPE_CHECKING:
    from bot.store.postgres.database import Connection, PgDatabase


async def _read_member(conn: Connection, guild_id: int, user_id: int) -> Defaults:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM member_defaults WHERE guild_id = $1 AND user_id = $2",
        guild_id, user_id,
    )  # fmt: skip
    return _defaults(None if row is None else tuple(row))


async def _read_server(conn: Connection, guild_id: int) -> Defaults:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM server_defaults WHERE guild_id = $1", guild_id
    )
    return _defaults(None if row is None else tuple(row))


async def _read_allowed(conn: Connection, guild_id: int) -> frozenset[str] | None:
    rows = await conn.fetch("SELECT model FROM server_allowed_models WHERE guild_id = $1", guild_id)
    return frozenset(row[0] for row in rows) or None


async def pg_check_model_allowed(conn: Connection, guild_id: int | None, model: str) -> None:
    """Inside the transaction that reserves a job's units: refuse a model the server's
    admins took away (see `bot.store.preferences.check_model_allowed`)."""
    if guild_id is None:
        return
    allowed = await _read_allowed(conn, guild_id)
    if allowed is not None and model not in allowed:
        raise ModelNotAllowedError(model, sorted(allowed))


class PgPreferenceRepo:
    """Reads and writes `member_defaults`, `server_defaults` and `server_allowed_models`."""

    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    async def get(self, guild_id: int, user_id: int) -> Preferences:
        async with self._db.pool.acquire() as conn:
            return Preferences(
                guild_id,
                user_id,
                await _read_member(conn, guild_id, user_id),
                await _read_server(conn, guild_id),
                await _read_allowed(conn, guild_id),
            )

    async def member(self, guild_id: int, user_id: int) -> Defaults:
        async with self._db.pool.acquire() as conn:
            return await _read_member(conn, guild_id, user_id)

    async def server(self, guild_id: int) -> Defaults:
        async with self._db.pool.acquire() as conn:
            return await _read_server(conn, guild_id)

    async def allowed_models(self, guild_id: int) -> frozenset[str] | None:
        async with self._db.pool.acquire() as conn:
            return await _read_allowed(conn, guild_id)

    async def guilds_with_settings(self) -> set[int]:
        rows = await self._db.pool.fetch(
            "SELECT guild_id FROM member_defaults UNION SELECT guild_id FROM server_defaults"
            " UNION SELECT guild_id FROM server_allowed_models"
        )
        return {int(row[0]) for row in rows}

    async def set_member(
        self,
        guild_id: int,
        user_id: int,
        *,
        model: str | Unset | None = UNSET,
        orientation: str | Unset | None = UNSET,
        duration: int | Unset | None = UNSET,
        hd: bool | Unset | None = UNSET,
        private: bool | Unset | None = UNSET,
    ) -> Defaults:
        """Change only the fields passed; None clears one back to "not set"."""
        changes = _changes(model, orientation, duration, hd, private)
        await self._upsert("member_defaults", {"guild_id": guild_id, "user_id": user_id}, changes)
        return await self.member(guild_id, user_id)

    async def set_server(
        self,
        guild_id: int,
        *,
        model: str | Unset | None = UNSET,
        orientation: str | Unset | None = UNSET,
        duration: int | Unset | None = UNSET,
        hd: bool | Unset | None = UNSET,
        private: bool | Unset | None = UNSET,
    ) -> Defaults:
        """Change only the fields passed; None clears one back to "not set"."""
        changes = _changes(model, orientation, duration, hd, private)
        await self._upsert("server_defaults", {"guild_id": guild_id}, changes)
        return await self.server(guild_id)

    async def reset_member(self, guild_id: int, user_id: int) -> None:
        await self._db.pool.execute(
            "DELETE FROM member_defaults WHERE guild_id = $1 AND user_id = $2", guild_id, user_id
        )

    async def reset_server(self, guild_id: int) -> None:
        """Clear the server's defaults (its allowed models stay)."""
        await self._db.pool.execute("DELETE FROM server_defaults WHERE guild_id = $1", guild_id)

    async def set_allowed_models(
        self, guild_id: int, models: Iterable[str] | None
    ) -> frozenset[str] | None:
        """Replace the server's allowed models; None (or nothing) allows every model."""
        chosen = sorted(set(models or ()))

        async def write(conn: Connection) -> None:
            await conn.execute("DELETE FROM server_allowed_models WHERE guild_id = $1", guild_id)
            await conn.executemany(
                "INSERT INTO server_allowed_models (guild_id, model) VALUES ($1, $2)",
                [(guild_id, text(model)) for model in chosen],
            )

        await self._db.run_transaction(write)
        return frozenset(chosen) or None

    async def _upsert(self, table: str, keys: dict[str, int], changes: dict[str, Any]) -> None:
        columns = [*keys, *changes, "updated_at"]
        values = [*keys.values(), *changes.values(), self._db.clock.now()]
        updates = ", ".join(f"{name} = excluded.{name}" for name in [*changes, "updated_at"])
        marks = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
        await self._db.pool.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
            f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}",
            *values,
        )


def _changes(*values: object) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in zip(FIELDS, values, strict=True):
        if isinstance(value, Unset):
            continue
        if value is None:
            out[name] = None
        elif name in ("hd", "private"):
            out[name] = bool(value)
        elif name == "duration":
            out[name] = int(value)  # type: ignore[call-overload]
        else:
            out[name] = text(str(value))
    return out
