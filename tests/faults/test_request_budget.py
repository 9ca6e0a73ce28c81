"""Issue 10, the request budget, through the whole bot: /video in the fake Discord, the fake
relay rationing its key as new-api does ("1分钟内最多请求10次"), counting what it refused.

The bot and the relay share a FakeClock, so the minutes the budget waits pass in no real
time, and the relay's window is measured on the same clock as the bot's budget.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import FakeRelay
from bot.ui.i18n import t

from .conftest import (
    CHARGED_ONCE,
    DISCORD_TOKEN,
    StartBot,
    book,
    deliveries,
    final_message,
    title,
)

JOBS = 20
LIMIT = 10
NO_ANSWER = t("phase.no_answer", "en-US")


@pytest.fixture
def fake_discord_options() -> dict[str, Any]:
    """Twenty "your video is ready" posts in one channel: Discord's pace is not studied here."""
    return {"edit_rate_limit": (50, 1.0), "message_rate_limit": (50, 1.0), "token": DISCORD_TOKEN}


@pytest.mark.parametrize("fmt", ["task", "official", "chat"])
async def test_twenty_jobs_on_a_relay_limited_to_ten_a_minute_all_deliver_without_a_429(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot, fmt: str
) -> None:
    clock = FakeClock(datetime.now(UTC))
    relay.clock = clock
    relay.requests_per_minute = LIMIT
    relay.behaviour.render_polls = 3
    relay.behaviour.official_link = "none"  # official: the file comes from the relay, keyed
    bot = await start_bot(
        clock=clock,
        relay_format=fmt,
        relay_requests_per_minute=LIMIT,
        max_concurrent_jobs=JOBS,
        max_concurrent_jobs_per_guild=JOBS,
        quota_user_daily=JOBS,
        job_deadline_minutes=10**5,
        # Discord's pace and its 15-minute tokens are not what this test studies: the shared
        # FakeClock leaps minutes whenever everything waits for the relay's budget.
        progress_edits_per_second=1000.0,
        interaction_token_ttl=10**6,
    )

    for n in range(JOBS):
        interaction = await fake_discord.run_slash("video", {"prompt": f"kite number {n:02d}"})
        await interaction.wait_for_response()
    for job_id in range(1, JOBS + 1):
        message = await final_message(fake_discord, job_id, timeout=60)
        assert title(message).startswith("✅") and message.attachments, job_id

    assert relay.rate_refusals == 0, [r.path for r in relay.rate_refused]
    for n in range(JOBS):
        assert relay.submits_for(f"kite number {n:02d}") == 1
    for job_id in range(1, JOBS + 1):
        assert len(deliveries(fake_discord, job_id)) == 1
        assert await book(bot, fake_discord, job_id) == CHARGED_ONCE
    budget = bot.relay.members[0].client.budget
    assert budget.waited > 0 and budget.refusals == 0  # the budget, not luck, kept it under
    keyed = [r for r in relay.requests if r.headers.get("Authorization") == "<present>"]
    # A submit and at least two reads each (a chat stream is one request): minutes of budget.
    assert len(keyed) >= (1 if fmt == "chat" else 3) * JOBS > LIMIT
    # Waiting for the budget is not a failed read: nobody was told the service is silent.
    for message in fake_discord.messages.values():
        for version in message.history:
            assert not any(NO_ANSWER in str(embed) for embed in version.embeds)


async def test_a_relay_that_refuses_inside_a_200_shrinks_the_budget_and_still_delivers(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """No budget configured; the relay refuses with new-api's sentence in a 200 body. The
    bot slows down to what the relay stated and every job is still delivered once."""
    clock = FakeClock(datetime.now(UTC))
    relay.clock = clock
    relay.behaviour.render_polls = 2
    bot = await start_bot(
        clock=clock,
        max_concurrent_jobs=6,
        max_concurrent_jobs_per_guild=6,
        job_deadline_minutes=10**5,
        progress_edits_per_second=1000.0,
        interaction_token_ttl=10**6,
    )
    # The limit counts from here: the start-up model list is not one of this test's jobs.
    relay.requests_per_minute = 4
    relay.rate_limit_status = 200
    for n in range(6):
        interaction = await fake_discord.run_slash("video", {"prompt": f"gull number {n}"})
        await interaction.wait_for_response()
    for job_id in range(1, 7):
        message = await final_message(fake_discord, job_id, timeout=60)
        assert title(message).startswith("✅") and message.attachments, job_id
        assert await book(bot, fake_discord, job_id) == CHARGED_ONCE
    for n in range(6):
        assert relay.submits_for(f"gull number {n}") == 1
    budget = bot.relay.members[0].client.budget
    assert relay.rate_refusals >= 1 and budget.refusals >= 1
    assert budget.last_shrink is not None and budget.last_shrink <= 4  # what the relay stated
