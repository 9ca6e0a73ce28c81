"""Issue 9 points 3 and 8 through the whole bot: /video in the fake Discord, the fake relay
failing its status reads for a while mid-render, or busy when the member cancels.

Outages are timed on the bot's FakeClock (the relay shares it), so a minute of 502 pages
passes in no real time. Each test ends with the video delivered once and charged once, or
refused and not charged.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.clock import FakeClock, ParkingClock
from bot.fakes.discord import FakeDiscord, RecordedMessage
from bot.fakes.relay import FakeRelay
from bot.ui.i18n import t
from tests.e2e.conftest import button_ids

from .conftest import (
    CHARGED_ONCE,
    REFUNDED,
    StartBot,
    book,
    delivered_once,
    embed_text,
    final_message,
    still_serves,
    title,
)

NO_ANSWER = "📡 " + t("phase.no_answer", "en-US")


def titles_seen(message: RecordedMessage) -> list[str]:
    return [str(v.embeds[0].get("title", "")) for v in message.history if v.embeds]


@pytest.mark.parametrize("fmt", ["task", "official"])
@pytest.mark.parametrize("seconds", [10, 60])
@pytest.mark.parametrize("kind", ["html_502", "reset"])
async def test_status_reads_failing_mid_render_end_delivered_once_charged_once(
    fake_discord: FakeDiscord,
    relay: FakeRelay,
    start_bot: StartBot,
    fmt: str,
    seconds: int,
    kind: str,
) -> None:
    clock = FakeClock(datetime.now(UTC))
    relay.clock = clock
    relay.behaviour.render_seconds = 150
    fault: dict[str, Any] = {"drop": True} if kind == "reset" else {}
    outage = relay.outage("poll", seconds=seconds, after=30, **fault)
    bot = await start_bot(clock=clock, relay_format=fmt)

    await fake_discord.run_slash("video", {"prompt": "a red kite"})
    await delivered_once(bot, fake_discord, relay, "a red kite")
    assert outage.hits >= 2
    row = await bot.db.jobs.get(1)
    assert row is not None and row.status == "succeeded"
    await still_serves(fake_discord, 2)


async def test_the_message_says_the_service_is_not_answering_then_delivers(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """While reads fail the member reads one sentence that the bot is still waiting."""
    clock = FakeClock(datetime.now(UTC))
    relay.clock = clock
    relay.behaviour.render_seconds = 150
    outage = relay.outage("poll", seconds=10**9, after=30)
    await start_bot(clock=clock, job_deadline_minutes=10**6)
    await fake_discord.run_slash("video", {"prompt": "a red kite"})

    waiting = await fake_discord.wait_for_message(
        lambda m: title(m) == NO_ANSWER and "#1" in str(m.embeds[0].get("footer", {})),
        timeout=15,
    )
    outage.end = relay.now()  # the relay answers again
    message = await final_message(fake_discord, 1)
    assert title(message).startswith("✅") and message.attachments
    assert NO_ANSWER in titles_seen(waiting) or title(waiting) == NO_ANSWER
    assert relay.submits_for("a red kite") == 1


@pytest.mark.parametrize("fmt", ["task", "official"])
async def test_task_not_exist_on_the_first_reads_still_delivers(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot, fmt: str
) -> None:
    relay.behaviour.not_found_polls = 2
    relay.behaviour.render_polls = 6
    bot = await start_bot(relay_format=fmt)
    await fake_discord.run_slash("video", {"prompt": "a red kite"})
    await delivered_once(bot, fake_discord, relay, "a red kite")


async def test_unknown_status_words_still_deliver(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    relay.behaviour.odd_status_polls = 3
    relay.behaviour.render_polls = 6
    bot = await start_bot()
    await fake_discord.run_slash("video", {"prompt": "a red kite"})
    message = await final_message(fake_discord, 1)
    assert title(message).startswith("✅")
    assert await book(bot, fake_discord, 1) == CHARGED_ONCE


async def test_a_cancel_during_a_429_wait_is_not_charged(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    relay.fail_next("submit", status=429, headers={"Retry-After": "40"})
    clock = ParkingClock(datetime.now(UTC))
    clock.park_next(40)
    bot = await start_bot(clock=clock)
    inter = await fake_discord.run_slash("video", {"prompt": "a red kite"})
    await asyncio.wait_for(clock.parked.wait(), 15)
    await inter.wait_until(
        lambda i: i.original is not None and "job:cancel:1" in button_ids(i.original)
    )
    assert inter.original is not None

    cancel = await fake_discord.click_button(inter.original, "job:cancel:1")
    await cancel.wait_for_response()
    message = await final_message(fake_discord, 1)

    assert title(message).startswith("🚫")
    assert t("refund.refunded", "en-US", units=1) in embed_text(message)  # the member is told
    assert await book(bot, fake_discord, 1) == REFUNDED
    assert relay.submits_for("a red kite") == 0
    clock.release()
    await still_serves(fake_discord, 2)
    assert len(relay.requests_to("submit")) == 2  # the refused one and job 2's
