"""Fault: an official-format relay whose finished video object has no link.

OpenAI's own `/v1/videos` answers `"status": "completed"` with no `video_url`/`url`; the
file is served by `GET /v1/videos/{id}/content` to the key's owner. The bot fetches it
with the relay key (in the Authorization header only), attaches it, and charges once.
When it can't be attached and there is no link, the member reads one sentence instead
of a broken link.
"""

from __future__ import annotations

import asyncio

import pytest

from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import FakeRelay
from bot.jobs.engine import JobUpdate
from bot.ui.i18n import t

from .conftest import (
    CHARGED_ONCE,
    StartBot,
    book,
    deliveries,
    embed_text,
    final_message,
    is_final,
    one_sentence,
    title,
)


@pytest.fixture(autouse=True)
def linkless(relay: FakeRelay) -> None:
    relay.behaviour.official_link = "none"
    relay.behaviour.render_polls = 3
    relay.behaviour.retry_after_hint = 0


@pytest.mark.parametrize("redirect", [False, True], ids=["served", "signed_redirect"])
async def test_a_linkless_video_is_fetched_with_the_key_delivered_once_charged_once(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot, redirect: bool
) -> None:
    relay.behaviour.content_redirect = redirect
    relay.behaviour.video_bytes = 64_000
    bot = await start_bot(relay_format="official")
    inter = await fake_discord.run_slash("video", {"prompt": "a lantern on a lake"})
    message = await final_message(fake_discord, 1)
    assert title(message).startswith("✅"), embed_text(message)
    (attachment,) = message.attachments
    assert len(attachment.data) == 64_000 and attachment.data[4:8] == b"ftyp"
    assert message is inter.original and deliveries(fake_discord, 1) == [message]
    assert await book(bot, fake_discord, 1) == CHARGED_ONCE
    assert relay.submits_for("a lantern on a lake") == 1
    (content,) = relay.requests_to("content")
    assert content.headers["Authorization"] == "<present>"
    for cdn in relay.requests_to("files"):  # the signed link never sees the key
        assert "Authorization" not in cdn.headers
    assert len(relay.requests_to("files")) == (1 if redirect else 0)
    job = await bot.db.jobs.get(1)
    assert job is not None and job.delivered_at is not None
    assert job.result_url == f"/v1/videos/{job.relay_id}/content"
    assert "/v1/videos/" not in embed_text(message)  # no path posing as a link


async def test_too_big_to_attach_without_a_link_is_one_sentence(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    relay.behaviour.video_bytes = 300_000
    bot = await start_bot(relay_format="official", max_download_bytes=100_000)
    await fake_discord.run_slash("video", {"prompt": "a very long river"})
    message = await final_message(fake_discord, 1)
    assert title(message).startswith("✅") and not message.attachments
    sentence = t("live.too_big_no_link", "en-US")
    assert message.content == sentence and one_sentence(sentence)
    assert "no link" in sentence
    assert deliveries(fake_discord, 1) == [message]
    assert await book(bot, fake_discord, 1) == CHARGED_ONCE


async def test_a_content_endpoint_that_keeps_failing_says_so_once_and_charges_once(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    relay.fail_next("content", status=503, times=20)
    bot = await start_bot(relay_format="official")
    await fake_discord.run_slash("video", {"prompt": "a storm over wheat"}, locale="zh-CN")
    message = await final_message(fake_discord, 1)
    assert title(message).startswith("✅") and not message.attachments
    assert message.content == t("live.fetch_failed_no_link", "zh-CN")
    assert deliveries(fake_discord, 1) == [message]
    assert await book(bot, fake_discord, 1) == CHARGED_ONCE


async def test_a_restart_after_the_finish_still_delivers_the_linkless_file(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """The row keeps the relay path: a bot that stopped before delivering fetches it later."""
    held = asyncio.Event()
    relay.fail_next("content", status=None, wait=held)  # the first fetch hangs
    first = await start_bot(relay_format="official")
    done = asyncio.Event()

    async def on_update(update: JobUpdate) -> None:
        if update.kind == "finished":
            done.set()

    first.engine.add_listener(on_update)
    await fake_discord.run_slash("video", {"prompt": "a paper boat"})
    await asyncio.wait_for(done.wait(), 15)
    await first.close()
    held.set()
    assert not [m for m in fake_discord.messages.values() if is_final(m)]

    second = await start_bot(relay_format="official")
    message = await final_message(fake_discord, 1)
    assert title(message).startswith("✅") and message.attachments
    assert deliveries(fake_discord, 1) == [message]
    assert await book(second, fake_discord, 1) == CHARGED_ONCE
    assert relay.submits_for("a paper boat") == 1


async def test_failed_status_reads_before_a_linkless_finish_still_deliver_once(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """Proxy pages and resets mid-render are "not yet"; the finish still needs no link."""
    html = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    relay.fail_next("official_poll", status=502, body=html, content_type="text/html", times=6)
    relay.fail_next("official_poll", drop=True, times=2)
    bot = await start_bot(relay_format="official")
    await fake_discord.run_slash("video", {"prompt": "a fox under the aurora"})
    message = await final_message(fake_discord, 1)
    assert title(message).startswith("✅") and message.attachments
    assert deliveries(fake_discord, 1) == [message]
    assert await book(bot, fake_discord, 1) == CHARGED_ONCE
    assert relay.submits_for("a fox under the aurora") == 1
    assert len(relay.requests_to("content")) == 1
