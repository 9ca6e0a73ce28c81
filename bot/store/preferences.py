"""Member and server defaults for new videos (/settings), and the models a server allows.

A member's defaults belong to one server: what they pick in server A never applies in
server B. Every field is None until set, meaning "not set here": the next level decides
(member, then server, then the model catalogue; see `bot.jobs.defaults`). The store keeps
whatever it is given; whether a model or duration still fits the catalogue is decided when
a video is made, because the catalogue can change under stored values.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from bot.store._util import UNSET, Unset, to_db

if TYPE_CHECKING:
    from bot.store.database import Database

FIELDS = ("model", "orientation", "duration", "hd", "private")
_COLUMNS = ", ".join(FIELDS)


class ModelNotAllowedError(Exception):
    """The server's admins don't allow `model` here; `allowed` are the models that are."""

    def __init__(self, model: str, allowed: Iterable[str]) -> None:
        self.model = model
        self.allowed = tuple(allowed)
        super().__init__(
            f"{model} is not allowed here (allowed: {', '.join(self.allowed) or 'none'})"
        )


@dataclass(frozen=True, slots=True)
class Defaults:
    """One level of defaults (a member's, or a server's); None = not set at this level."""

    model: str | None = None
    orientation: str | None = None
    duration: int | None = None
    hd: bool | None = None
    private: bool | None = None

    @property
    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in FIELDS)

    def as_dict(self) -> dict[str, Any]:
        """The fields that are set."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }


@dataclass(frozen=True, slots=True)
class Preferences:
    """Everything `/video` needs to fill in a member's unset options, read in one hop."""

    guild_id: int
    user_id: int
    member: Defaults
    server: Defaults
    #: The models members may use here; None = every catalogue model.
    allowed_models: frozenset[str] | None


def _defaults(row: sqlite3.Row | tuple[Any, ...] | None) -> Defaults:
    if row is None:
        return Defaults()
    model, orientation, duration, hd, private = row
    return Defaults(
        model=model,
        orientation=orientation,
        duration=None if duration is None else int(duration),
        hd=None if hd is None else bool(hd),
        private=None if private is None else bool(private),
    )


def _stored(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in ("hd", "private"):
        return int(bool(value))
    if name == "duration":
        return int(value)
    return str(value)


def _read_member(conn: sqlite3.Connection, guild_id: int, user_id: int) -> Defaults:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM member_defaults WHERE guild_id = ? AND user_id = ?",
        (guild_id, user_id),
    ).fetchone()
    return _defaults(row)


def _read_server(conn: sqlite3.Connection, guild_id: int) -> Defaults:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM server_defaults WHERE guild_id = ?", (guild_id,)
    ).fetchone()
    return _defaults(row)


def _read_allowed(conn: sqlite3.Connection, guild_id: int) -> frozenset[str] | None:
    rows = conn.execute(
        "SELECT model FROM server_allowed_models WHERE guild_id = ?", (guild_id,)
    ).fetchall()
    return frozenset(row[0] for row in rows) or None


def check_model_allowed(conn: sqlite3.Connection, guild_id: int | None, model: str) -> None:
    """Inside the transaction that reserves a job's units: refuse a model the server's
    admins took away, so nothing is reserved for it (commands, reruns, remixes alike)."""
    if guild_id is None:
        return
    allowed = _read_allowed(conn, guild_id)
    if allowed is not None and model not in allowed:
        raise ModelNotAllowedError(model, sorted(allowed))


class PreferenceRepo:
    """Reads and writes `member_defaults`, `server_defaults` and `server_allowed_models`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, guild_id: int, user_id: int) -> Preferences:
        """A member's defaults, the server's, and the allowed models, in one round trip."""

        def read(conn: sqlite3.Connection) -> Preferences:
            return Preferences(
                guild_id,
                user_id,
                _read_member(conn, guild_id, user_id),
                _read_server(conn, guild_id),
                _read_allowed(conn, guild_id),
            )

        return await self._db.run(read)

    async def member(self, guild_id: int, user_id: int) -> Defaults:
        return await self._db.run(lambda conn: _read_member(conn, guild_id, user_id))

    async def server(self, guild_id: int) -> Defaults:
        return await self._db.run(lambda conn: _read_server(conn, guild_id))

    async def allowed_models(self, guild_id: int) -> frozenset[str] | None:
        """The models members may use in `guild_id`; None = every catalogue model."""
        return await self._db.run(lambda conn: _read_allowed(conn, guild_id))

    async def guilds_with_settings(self) -> set[int]:
        """Every server with any defaults or allowed models stored (read once at start-up,
        so servers without settings need no read before a command is acknowledged)."""
        rows = await self._db.fetchall(
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
        keys = {"guild_id": guild_id, "user_id": user_id}
        now = to_db(self._db.clock.now())
        await self._db.run_transaction(
            lambda conn: _upsert(conn, "member_defaults", keys, changes, now)
        )
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
        now = to_db(self._db.clock.now())
        await self._db.run_transaction(
            lambda conn: _upsert(conn, "server_defaults", {"guild_id": guild_id}, changes, now)
        )
        return await self.server(guild_id)

    async def reset_member(self, guild_id: int, user_id: int) -> None:
        await self._db.execute(
            "DELETE FROM member_defaults WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
        )

    async def reset_server(self, guild_id: int) -> None:
        """Clear the server's defaults (its allowed models stay; see `set_allowed_models`)."""
        await self._db.execute("DELETE FROM server_defaults WHERE guild_id = ?", (guild_id,))

    async def set_allowed_models(
        self, guild_id: int, models: Iterable[str] | None
    ) -> frozenset[str] | None:
        """Replace the server's allowed models; None (or nothing) allows every model."""
        chosen = sorted(set(models or ()))

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM server_allowed_models WHERE guild_id = ?", (guild_id,))
            conn.executemany(
                "INSERT INTO server_allowed_models (guild_id, model) VALUES (?, ?)",
                [(guild_id, model) for model in chosen],
            )

        await self._db.run_transaction(write)
        return frozenset(chosen) or None


def _changes(*values: object) -> dict[str, Any]:
    return {
        name: _stored(name, value)
        for name, value in zip(FIELDS, values, strict=True)
        if not isinstance(value, Unset)
    }


def _upsert(
    conn: sqlite3.Connection,
    table: str,
    keys: dict[str, int],
    changes: dict[str, Any],
    now: str,
) -> None:
    """Insert the row or change only `changes` in it (portable `ON CONFLICT … DO UPDATE`)."""
    columns = [*keys, *changes, "updated_at"]
    values = [*keys.values(), *changes.values(), now]
    updates = ", ".join(f"{name} = excluded.{name}" for name in [*changes, "updated_at"])
    conn.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}",
        values,
    )
