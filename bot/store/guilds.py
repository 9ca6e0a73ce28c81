"""Per-guild settings the bot needs besides quotas: locale, relay format, notifications.

Quota overrides live in the same `guild_settings` row but are managed by `QuotaRepo`.
Every field is None until an admin sets it, meaning "use the bot's default".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, get_args

from bot.relay.models import RelayFormat
from bot.store._util import UNSET, Unset
from bot.store.quotas import upsert_guild_settings

if TYPE_CHECKING:
    from bot.store.database import Database


@dataclass(frozen=True, slots=True)
class GuildSettings:
    guild_id: int
    locale: str | None = None
    relay_format: RelayFormat | None = None
    notify_channel_id: int | None = None


class GuildRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, guild_id: int) -> GuildSettings:
        row = await self._db.fetchone(
            "SELECT locale, relay_format, notify_channel_id FROM guild_settings WHERE guild_id = ?",
            (guild_id,),
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
        now = self._db.clock.now()
        await self._db.run_transaction(
            lambda conn: upsert_guild_settings(conn, guild_id, columns, now)
        )
        return await self.get(guild_id)
