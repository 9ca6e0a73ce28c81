"""Two bots in this test process on one database, shards 0 and 1 of 2, one guild each:
what one process asked, the other may render, and budgets meant for the whole bot token
are shared between them once (not once per reason)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.clock import ScaledClock
from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import FakeRelay

from .conftest import StartBot, final_message, is_final, title

pytestmark = pytest.mark.parametrize(
    "fake_discord_options",
    [{"edit_rate_limit": (50, 1.0), "shards": 2, "default_guild": False}],
)


def shard(n: int, **settings: Any) -> dict[str, Any]:
    return {"shard_ids": (n,), "shard_count": 2, **settings}


async def test_two_processes_of_two_shards_each_keep_half_the_edit_budget(
    fake_discord: FakeDiscord, start_bot: StartBot
) -> None:
    """Each process has one shard of two and sees two live processes: half each, not a
    quarter (the shard share and the process count are the same division)."""
    fake_discord.add_guild("A", shard=0)
    fake_discord.add_guild("B", shard=1)
    first = await start_bot(**shard(0, progress_edits_per_second=4.0))
    second = await start_bot(**shard(1, progress_edits_per_second=4.0))
    await first.engine.tick()
    assert (first.engine.processes, second.engine.processes) == (2, 2)
    assert first.live.edit_rate == second.live.edit_rate == 2.0
    # Alone, a process with half the shards still keeps to half: the other may not have
    # registered yet, or may keep its own database.
    await second.engine.stop()
    first.clock.advance(first.engine.lease_seconds * 3)  # type: ignore[attr-defined]
    await first.engine.tick()
    assert first.engine.processes == 1 and first.live.edit_rate == 2.0


@pytest.mark.parametrize("interval", [0, 5])
async def test_a_job_asked_in_one_process_and_rendered_by_the_other_is_shown_and_delivered_once(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot, interval: float
) -> None:
    """Guild A's process can't start another job (its cap is full); guild B's can and
    claims A's job. The member's message, posted by A, keeps moving and shows the video
    once, uploaded once: the process that renders it writes it (the message ids are in
    the job's row, edits are REST calls), and A's writer leaves it alone. With a progress
    interval, A's writer ticks too (5 s of bot time = 0.1 s real)."""
    a = fake_discord.add_guild("A", shard=0)
    b = fake_discord.add_guild("B", shard=1)
    held = asyncio.Event()
    relay.fail_next("poll", status=None, wait=held, times=10_000)
    clock = ScaledClock(50.0)
    common = {"progress_edit_interval": interval, "job_lease_seconds": 3000}
    first = await start_bot(clock=clock, **shard(0, max_concurrent_jobs=1, **common))
    second = await start_bot(clock=clock, **shard(1, max_concurrent_jobs=2, **common))

    busy = await fake_discord.run_slash("video", {"prompt": "in B first"}, guild_id=b.id)
    await busy.wait_until(lambda i: i.original is not None and title(i.original).startswith("🎬"))
    asked = await fake_discord.run_slash("video", {"prompt": "asked in A"}, guild_id=a.id)
    # B claims it (its cap has room) and renders it; A's message says so.
    await asked.wait_until(
        lambda i: i.original is not None and title(i.original).startswith("🎬"), timeout=15
    )
    row = await first.db.jobs.get(2)
    assert row is not None and row.guild_id == a.id
    assert row.lease_owner == second.engine.owner
    if interval:  # A's writer has ticked since (25 s of bot time): it left B's job
        await asyncio.sleep(0.5)
        assert 2 not in first.live._writers
    held.set()

    message = await final_message(fake_discord, 2)
    assert message is asked.original and title(message).startswith("✅") and message.attachments
    await final_message(fake_discord, 1)
    await first.engine.wait_idle()
    await second.engine.wait_idle()
    if interval:
        await asyncio.sleep(0.5)  # a second delivery, if A's writer made one, is seen by now
    finals = [m for m in fake_discord.messages.values() if is_final(m)]
    assert len(finals) == 2  # one per job: nobody delivered job 2 twice
    assert relay.submits_for("asked in A") == 1
    uploads = [
        r
        for r in fake_discord.requests
        if r.files and any(name == "sora-2.mp4" for name, _ in r.files)
    ]
    assert len(uploads) == 1, uploads
    row = await second.db.jobs.get(2)
    assert row is not None and row.delivered_at is not None


async def test_a_waiting_jobs_place_is_the_same_in_both_processes_messages(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """Two jobs of guild A wait (one job per server at a time); B starts the first of them
    when a running one is cancelled, and tells the second it is now first. A's writer of
    that second job keeps its message moving too: it must say first as well, not the
    second place A's last announcement gave it."""
    a = fake_discord.add_guild("A", shard=0)
    b = fake_discord.add_guild("B", shard=1)
    held = asyncio.Event()
    relay.fail_next("poll", status=None, wait=held, times=10_000)
    clock = ScaledClock(50.0)
    common = {
        "progress_edit_interval": 5,
        "job_lease_seconds": 3000,
        "max_concurrent_jobs_per_guild": 1,
    }
    first = await start_bot(clock=clock, **shard(0, max_concurrent_jobs=1, **common))
    second = await start_bot(clock=clock, **shard(1, max_concurrent_jobs=3, **common))

    in_b = await fake_discord.run_slash("video", {"prompt": "runs in B"}, guild_id=b.id)
    await in_b.wait_until(lambda i: i.original is not None and title(i.original).startswith("🎬"))
    running = await fake_discord.run_slash("video", {"prompt": "A's first"}, guild_id=a.id)
    await running.wait_until(
        lambda i: i.original is not None and title(i.original).startswith("🎬"), timeout=15
    )  # B took it: A's process is at its cap
    waiting = [
        await fake_discord.run_slash("video", {"prompt": f"A's {n}"}, guild_id=a.id)
        for n in ("second", "third")
    ]
    await waiting[1].wait_until(
        lambda i: i.original is not None and "#2 in line" in title(i.original), timeout=15
    )
    third = waiting[1].original
    assert third is not None
    third_job = 4
    await second.engine.cancel(2, guild_id=a.id, user_id=0, is_admin=True)
    await waiting[1].wait_until(lambda i: "#1 in line" in title(i.original), timeout=15)
    await first.engine.tick()  # A reads the line again (it does every second by itself)
    assert first.engine.queue_position(third_job) == 1
    seen = len(fake_discord.requests)
    await asyncio.sleep(0.5)  # 25 s of bot time: both writers tick several times

    shown = [
        str(embeds[0].get("title", ""))
        for r in fake_discord.requests[seen:]
        if r.method == "PATCH"
        and r.path.endswith(f"/messages/{third.id}")
        and isinstance(r.body, dict)
        and (embeds := r.body.get("embeds"))
    ]
    assert shown, "no writer kept the waiting job's message moving"
    assert all("#1 in line" in text for text in shown), shown
    held.set()
