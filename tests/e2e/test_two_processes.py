"""Two bots in this test process on one database, shards 0 and 1 of 2, one guild each:
what one process asked, the other may render, and budgets meant for the whole bot token
are shared between them once (not once per reason)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.fakes.discord import FakeDiscord

from .conftest import StartBot

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
