"""Guild-scoped aliases for relay characters (cameos), and prompt rewriting.

Members write `@alias` in prompts; the relay wants ` @username ` with a space on both
sides. Aliases are 2–32 letters, digits, `_` or `-`, unique per guild ignoring case
(stored lower-case). A mention that contains a dot (`@cookiejar.dancer`) is already a
relay username and passes through untouched; aliases cannot contain dots, so the two
never collide. Email addresses and links (`bob@example.com`, `site.com/@bob`) are left
alone because an alias must follow the start of the prompt, whitespace or opening/
separating punctuation.
"""

from __future__ import annotations

import builtins
import re
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import aiosqlite

from bot.store._util import from_db, to_db

if TYPE_CHECKING:
    from bot.store.database import Database

ALIAS_RE = re.compile(r"\A[\w-]{2,32}\Z")
"""Letters, digits, `_` and `-`, 2–32 characters (no dots: dotted names are usernames)."""

# `@name` where name may hold inner dots; the character before `@` must be the start,
# whitespace or one of these, so emails and URL paths never match.
_MENTION = re.compile(r"""(?<![^\s(\[{<"'“‘«,;:!?*~|])@([\w-]+(?:\.[\w-]+)*)(?![\w@-])""")


class AliasError(ValueError):
    """An alias could not be used. `message` is one sentence for the user."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class UnknownAliasError(AliasError):
    """The prompt names characters this guild has no alias for."""

    def __init__(self, aliases: list[str]) -> None:
        self.aliases = aliases
        names = ", ".join(f"@{name}" for name in aliases)
        noun = "character" if len(aliases) == 1 else "characters"
        super().__init__("alias_unknown", f"Unknown {noun} {names}; see /character list.")


@dataclass(frozen=True, slots=True)
class CharacterAlias:
    guild_id: int
    alias: str
    character_id: str
    username: str
    permalink: str | None
    picture_url: str | None
    created_by: int
    created_at: datetime


def normalize_alias(alias: str) -> str:
    """`@Bob` → `bob`; raises `AliasError` when the name breaks the alias rules."""
    name = alias.strip().removeprefix("@").lower()
    if not ALIAS_RE.match(name):
        raise AliasError(
            "alias_invalid",
            "A character alias is 2 to 32 letters, digits, _ or -, with no spaces or dots.",
        )
    return name


class CharacterRepo:
    def __init__(self, db: Database) -> None:
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
            await self._db.execute(
                "INSERT INTO character_aliases (guild_id, alias, character_id, username,"
                " permalink, picture_url, created_by, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    guild_id, name, character_id, username, permalink, picture_url,
                    created_by, to_db(created.created_at),
                ),
            )  # fmt: skip
        except sqlite3.IntegrityError:
            raise AliasError(
                "alias_taken",
                f"@{name} is already taken on this server; pick another alias or delete it first.",
            ) from None
        return created

    async def get(self, guild_id: int, alias: str) -> CharacterAlias | None:
        name = alias.strip().removeprefix("@").lower()
        row = await self._db.fetchone(
            "SELECT * FROM character_aliases WHERE guild_id = ? AND alias = ?", (guild_id, name)
        )
        return None if row is None else _alias(row)

    async def list(self, guild_id: int) -> list[CharacterAlias]:
        rows = await self._db.fetchall(
            "SELECT * FROM character_aliases WHERE guild_id = ? ORDER BY alias", (guild_id,)
        )
        return [_alias(row) for row in rows]

    async def delete(self, guild_id: int, alias: str) -> bool:
        name = alias.strip().removeprefix("@").lower()
        changed = await self._db.execute(
            "DELETE FROM character_aliases WHERE guild_id = ? AND alias = ?", (guild_id, name)
        )
        return changed > 0

    async def search(
        self, guild_id: int, prefix: str, limit: int = 25
    ) -> builtins.list[CharacterAlias]:
        """Aliases starting with `prefix`, alphabetical; Discord shows at most 25 choices."""
        escaped = prefix.strip().removeprefix("@").lower()
        escaped = escaped.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = await self._db.fetchall(
            "SELECT * FROM character_aliases WHERE guild_id = ? AND alias LIKE ? ESCAPE '\\'"
            " ORDER BY alias LIMIT ?",
            (guild_id, escaped + "%", max(0, min(limit, 25))),
        )
        return [_alias(row) for row in rows]

    async def rewrite_prompt(self, guild_id: int | None, prompt: str) -> str:
        """Replace every `@alias` with ` @username `; `UnknownAliasError` names all misses.

        Only spaces the rewrite would double are dropped; the rest of the prompt is
        kept as written. Direct messages (`guild_id` None) have no aliases.
        """
        return await rewrite_with(prompt, guild_id, self._usernames)

    async def _usernames(self, guild_id: int, names: builtins.list[str]) -> dict[str, str]:
        rows = await self._db.fetchall(
            "SELECT alias, username FROM character_aliases WHERE guild_id = ?"
            f" AND alias IN ({', '.join('?' * len(names))})",
            (guild_id, *names),
        )
        return {row["alias"]: row["username"] for row in rows}


async def rewrite_with(
    prompt: str,
    guild_id: int | None,
    usernames: Callable[[int, list[str]], Awaitable[dict[str, str]]],
) -> str:
    """`CharacterRepo.rewrite_prompt` for either backend: `usernames(guild, aliases)`
    reads the relay usernames of the aliases that exist."""
    wanted = {m[1].lower() for m in _MENTION.finditer(prompt) if "." not in m[1]}
    if not wanted:
        return prompt
    known: dict[str, str] = {}
    if guild_id is not None:
        known = await usernames(guild_id, sorted(wanted))
    missing: list[str] = []
    for match in _MENTION.finditer(prompt):
        name = match[1]
        if "." not in name and name.lower() not in known and name not in missing:
            missing.append(name)
    if missing:
        raise UnknownAliasError(missing)
    return _substitute(prompt, known)


def _substitute(prompt: str, known: dict[str, str]) -> str:
    out: list[str] = []
    last = 0
    for match in _MENTION.finditer(prompt):
        name = match[1]
        if "." in name:
            continue
        out.append(prompt[last : match.start()])
        before = prompt[match.start() - 1] if match.start() > 0 else ""
        after = prompt[match.end()] if match.end() < len(prompt) else ""
        lead = "" if before.isspace() else " "
        trail = "" if after.isspace() else " "
        out.append(f"{lead}@{known[name.lower()]}{trail}")
        last = match.end()
    out.append(prompt[last:])
    return "".join(out)


def _alias(row: aiosqlite.Row) -> CharacterAlias:
    return CharacterAlias(
        guild_id=row["guild_id"],
        alias=row["alias"],
        character_id=row["character_id"],
        username=row["username"],
        permalink=row["permalink"],
        picture_url=row["picture_url"],
        created_by=row["created_by"],
        created_at=from_db(row["created_at"]),
    )
