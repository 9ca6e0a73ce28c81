"""The member-facing lookups: /jobs, /queue, /quota, and what Discord is told at sync."""

from __future__ import annotations

import asyncio

from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import FakeRelay

from .conftest import StartBot, final_message


async def reply_of(inter) -> str:
    await inter.wait_until(
        lambda i: i.original is not None and (i.original.content or i.original.embeds)
    )
    message = inter.original
    assert message.ephemeral
    return message.content + str(message.embeds)


async def test_jobs_list_and_show(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    await start_bot()
    await fake_discord.run_slash("video", {"prompt": "a snail race"})
    await final_message(fake_discord, 1)

    listing = await reply_of(await fake_discord.run_slash("jobs", {}, subcommand="list"))
    assert "#1" in listing and "a snail race" in listing
    shown = await reply_of(await fake_discord.run_slash("jobs", {"id": 1}, subcommand="show"))
    assert "a snail race" in shown and relay.url in shown
    missing = await reply_of(await fake_discord.run_slash("jobs", {"id": 99}, subcommand="show"))
    assert "#99" in missing and "not found" in missing.lower()
    choices = await fake_discord.autocomplete("jobs", {"id": ""}, focused="id", subcommand="show")
    assert [c["value"] for c in choices] == [1]


async def test_queue_shows_place_in_line(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    held = asyncio.Event()
    relay.fail_next("poll", status=None, wait=held, times=100)
    await start_bot(max_concurrent_jobs=1)
    await fake_discord.run_slash("video", {"prompt": "first"})
    second = await fake_discord.run_slash("video", {"prompt": "second"})
    await second.wait_until(lambda i: i.original is not None and bool(i.original.embeds))
    text = await reply_of(await fake_discord.run_slash("queue", {}))
    assert ("#2" in text and "#1 in line" in text) or "1 in line" in text
    held.set()
    await final_message(fake_discord, 2)


async def test_quota_shows_yours_and_the_servers(
    fake_discord: FakeDiscord, start_bot: StartBot
) -> None:
    await start_bot(quota_user_daily=7, quota_guild_monthly=90)
    await fake_discord.run_slash(
        "video", {"prompt": "a kite", "duration": 15, "model": "sora-2-pro"}
    )
    message = await final_message(fake_discord, 1)
    # sora-2-pro costs ×3 (issue 9, point 9): a 15 s pro video is 2 × 3 = 6 units.
    assert "15 s = 2 units × 3 (sora-2-pro) = 6 units" in str(message.embeds)
    text = await reply_of(await fake_discord.run_slash("quota", {}))
    assert "6 / 7" in text and "6 / 90" in text and "<t:" in text
    # Each model's prices, from the catalogue (issue 11): pro is three times sora-2.
    assert "Prices" in text and "Sora 2: 10 s: 1 · 15 s: 2 units" in text
    assert "Sora 2 Pro: 10 s: 3 · 15 s: 6 · 25 s: 12 units · HD ×2" in text
    shown = await reply_of(await fake_discord.run_slash("jobs", {"id": 1}, subcommand="show"))
    assert "15 s = 2 units × 3 (sora-2-pro) = 6 units" in shown


async def test_commands_reach_discord_with_chinese_descriptions(
    fake_discord: FakeDiscord, start_bot: StartBot
) -> None:
    await start_bot()
    video = fake_discord.find_command("video")
    assert video is not None and video["description_localizations"]["zh-CN"]
    quota_admin = fake_discord.find_command("quota-admin")
    assert quota_admin is not None and int(quota_admin["default_member_permissions"]) == 1 << 5
    assert "dm_permission" in quota_admin or "contexts" in quota_admin
