"""Two `python -m bot` processes, shards 0 and 1 of 2, one per guild of the fake Discord.

Each process here keeps its own SQLite file: these tests are about the gateway split and
Discord's REST limits, not shared jobs (the kill test, on PostgreSQL, is about those).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

from bot.fakes.discord import FakeDiscord, RequestRecord
from bot.fakes.relay import FakeRelay
from bot.fakes.rest_proxy import RestProxy, bucket_of
from tests.e2e.conftest import final_message, title

from .conftest import Launch, guilds, sync_commands

FAST = {"progress_edit_interval": 0, "quota_guild_monthly": 1000, "quota_user_daily": 1000}


async def start_two(launch: Launch, tmp_path: Path, **settings: Any) -> tuple[Any, Any]:
    """Shard 0 through the command-line flags, shard 1 through the environment."""
    first = await launch(
        "shard 0",
        "run",
        "--shard-ids",
        "0",
        "--shard-count",
        "2",
        database_path=tmp_path / "a.db",
        **settings,
    )
    second = await launch(
        "shard 1", database_path=tmp_path / "b.db", shard_ids="1", shard_count=2, **settings
    )
    await asyncio.gather(first.ready(), second.ready())
    return first, second


async def test_each_process_runs_its_own_shard_and_the_interactions_of_its_guilds(
    discord2: FakeDiscord, relay: FakeRelay, launch: Launch, tmp_path: Path
) -> None:
    """Shard 0's process sees guild A only and answers its /video; shard 1's, guild B.
    Neither syncs the commands at start-up: that is `python -m bot sync`, run once."""
    a, b = guilds(discord2)
    assert (discord2.shard_of(a.id), discord2.shard_of(b.id)) == (0, 1)
    await sync_commands(launch, database_path=tmp_path / "sync.db")
    syncs = len(discord2.requests_matching("PUT", r"^/applications/\d+/commands$"))
    assert syncs == 1

    first, second = await start_two(launch, tmp_path, **FAST)
    assert "in 1 servers (shards 0 of 2)" in await first.ready()
    assert "in 1 servers (shards 1 of 2)" in await second.ready()
    identified = {
        r.shard_id
        for r in discord2.gateway_log
        if r.op == 0 and r.t == "READY" and r.shard_id is not None
    }
    assert identified == {0, 1}

    for guild in (a, b):
        inter = await discord2.run_slash(
            "video", {"prompt": f"a lighthouse in {guild.name}"}, guild_id=guild.id
        )
        await inter.wait_until(lambda i: i.original is not None, timeout=15)
    await first.wait_for_line(f"queued (guild {a.id},")
    await second.wait_for_line(f"queued (guild {b.id},")
    assert first.count(f"guild {b.id}") == 0 and second.count(f"guild {a.id}") == 0

    done = [await final_message(discord2, 1, timeout=20)]
    await discord2.wait_for_message(
        lambda m: m not in done and title(m).startswith("✅") and bool(m.attachments), 20
    )
    assert relay.submits_for("a lighthouse in A") == relay.submits_for("a lighthouse in B") == 1
    # Still one sync: a running process never publishes the commands.
    assert len(discord2.requests_matching("PUT", r"^/applications/\d+/commands$")) == 1


async def test_every_rest_call_of_both_processes_goes_through_the_shared_proxy(
    discord2: FakeDiscord, relay: FakeRelay, launch: Launch, tmp_path: Path
) -> None:
    """DISCORD_API_BASE is honoured for everything: bot-token routes, the interaction
    callback, follow-ups and edits through the interaction's webhook, uploads."""
    a, b = guilds(discord2)
    async with RestProxy(discord2.url) as proxy:
        through = {"discord_api_base": proxy.api_base, **FAST}
        await sync_commands(launch, database_path=tmp_path / "sync.db", **through)
        await start_two(launch, tmp_path, **through)
        for guild in (a, b):
            await discord2.run_slash(
                "video", {"prompt": f"a harbour in {guild.name}"}, guild_id=guild.id
            )
        finals = [await final_message(discord2, 1, timeout=20)]
        second = await discord2.wait_for_message(
            lambda m: m not in finals and title(m).startswith("✅") and bool(m.attachments), 20
        )
        finals.append(second)

        seen_by_discord = Counter(bucket_of(r.method, r.path) for r in discord2.requests)
        assert seen_by_discord == proxy.by_bucket  # nothing went around the proxy
        buckets = set(proxy.by_bucket)
        callbacks = {
            k for k in buckets if k.startswith("POST /interactions/") and k.endswith("/callback")
        }
        assert len(callbacks) == 2  # one per interaction token, from each process
        assert any(k.startswith(("PATCH /webhooks/", "POST /webhooks/")) for k in buckets)
        assert "GET /users/@me" in buckets  # each process's login
        assert proxy.by_bucket["GET /users/@me"] >= 3  # sync + two processes
        uploads = [r for r in discord2.requests if r.files]
        assert uploads and all(r.status < 300 for r in uploads)


def _progress_edit(record: RequestRecord) -> bool:
    """An edit that shows a render's progress (not its queue place, nor its end)."""
    if record.method != "PATCH" or "/messages/" not in record.path:
        return False
    body = record.body if isinstance(record.body, dict) else {}
    embeds = body.get("embeds") or []
    return bool(embeds) and str(embeds[0].get("title", "")).startswith("🎬")


async def test_two_processes_together_keep_within_one_edit_budget(
    discord2: FakeDiscord, relay: FakeRelay, launch: Launch, tmp_path: Path
) -> None:
    """PROGRESS_EDITS_PER_SECOND is the bot token's budget: each of two processes, with
    one shard of two, edits at half of it, so together they never exceed it, although
    their jobs (six each, a new percent twice a second) want many more edits."""
    budget = 4.0
    relay.behaviour.render_polls = 14
    relay.behaviour.retry_after_hint = 0.05  # polls as fast as the bot allows (0.5 s)
    a, b = guilds(discord2)
    await sync_commands(launch, database_path=tmp_path / "sync.db")
    await start_two(
        launch,
        tmp_path,
        progress_edits_per_second=budget,
        progress_edit_interval=0.1,
        relay_polls_per_second=100,
        max_concurrent_jobs=6,
        quota_guild_monthly=1000,
        quota_user_daily=1000,
    )
    for n in range(6):
        for guild in (a, b):
            await discord2.run_slash(
                "video", {"prompt": f"wave {n} in {guild.name}"}, guild_id=guild.id
            )

    def finished() -> int:
        return sum(
            1 for m in discord2.messages.values() if title(m).startswith("✅") and m.attachments
        )

    await discord2.changes.wait_for(lambda: finished() >= 12, 60)
    edits = sorted(r.at for r in discord2.requests if _progress_edit(r))
    window = 3.0
    most = max(sum(1 for t in edits if start <= t < start + window) for start in edits)
    # Each process's calendar has one slot every 1 / (budget / 2) s: in any window of
    # `window` seconds, at most budget/2 * window + 1 slots each.
    allowed = budget * window + 2
    assert len(edits) > allowed, "the jobs did not ask for enough edits to test the budget"
    assert most <= allowed, (most, allowed)
