"""Discord faults in the middle of a job: a deleted message, a lost permission, a dropped
gateway. The job must still end visible (or at least be retrievable with /jobs show), be
charged once, and the bot must keep answering."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.fakes.discord import FakeDiscord, FakeInteraction, RecordedMessage, perms
from bot.fakes.relay import FakeRelay

from .conftest import (
    CHARGED_ONCE,
    StartBot,
    book,
    deliveries,
    embed_text,
    final_message,
    is_final,
    still_serves,
    title,
)


def rendering(inter: FakeInteraction) -> bool:
    """The job's first message shows it rendering at the relay (🎬)."""
    return inter.original is not None and title(inter.original).startswith("🎬")


def hold_polls(relay: FakeRelay) -> asyncio.Event:
    """Polls wait until the returned event is set, so the test acts mid-render."""
    held = asyncio.Event()
    relay.fail_next("poll", status=None, wait=held, times=10_000)
    return held


def no_errors(fake: FakeDiscord, caplog: pytest.LogCaptureFixture) -> None:
    """Nothing crashed: no unexpected exception logged by the bot, none inside the fake."""
    crashed = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.name.startswith(("bot", "cogs", "discord"))
    ]
    assert not crashed and not fake.internal_errors, crashed


async def test_progress_message_deleted_by_a_moderator_mid_job_is_replaced(
    fake_discord: FakeDiscord,
    relay: FakeRelay,
    start_bot: StartBot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A moderator deletes the /video reply while it renders: the result is posted as a new
    channel message, exactly once, and charged once."""
    held = hold_polls(relay)
    bot = await start_bot()
    inter = await fake_discord.run_slash("video", {"prompt": "a quiet forest"})
    await inter.wait_until(rendering)
    assert inter.original is not None
    await fake_discord.delete_message(inter.original.channel_id, inter.original.id)
    held.set()
    message: RecordedMessage = await final_message(fake_discord, 1)
    assert message.id != inter.original.id and message.interaction_id is None
    assert title(message).startswith("✅") and message.attachments
    assert deliveries(fake_discord, 1) == [message]
    assert await book(bot, fake_discord, 1) == CHARGED_ONCE
    await still_serves(fake_discord, 2)
    no_errors(fake_discord, caplog)


async def test_missing_send_messages_permission_after_token_handoff_job_still_reachable(
    fake_discord: FakeDiscord,
    relay: FakeRelay,
    start_bot: StartBot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The bot may not post in the channel (SEND_MESSAGES denied). The reply still works
    (it is a webhook); when the job outlives INTERACTION_TOKEN_TTL and progress would move
    to a channel message, the post is refused. The job must still end visible, and
    /jobs show must find it; nothing crashes."""
    channel = fake_discord.channel
    await fake_discord.set_channel_permissions(channel.id, deny=perms("send_messages"))
    relay.behaviour.render_polls = 6
    bot = await start_bot(interaction_token_ttl=1)  # handoff after the first (fake) poll wait
    inter = await fake_discord.run_slash("video", {"prompt": "a paper boat"})
    await inter.wait_for_response()
    post = rf"^/channels/{channel.id}/messages$"
    await fake_discord.wait_for_requests(
        lambda _: bool(fake_discord.requests_matching("POST", post, 403)), timeout=10
    )  # the handoff tried the channel and was refused
    await asyncio.wait_for(bot.engine.wait_idle(), 10)

    shown = await fake_discord.run_slash("jobs", {"id": 1}, subcommand="show")
    await shown.wait_until(lambda i: i.original is not None and bool(i.original.embeds))
    assert shown.original is not None and shown.original.ephemeral
    assert title(shown.original).startswith("✅"), embed_text(shown.original)
    assert await book(bot, fake_discord, 1) == CHARGED_ONCE
    no_errors(fake_discord, caplog)

    # While Discord still honours the token (15 min), the reply itself shows the result.
    await inter.wait_until(lambda i: i.original is not None and is_final(i.original), timeout=5)
    assert inter.original is not None and title(inter.original).startswith("✅")
    assert inter.original.attachments, "the video file was not attached"


@pytest.mark.parametrize("resumable", [True, False], ids=["resume", "reidentify"])
async def test_gateway_disconnect_mid_job_still_delivers_and_keeps_answering(
    fake_discord: FakeDiscord,
    relay: FakeRelay,
    start_bot: StartBot,
    resumable: bool,
) -> None:
    """The gateway drops while a job renders (resumable, or a new session). The job is
    delivered once, and a /video sent right after the drop is answered."""
    held = hold_polls(relay)
    bot = await start_bot()
    first = await fake_discord.run_slash("video", {"prompt": "a night train"})
    await first.wait_until(rendering)
    await fake_discord.disconnect_gateway(resumable=resumable)
    op = 6 if resumable else 2  # RESUME, or a fresh IDENTIFY
    await fake_discord.wait_for_gateway(
        lambda r: (
            r.direction == "recv" and r.op == op and r.at > 0 and r.path.endswith("resume")
            if resumable
            else r.direction == "recv" and r.op == op
        ),
        timeout=10,
    )
    held.set()
    message: RecordedMessage = await final_message(fake_discord, 1)
    assert message is first.original and message.attachments
    assert deliveries(fake_discord, 1) == [message]
    assert await book(bot, fake_discord, 1) == CHARGED_ONCE
    await still_serves(fake_discord, 2)


async def test_interaction_sent_while_the_gateway_is_down_is_answered_after_resume(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """A member runs /video in the instant the gateway is down: Discord replays it on RESUME
    and the bot answers within the 3 s interaction deadline."""
    await start_bot()
    await fake_discord.disconnect_gateway(resumable=True)
    inter = await fake_discord.run_slash("video", {"prompt": "a night train"})
    response = await inter.wait_for_response(timeout=3)
    assert response.type == 5  # deferred in time
    message: RecordedMessage = await final_message(fake_discord, 1)
    assert message is inter.original and message.attachments
    assert relay.submits_for("a night train") == 1
