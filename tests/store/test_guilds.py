"""Guild settings: defaults, partial updates, clearing."""

from __future__ import annotations

import pytest

from bot.store import Database, GuildSettings


async def test_defaults_and_partial_updates(db: Database) -> None:
    assert await db.guilds.get(1) == GuildSettings(1)
    got = await db.guilds.set(1, locale="de", relay_format="chat")
    assert got == GuildSettings(1, "de", "chat", None)
    got = await db.guilds.set(1, notify_channel_id=77)
    assert got == GuildSettings(1, "de", "chat", 77)
    got = await db.guilds.set(1, locale=None)
    assert got == GuildSettings(1, None, "chat", 77)
    assert await db.guilds.get(2) == GuildSettings(2)
    with pytest.raises(ValueError):
        await db.guilds.set(1, relay_format="smoke")  # type: ignore[arg-type]


async def test_guild_settings_and_quota_limits_share_a_row(db: Database) -> None:
    await db.guilds.set(1, locale="ja")
    await db.quotas.set_limits(1, monthly=7)
    assert (await db.guilds.get(1)).locale == "ja"
    assert (await db.quotas.limits(1)).monthly == 7
    await db.guilds.set(1, locale="ko")
    assert (await db.quotas.limits(1)).monthly == 7
