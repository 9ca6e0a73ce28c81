"""Per-guild settings on PostgreSQL (see `bot.store.guilds`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, get_args

from bot.relay.models import RelayFormat
from bot.store._util import UNSET, Unset
from bot.store.guilds import GuildSettings
from bot.store.postgres.quotas import pg_upsert_guild_settings

if TYPE_CHECKING:
    from bot.store.postgres.database import PgDatabase


class PgGuildRepo:
    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    async def get(self, guild_id: int) -> GuildSettings:
        row = await self._db.pool.fetchrow(
            "SELECT locale, relay_format, notify_channel_id FROM guild_settings"
            " WHERE guild_id = $1",
            guild_id,
        )
        if row is None:
            return GuildSettings(guild_id)
        return GuildSettings(guild_id, row[0], row[1], row[2])

    async def set(
        self,
        guild_id: int,
        *,
        locale: str | Unset | None = UNSET,
        relay_format: RelayFormat | Unset | None = UNSET,
        notify_channel_id: int | Unset | None = UNSET,
    ) -> GuildSettings:
        """Change only the fields passed; None clears a field back to the default."""
        if isinstance(relay_format, str) and relay_format not in get_args(RelayFormat):
            raise ValueError(f"unknown relay format {relay_format!r}")
        columns = {
            name: value
            for name, value in (
                ("locale", locale),
                ("relay_format", relay_format),
                ("notify_channel_id", notify_channel_id),
            )
            if not isinstance(value, Unset)
        }
        async with self._db.pool.acquire() as conn:
            await pg_upsert_guild_settings(conn, guild_id, columns, self._db.clock.now())
        return await self.get(guild_id)
