"""Input faults: what a member can get wrong. Each is answered privately in one sentence,
before anything is spent or sent to the relay, and the bot keeps serving."""

from __future__ import annotations

from typing import Any

import pytest

from bot.app import VideoBot
from bot.fakes.discord import FakeDiscord, FakeInteraction
from bot.fakes.relay import FakeRelay
from tests.e2e.conftest import modal_fields

from .conftest import (
    StartBot,
    one_sentence,
    png_bytes,
    private_reply,
    still_serves,
    watch_cdn,
)

MB = 1024 * 1024


async def nothing_spent(bot: VideoBot, fake: FakeDiscord, relay: FakeRelay) -> None:
    """No relay call, no ledger row, no job: the refusal cost nothing."""
    assert relay.requests_other_than("models") == []
    assert await bot.db.quotas.ledger(fake.guild.id) == []
    assert await bot.db.jobs.get(1) is None


async def refusal(inter: FakeInteraction) -> str:
    text = await private_reply(inter)
    assert one_sentence(text), text
    return text


# (fault id, /video options, words the one sentence must contain)
OPTION_FAULTS: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("prompt_of_10000_characters", {"prompt": "a" * 10_000}, ("10,000", "4,000")),
    ("hd_with_sora_2", {"prompt": "a boat", "hd": True}, ("HD needs", "sora-2-pro")),
    ("25_seconds_with_sora_2", {"prompt": "a boat", "duration": 25}, ("sora-2", "10 or 15 s")),
    ("unknown_alias", {"prompt": "@ghost dances in the rain"}, ("@ghost", "/character list")),
]


@pytest.mark.parametrize(
    ("options", "words"), [pytest.param(o, w, id=name) for name, o, w in OPTION_FAULTS]
)
async def test_bad_video_options_are_refused_at_once_and_cost_nothing(
    fake_discord: FakeDiscord,
    relay: FakeRelay,
    start_bot: StartBot,
    options: dict[str, Any],
    words: tuple[str, ...],
) -> None:
    """Options alone are checked before the interaction is even deferred: an immediate
    private answer. An alias needs the database, which waits until the command is
    acknowledged: then the public "thinking" is removed and the sentence is a private
    follow-up."""
    bot = await start_bot()
    inter = await fake_discord.run_slash("video", options)
    needs_database = "@" in options["prompt"]
    assert (await inter.wait_for_response()).type == (5 if needs_database else 4)
    text = await refusal(inter)
    assert all(word in text for word in words), text
    if needs_database:
        assert inter.original is not None and inter.original.deleted
    await nothing_spent(bot, fake_discord, relay)
    await still_serves(fake_discord, 1)


async def test_image_declared_50_mb_is_refused_before_any_download(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """Discord declares the attachment's size: over MAX_IMAGE_BYTES it is refused from the
    metadata alone; the fake's CDN is never asked for the file."""
    cdn = watch_cdn(fake_discord)
    bot = await start_bot()
    huge = png_bytes() + bytes(50 * MB)
    inter = await fake_discord.run_slash(
        "video", {"prompt": "a boat"}, attachments={"image": ("huge.png", huge, "image/png")}
    )
    assert (await inter.wait_for_response()).type == 4  # refused before deferring
    text = await refusal(inter)
    assert "huge.png" in text and "10 MB" in text, text
    [attachment] = [a for a in fake_discord.attachments.values() if a.filename == "huge.png"]
    assert attachment.id not in cdn.fetched
    await nothing_spent(bot, fake_discord, relay)
    await still_serves(fake_discord, 1)


async def test_text_file_renamed_png_is_found_out_after_download(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """A text file named cat.png, declared image/png: only its bytes give it away, so it is
    downloaded (the CDN sees it), decoded, refused, and the public "thinking" is removed."""
    cdn = watch_cdn(fake_discord)
    bot = await start_bot()
    inter = await fake_discord.run_slash(
        "video",
        {"prompt": "a boat"},
        attachments={"image": ("cat.png", b"just some notes\n" * 64, "image/png")},
    )
    text = await refusal(inter)
    assert "cat.png could not be read as an image" in text
    [attachment] = [a for a in fake_discord.attachments.values() if a.filename == "cat.png"]
    assert attachment.id in cdn.fetched
    assert inter.original is None or inter.original.deleted or inter.original.ephemeral
    await nothing_spent(bot, fake_discord, relay)
    await still_serves(fake_discord, 1)


async def test_storyboard_whose_shots_do_not_add_up_is_refused(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """Shots of 4 s + 4 s for a 10 s video: the modal answer names both numbers."""
    bot = await start_bot()
    opening = await fake_discord.run_slash("storyboard", {"duration": 10})
    await opening.wait_for_response()
    submitted = await fake_discord.submit_modal(
        opening, modal_fields(opening, {"shot": "4 | a plane takes off\n4 | it lands"})
    )
    text = await refusal(submitted)
    assert "8" in text and "10" in text, text
    await nothing_spent(bot, fake_discord, relay)
    await still_serves(fake_discord, 1)
