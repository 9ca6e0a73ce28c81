"""Two `python -m bot` processes, shards 0 and 1 of 2, on one PostgreSQL: `kill -9` of the
one rendering a job hands the job to the other within the lease, delivered once and
charged once, and the job's buttons work in the guild of the survivor afterwards."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.fakes.discord import FakeDiscord, FakeInteraction, RecordedMessage
from bot.fakes.relay import FakeRelay
from bot.settings import Settings
from tests.e2e.conftest import final_message, title
from tests.faults.conftest import CHARGED_ONCE, deliveries

from .conftest import Launch, guilds, sync_commands

LEASE = 3.0  # seconds: the shortest JOB_LEASE_SECONDS allows, so the test is short

pytestmark = pytest.mark.skipif(
    not {"database_url", "job_lease_seconds"} <= set(Settings.model_fields),
    reason="needs the PostgreSQL backend (DATABASE_URL) and job leases (JOB_LEASE_SECONDS)",
)


def rendering(inter: FakeInteraction) -> bool:
    return inter.original is not None and title(inter.original).startswith("🎬")


async def owner(url: str, job_id: int) -> str:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return str(await conn.fetchval("SELECT lease_owner FROM jobs WHERE id = $1", job_id))
    finally:
        await conn.close()


async def ledger(url: str, job_id: int) -> Counter[str]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT kind FROM quota_ledger WHERE job_id = $1", job_id)
    finally:
        await conn.close()
    return Counter(row["kind"] for row in rows)


async def test_kill_9_mid_render_the_other_process_finishes_the_job_within_the_lease(
    discord2: FakeDiscord, relay: FakeRelay, launch: Launch, tmp_path: Path, pg_url: str
) -> None:
    a, b = guilds(discord2)
    shared: dict[str, Any] = {
        "database_url": pg_url,
        "job_lease_seconds": LEASE,
        "max_concurrent_jobs": 1,  # so guild B's job waits for shard 0's process to be free
        "progress_edit_interval": 0,
        "quota_guild_monthly": 1000,
        "quota_user_daily": 1000,
    }
    await sync_commands(launch, database_path=tmp_path / "sync.db")
    migrate = await launch("migrate", "migrate", database_url=pg_url)
    assert await migrate.wait(60) == 0, migrate.stderr
    first, second = [
        await launch(
            f"shard {n}",
            database_path=tmp_path / f"p{n}" / "unused.db",
            shard_ids=n,
            shard_count=2,
            process_name=f"bot-{n}",
            **shared,
        )
        for n in (0, 1)
    ]
    await asyncio.gather(first.ready(), second.ready())

    # Guild A's job runs in shard 0's process; guild B's, asked in shard 1's, waits for
    # the one free place, which shard 0's process takes as soon as its job ends.
    relay.script(prompt_contains="harbour", outcome="never")  # renders until finish()
    await discord2.run_slash("video", {"prompt": "a lighthouse at dawn"}, guild_id=a.id)
    await first.wait_for_line("job 1: queued")
    inter = await discord2.run_slash("video", {"prompt": "a harbour at dusk"}, guild_id=b.id)
    await second.wait_for_line("job 2: queued")
    await final_message(discord2, 1, timeout=30)
    await inter.wait_until(rendering, timeout=30)  # the relay has it; a process polls it
    assert relay.submits_for("a harbour at dusk") == 1
    assert (await owner(pg_url, 2)).startswith("bot-0:"), "shard 0's process runs it"
    assert second.count("job 2: resuming") == 0

    killed_at = time.monotonic()
    await first.kill()
    (relay_id,) = [key for key, job in relay.jobs.items() if "harbour" in job.prompt]
    relay.finish(relay_id)
    # The lease runs out, the survivor's next round (every second) takes the job over and
    # reads the relay: the bound is the lease and a little.
    bound = LEASE * 2 + 5
    message: RecordedMessage = await final_message(discord2, 2, timeout=bound)
    taken = time.monotonic() - killed_at
    await second.wait_for_line("job 2: resuming")
    assert message is inter.original and title(message).startswith("✅")
    assert message.attachments and deliveries(discord2, 2) == [message]
    assert relay.submits_for("a harbour at dusk") == 1
    assert await ledger(pg_url, 2) == CHARGED_ONCE
    assert taken < bound

    # The job's buttons, in guild B, reach shard 1's process: it reads the job from the
    # database it shares, although another process rendered it.
    details = await discord2.click_button(message, "job:details:2")
    await details.wait_until(lambda i: i.original is not None, timeout=10)
    assert details.original is not None and "#2" in str(details.original.embeds)
    assert await second.stop() in (0, 130), second.stderr
