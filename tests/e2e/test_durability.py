"""Restarts, expiring interaction tokens and Discord's rate limits."""

from __future__ import annotations

import asyncio
from collections import Counter

from bot.clock import ScaledClock
from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import FakeRelay

from .conftest import StartBot, final_message, is_final, title


async def test_a_restart_mid_job_still_delivers_once_and_charges_once(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    held = asyncio.Event()
    relay.fail_next("poll", status=None, wait=held, times=10_000)
    first = await start_bot()
    inter = await fake_discord.run_slash("video", {"prompt": "a ship in a storm"})
    # The relay accepted it and the bot recorded the relay id: the message says "rendering".
    await inter.wait_until(lambda i: i.original is not None and title(i.original).startswith("🎬"))
    row = await first.db.jobs.get(1)
    assert row is not None and row.status == "running" and row.relay_id
    await first.close()  # the process is gone; the relay keeps rendering

    held.set()
    second = await start_bot()
    message = await final_message(fake_discord, 1)
    assert message is inter.original and title(message).startswith("✅")
    assert message.attachments and relay.submits_for("a ship in a storm") == 1
    finals = [m for m in fake_discord.messages.values() if is_final(m)]
    assert len(finals) == 1
    book = Counter(
        e.kind for e in await second.db.quotas.ledger(fake_discord.guild.id) if e.job_id == 1
    )
    assert book == Counter(reserve=1, commit=1)
    assert (await second.db.jobs.get(1)).delivered_at is not None  # type: ignore[union-attr]


async def test_a_job_outliving_the_interaction_token_moves_to_a_channel_message(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    relay.behaviour.render_polls = 20  # several (fake) minutes
    await start_bot(interaction_token_ttl=60)
    inter = await fake_discord.run_slash("video", {"prompt": "an hour-long sunset"})
    message = await final_message(fake_discord)
    assert message is not inter.original and message.interaction_id is None  # a bot-owned message
    assert message.attachments and title(message).startswith("✅")
    assert "continues in a new message below" in inter.original.content


async def test_a_token_that_expires_early_falls_back_to_the_channel(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    held = asyncio.Event()
    relay.fail_next("poll", status=None, wait=held)
    await start_bot()
    inter = await fake_discord.run_slash("video", {"prompt": "a glacier"})
    await inter.wait_until(lambda i: i.original is not None and bool(i.original.embeds))
    fake_discord.clock.advance(16 * 60)  # Discord now answers 401 / 50027 to the token
    held.set()
    message = await final_message(fake_discord)
    assert message is not inter.original and message.attachments
    assert any(r.code == 50027 for r in fake_discord.requests)


async def test_a_429_on_an_edit_is_waited_out(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    fake_discord.fail_next(
        "PATCH", r"^/webhooks/\d+/[^/]+/messages/\d+", status=429, retry_after=0.3, times=2
    )
    await start_bot()
    await fake_discord.run_slash("video", {"prompt": "a hummingbird"})
    message = await final_message(fake_discord)
    assert title(message).startswith("✅") and message.attachments
    assert fake_discord.rate_limited_count == 2


async def test_progress_edits_respect_discords_edit_bucket(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """Real buckets (5 edits / 5 s): many updates are coalesced and no 429 is ever hit."""
    fake_discord.edit_rate_limit = (5, 5.0)  # type: ignore[attr-defined]
    relay.behaviour.render_polls = 15
    await start_bot()
    inter = await fake_discord.run_slash("video", {"prompt": "a busy beehive"})
    await final_message(fake_discord, timeout=30)
    assert fake_discord.rate_limited_count == 0
    assert inter.original is not None and inter.original.edit_count >= 2


async def test_a_message_deleted_by_a_moderator_is_replaced(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    held = asyncio.Event()
    relay.fail_next("poll", status=None, wait=held)
    await start_bot(interaction_token_ttl=1)
    inter = await fake_discord.run_slash("video", {"prompt": "a quiet forest"})
    await fake_discord.wait_for_message(lambda m: m.interaction_id is None and bool(m.embeds))
    [moved] = [m for m in fake_discord.messages.values() if m.interaction_id is None and m.embeds]
    await fake_discord.delete_message(moved.channel_id, moved.id)
    held.set()
    message = await final_message(fake_discord)
    assert message.id != moved.id and message.attachments
    assert inter.original is not None


async def test_the_message_keeps_moving_while_the_relay_is_silent(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """No new percent for a while: elapsed time still ticks every PROGRESS_EDIT_INTERVAL."""
    held = asyncio.Event()
    relay.fail_next("poll", status=None, wait=held)
    await start_bot(clock=ScaledClock(50.0), progress_edit_interval=5)  # 5 s = 0.1 s real
    inter = await fake_discord.run_slash("video", {"prompt": "a patient heron"})
    await inter.wait_until(lambda i: i.original is not None and i.original.edit_count >= 6)
    assert relay.requests_to("task_poll") and not held.is_set()  # nothing new from the relay
    held.set()
    message = await final_message(fake_discord)
    assert message.attachments


async def test_a_job_whose_first_message_fails_is_shown_in_the_channel(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """Discord refuses the follow-up that would show the job: it was paid for, so the
    result still appears, in a message the bot posts in the channel."""
    fake_discord.fail_next("POST", r"^/webhooks/\d+/[^/]+$", status=403, code=50013, times=1)
    await start_bot()
    await fake_discord.run_slash("video", {"prompt": "a lost kite"})
    message = await final_message(fake_discord)
    assert message.interaction_id is None and message.attachments
    assert title(message).startswith("✅")
