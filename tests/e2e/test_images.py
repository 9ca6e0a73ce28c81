"""Reference images end to end: out of job rows, back to the relay on a rerun, and a
rerun after IMAGE_RETENTION_DAYS refused in one sentence with nothing charged."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from bot.clock import FakeClock
from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import FakeRelay

from .conftest import StartBot, final_message, png_bytes, title
from .test_errors import private_reply


def sent_images(relay: FakeRelay) -> list[list[bytes]]:
    return [
        [base64.b64decode(sent.split(",")[-1]) for sent in submit.json.get("images", [])]
        for submit in relay.requests_to("task_submit")
    ]


async def test_a_rerun_sends_the_images_again_from_outside_the_row(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    bot = await start_bot()
    image = png_bytes(256)
    await fake_discord.run_slash(
        "video", {"prompt": "a teal square"}, attachments={"image": ("sq.png", image, "image/png")}
    )
    done = await final_message(fake_discord, 1)
    [row] = await bot.db.fetchall("SELECT request_json FROM jobs")
    assert base64.b64encode(image).decode()[:40] not in row[0] and len(row[0]) < 1000

    rerun = await fake_discord.click_button(done, "job:rerun:1")
    await rerun.wait_for_response()
    assert title(await final_message(fake_discord, 2)).startswith("✅")
    assert sent_images(relay) == [[image], [image]]


async def test_a_rerun_after_the_images_were_removed_says_so_and_charges_nothing(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    start = datetime.now(UTC)
    first = await start_bot(clock=FakeClock(start))
    await fake_discord.run_slash(
        "video",
        {"prompt": "a fading photo"},
        attachments={"image": ("old.png", png_bytes(), "image/png")},
    )
    done = await final_message(fake_discord, 1)
    await first.close()

    later = await start_bot(clock=FakeClock(start + timedelta(days=31)))  # cleans at start-up
    assert await later.db.images.count() == 0
    rerun = await fake_discord.click_button(done, "job:rerun:1")
    sentence = await private_reply(rerun)
    assert sentence == (
        "Job #1's reference images are no longer kept; start a new /video with the images attached."
    )
    assert relay.submits_for("a fading photo") == 1
    ledger = await later.db.quotas.ledger(fake_discord.guild.id, limit=100)
    assert sorted(entry.kind for entry in ledger) == ["commit", "reserve"]
    assert (
        len(await later.db.jobs.recent_for_user(fake_discord.guild.id, fake_discord.alice.id)) == 1
    )
