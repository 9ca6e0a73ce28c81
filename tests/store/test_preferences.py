"""Member and server defaults and allowed models, on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

from bot.clock import FakeClock
from bot.store import Database, Defaults


async def test_a_member_sets_reads_changes_and_resets_their_defaults(db: Database) -> None:
    assert await db.preferences.member(1, 10) == Defaults()
    saved = await db.preferences.set_member(1, 10, model="sora-2-pro", duration=15)
    assert saved == Defaults(model="sora-2-pro", duration=15)
    # Only the fields passed change; None clears one.
    saved = await db.preferences.set_member(1, 10, hd=True, private=False, duration=None)
    assert saved == Defaults(model="sora-2-pro", hd=True, private=False)
    saved = await db.preferences.set_member(1, 10, orientation="landscape")
    assert saved.orientation == "landscape" and saved.model == "sora-2-pro"
    await db.preferences.reset_member(1, 10)
    assert await db.preferences.member(1, 10) == Defaults()
    assert (await db.preferences.member(1, 10)).is_empty


async def test_a_members_defaults_belong_to_one_server_and_one_member(db: Database) -> None:
    await db.preferences.set_member(1, 10, model="sora-2-pro", duration=15)
    assert await db.preferences.member(2, 10) == Defaults()  # same member, server B
    assert await db.preferences.member(1, 11) == Defaults()  # another member, server A
    prefs = await db.preferences.get(2, 10)
    assert prefs.member == Defaults() and prefs.server == Defaults()
    await db.preferences.reset_member(2, 10)  # a reset in B leaves A alone
    assert (await db.preferences.member(1, 10)).model == "sora-2-pro"


async def test_server_defaults_and_allowed_models(db: Database) -> None:
    assert await db.preferences.allowed_models(1) is None  # nothing stored: every model
    await db.preferences.set_server(1, model="sora-2", orientation="landscape", private=True)
    allowed = await db.preferences.set_allowed_models(1, ["sora-2", "veo3-fast", "sora-2"])
    assert allowed == frozenset({"sora-2", "veo3-fast"})
    await db.preferences.set_member(1, 10, duration=15)

    prefs = await db.preferences.get(1, 10)
    assert prefs.member == Defaults(duration=15)
    assert prefs.server == Defaults(model="sora-2", orientation="landscape", private=True)
    assert prefs.allowed_models == frozenset({"sora-2", "veo3-fast"})
    other = await db.preferences.get(2, 10)
    assert other.server == Defaults() and other.allowed_models is None

    # Resetting the defaults keeps the restriction; an empty list lifts it.
    await db.preferences.reset_server(1)
    assert await db.preferences.server(1) == Defaults()
    assert await db.preferences.allowed_models(1) == frozenset({"sora-2", "veo3-fast"})
    assert await db.preferences.set_allowed_models(1, []) is None
    assert await db.preferences.allowed_models(1) is None


async def test_defaults_survive_a_restart(db_path: Path, clock: FakeClock) -> None:
    async with await Database.open(db_path, clock=clock) as first:
        await first.preferences.set_member(1, 10, model="sora-2-pro", hd=False)
        await first.preferences.set_server(1, duration=15)
        await first.preferences.set_allowed_models(1, ["sora-2-pro"])
    async with await Database.open(db_path, clock=clock) as second:
        prefs = await second.preferences.get(1, 10)
    assert prefs.member == Defaults(model="sora-2-pro", hd=False)
    assert prefs.member.hd is False  # a stored "off" is not "not set"
    assert prefs.server == Defaults(duration=15)
    assert prefs.allowed_models == frozenset({"sora-2-pro"})


async def test_the_servers_with_any_settings_are_listed(db: Database) -> None:
    assert await db.preferences.guilds_with_settings() == set()
    await db.preferences.set_member(1, 10, model="sora-2")
    await db.preferences.set_server(2, hd=True)
    await db.preferences.set_allowed_models(3, ["sora-2"])
    assert await db.preferences.guilds_with_settings() == {1, 2, 3}
