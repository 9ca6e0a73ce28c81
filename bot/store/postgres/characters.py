"""Character aliases on PostgreSQL (see `bot.store.characters`)."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

import asyncpg

from bot.store.characters import AliasError, CharacterAlias, normalize_alias, rewrite_with
from bot.store.postgres.database import rowcount, text

if TYPE_CHECKING:
    from bot.store.postgres.database import PgDatabase, Record


class PgCharacterRepo:
    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    async def add(
        self,
        guild_id: int,
        alias: str,
        *,
        character_id: str,
        username: str,
        permalink: str | None,
        picture_url: str | None,
        created_by: int,
    ) -> CharacterAlias:
        """Raises `AliasError` (`alias_invalid`, `alias_taken`)."""
        name = normalize_alias(alias)
        username = username.strip().removeprefix("@")
        if not username or not character_id:
            raise ValueError("a character needs an id and a username")
        created = CharacterAlias(
            guild_id, name, character_id, username, permalink, picture_url, created_by,
            self._db.clock.now(),
        )  # fmt: skip
        try:
            await self._db.pool.execute(
                "INSERT INTO character_aliases (guild_id, alias, character_id, username,"
                " permalink, picture_url, created_by, created_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                guild_id, name, text(character_id), text(username), text(permalink),
                text(picture_url), created_by, created.created_at,
            )  # fmt: skip
        except asyncpg.UniqueViolationError:
            raise AliasError(
                "alias_taken",
                f"@{name} is already taken on this server; pick another alias or delete it first.",
            ) from None
        return created

    async def get(self, guild_id: int, alias: str) -> CharacterAlias | None:
        name = alias.strip().removeprefix("@").lower()
        row = await self._db.pool.fetchrow(
            "SELECT * FROM character_aliases WHERE guild_id = $1 AND alias = $2", guild_id, name
        )
        return None if row is None else _alias(row)

    async def list(self, guild_id: int) -> list[CharacterAlias]:
        rows = await self._db.pool.fetch(
            'SELECT * FROM character_aliases WHERE guild_id = $1 ORDER BY alias COLLATE "C"',
            guild_id,
        )
        return [_alias(row) for row in rows]

    async def delete(self, guild_id: int, alias: str) -> bool:
        name = alias.strip().removeprefix("@").lower()
        status = await self._db.pool.execute(
            "DELETE FROM character_aliases WHERE guild_id = $1 AND alias = $2", guild_id, name
        )
        return rowcount(status) > 0

    async def search(
        self, guild_id: int, prefix: str, limit: int = 25
    ) -> builtins.list[CharacterAlias]:
        """Aliases starting with `prefix`, alphabetical; Discord shows at most 25 choices."""
        escaped = prefix.strip().removeprefix("@").lower()
        escaped = escaped.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = await self._db.pool.fetch(
            "SELECT * FROM character_aliases WHERE guild_id = $1 AND alias LIKE $2 ESCAPE '\\'"
            " ORDER BY alias COLLATE \"C\" LIMIT $3",
            guild_id, escaped + "%", max(0, min(limit, 25)),
        )  # fmt: skip
        return [_alias(row) for row in rows]

    async def rewrite_prompt(self, guild_id: int | None, prompt: str) -> str:
        """Replace every `@alias` with ` @username ` (see `CharacterRepo.rewrite_prompt`)."""
        return await rewrite_with(prompt, guild_id, self._usernames)

    async def _usernames(self, guild_id: int, names: builtins.list[str]) -> dict[str, str]:
        rows = await self._db.pool.fetch(
            "SELECT alias, username FROM character_aliases"
            " WHERE guild_id = $1 AND alias = ANY($2::text[])",
            guild_id, names,
        )  # fmt: skip
        return {row["alias"]: row["username"] for row in rows}


def _alias(row: Record) -> CharacterAlias:
    return CharacterAlias(
        guild_id=row["guild_id"],
        alias=row["alias"],
        character_id=row["character_id"],
        username=row["username"],
        permalink=row["permalink"],
        picture_url=row["picture_url"],
        created_by=row["created_by"],
        created_at=row["created_at"],
    )
