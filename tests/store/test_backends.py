"""Where SQLite and PostgreSQL could disagree: 64-bit ids, time zones, odd text, bytes."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta, timezone

from bot.clock import FakeClock
from bot.relay.models import ImageInput, VideoRequest
from bot.store import Database, NewJob

from .conftest import new_job

BIG = 2**63 - 1  # the largest id a signed 64-bit column holds; snowflakes stay below it
SNOWFLAKE = 1_311_768_467_294_899_695


async def test_discord_ids_keep_all_64_bits(db: Database) -> None:
    new = NewJob(
        guild_id=BIG, channel_id=SNOWFLAKE, user_id=BIG - 1,
        request=VideoRequest.build(prompt="big"), format="task",
    )  # fmt: skip
    job = await db.jobs.create(new, cost=1, roles=(SNOWFLAKE,))
    await db.jobs.set_message(job.id, channel_id=BIG - 2, message_id=BIG - 3)
    got = await db.jobs.get(job.id)
    assert got is not None
    assert (got.guild_id, got.user_id, got.channel_id, got.message_id) == (
        BIG, BIG - 1, BIG - 2, BIG - 3,
    )  # fmt: skip
    assert [j.id for j in await db.jobs.recent_for_user(BIG, BIG - 1)] == [job.id]

    await db.quotas.set_role_rule(BIG, SNOWFLAKE, multiplier=2.0)
    await db.quotas.grant(BIG, 5, user_id=BIG - 1, actor=BIG)
    status = await db.quotas.status(BIG, BIG - 1, roles=(SNOWFLAKE,))
    assert (status.user_used, status.user_limit) == (1, 10 * 2 + 5)
    [grant, reserve] = await db.quotas.ledger(BIG)
    assert (grant.actor, grant.user_id, reserve.guild_id) == (BIG, BIG - 1, BIG)
    assert [(r.guild_id, r.role_id) for r in await db.quotas.role_rules(BIG)] == [(BIG, SNOWFLAKE)]

    await db.guilds.set(BIG, notify_channel_id=BIG - 4)
    assert (await db.guilds.get(BIG)).notify_channel_id == BIG - 4
    alias = await db.characters.add(
        BIG, "kitty", character_id="ch_1", username="cat.one", permalink=None,
        picture_url=None, created_by=BIG - 5,
    )  # fmt: skip
    assert await db.characters.get(BIG, "kitty") == alias
    assert alias.created_by == BIG - 5
    assert await db.quotas.audit() == []


async def test_a_clock_in_another_zone_stores_the_same_instant_in_utc(
    db: Database, clock: FakeClock
) -> None:
    # 03:30 on the 16th in UTC+8 is 19:30 on the 15th in UTC: the day and the month the
    # quota counts in are UTC's, and timestamps come back as the same instant in UTC.
    local = datetime(2026, 3, 16, 3, 30, 0, 123456, tzinfo=timezone(timedelta(hours=8)))
    clock.set(local)
    job = await db.jobs.create(new_job(), cost=2)
    again = await db.jobs.get(job.id)
    assert again is not None and again == job
    assert again.created_at == local and again.created_at.utcoffset() == timedelta(0)
    assert again.created_at == datetime(2026, 3, 15, 19, 30, 0, 123456, tzinfo=UTC)
    [entry] = await db.quotas.ledger(1)
    assert (entry.day, entry.month, entry.created_at) == ("2026-03-15", "2026-03", local)
    clock.advance(1.5)
    assert await db.jobs.mark_running(job.id, "task_1")
    clock.advance(60)
    await db.jobs.finish(job.id, "succeeded", result_url="https://x/v.mp4")
    done = await db.jobs.get(job.id)
    assert done is not None and done.started_at is not None and done.finished_at is not None
    assert (done.finished_at - done.started_at).total_seconds() == 60
    assert await db.jobs.render_seconds("default", model="sora-2", duration=10, hd=False) == [60.0]
    # At 00:30 UTC+8 on the 1st it is still the previous month in UTC.
    clock.set(datetime(2026, 4, 1, 0, 30, tzinfo=timezone(timedelta(hours=8))))
    status = await db.quotas.status(1, 10)
    assert status.guild_used == 2
    assert status.guild_resets_at == datetime(2026, 4, 1, tzinfo=UTC)


async def test_any_text_a_member_can_type_round_trips(db: Database) -> None:
    prompt = "猫が ピアノを 弾く 🎹 'quote' \"dq\" \\ %_ ; DROP TABLE jobs; --"
    job = await db.jobs.create(new_job(prompt=prompt + " \u0000 nul"), cost=1)
    got = await db.jobs.get(job.id)
    assert got is not None and got.request.prompt == prompt + " \u0000 nul"
    [summary] = await db.jobs.summaries_for_user(1, 10)
    # PostgreSQL's JSON operators refuse \u0000, so its store reads the prompt in Python;
    # SQLite's autocomplete shows it up to the NUL.
    assert summary.prompt.startswith(prompt)
    await db.jobs.finish(job.id, "failed", error_message="上游负载已饱和 \u0000", refund=True)
    done = await db.jobs.get(job.id)
    assert done is not None
    # PostgreSQL's TEXT cannot hold NUL: it keeps U+FFFD in its place.
    assert done.error_message == "上游负载已饱和 " + (
        "\u0000" if db.backend == "sqlite" else "\ufffd"
    )
    assert await db.jobs.render_seconds("default", model="sora-2", duration=10, hd=False) == []


async def test_image_bytes_of_every_value_round_trip(db: Database) -> None:
    data = bytes(range(256)) * 64 + os.urandom(4096) + b"\x00" * 100
    new = NewJob(
        guild_id=1, channel_id=2, user_id=10, format="task",
        request=VideoRequest.build(
            prompt="bytes", images=(ImageInput(data=data, content_type="image/png"),)
        ),
    )  # fmt: skip
    job = await db.jobs.create(new, cost=1)
    loaded = await db.images.load(job.request)
    assert loaded.images[0].data == data


async def test_concurrent_finishes_settle_each_job_once(db: Database) -> None:
    jobs = [await db.jobs.create(new_job(user_id=10 + n), cost=2) for n in range(20)]
    results = await asyncio.gather(
        *(db.jobs.finish(j.id, "failed", refund=True) for j in jobs for _ in range(3))
    )
    assert sum(results) == 20
    assert (await db.quotas.status(1, 10)).guild_used == 0
    assert await db.quotas.audit() == []
