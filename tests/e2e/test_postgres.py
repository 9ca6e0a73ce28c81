"""The real bot on PostgreSQL (DATABASE_URL): a /video from command to delivered file,
and a restart mid-render, through the fake Discord and the fake relay."""

from __future__ import annotations

import asyncio
import base64
from collections import Counter

from pydantic import SecretStr

from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import FakeRelay
from bot.store.postgres import PgDatabase

from .conftest import StartBot, final_message, is_final, png_bytes, title


async def test_a_video_is_delivered_and_charged_once_on_postgresql(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot, pg_url: str
) -> None:
    bot = await start_bot(database_url=SecretStr(pg_url))
    assert isinstance(bot.db, PgDatabase)
    image = png_bytes(64)
    inter = await fake_discord.run_slash(
        "video",
        {"prompt": "a cat walks across a piano"},
        attachments={"image": ("ref.png", image, "image/png")},
    )
    message = await final_message(fake_discord)
    assert message is inter.original and title(message).startswith("✅")
    assert [a.filename for a in message.attachments] == ["sora-1.mp4"]
    assert relay.submits_for("a cat walks across a piano") == 1
    [submit] = relay.requests_to("task_submit")
    [sent] = submit.json["images"]
    assert base64.b64decode(sent.split(",")[-1]) == image  # stored as BYTEA, sent intact
    book = Counter(e.kind for e in await bot.db.quotas.ledger(fake_discord.guild.id))
    assert book == Counter(reserve=1, commit=1)
    job = await bot.db.jobs.get(1)
    assert job is not None and job.status == "succeeded" and job.delivered_at is not None
    assert await bot.db.quotas.audit() == []


async def test_a_restart_mid_job_still_delivers_once_and_charges_once_on_postgresql(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot, pg_url: str
) -> None:
    held = asyncio.Event()
    relay.fail_next("poll", status=None, wait=held, times=10_000)
    first = await start_bot(database_url=SecretStr(pg_url))
    inter = await fake_discord.run_slash("video", {"prompt": "a ship in a storm"})
    await inter.wait_until(lambda i: i.original is not None and title(i.original).startswith("🎬"))
    row = await first.db.jobs.get(1)
    assert row is not None and row.status == "running" and row.relay_id
    await first.close()

    held.set()
    second = await start_bot(database_url=SecretStr(pg_url))
    message = await final_message(fake_discord, 1)
    assert message is inter.original and title(message).startswith("✅")
    assert relay.submits_for("a ship in a storm") == 1
    assert len([m for m in fake_discord.messages.values() if is_final(m)]) == 1
    book = Counter(
        e.kind for e in await second.db.quotas.ledger(fake_discord.guild.id) if e.job_id == 1
    )
    assert book == Counter(reserve=1, commit=1)
