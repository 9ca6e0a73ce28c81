"""Delivery: the link first, the file later, streamed through a temporary file.

When the relay finishes, the job's message shows the result, its link and its buttons at
once (a video with no public link says "finished, attaching…"); the file is downloaded to
a temporary file in the data folder afterwards and attached in a later edit. That file is
gone however the delivery ends: attached, too big, a failed download, Discord's 413, or
the bot stopping mid-download. A restart between the two steps attaches the file once,
without showing the result again.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.fakes.discord import FakeDiscord, RecordedMessage
from bot.fakes.relay import FakeRelay
from bot.settings import Settings
from bot.ui.i18n import t

from .conftest import (
    CHARGED_ONCE,
    StartBot,
    book,
    deliveries,
    embed_text,
    final_message,
    shows_result,
    title,
)

ATTACHING = t("live.attaching", "en-US")


@pytest.fixture(autouse=True)
def quick(relay: FakeRelay) -> None:
    relay.behaviour.render_polls = 3
    relay.behaviour.retry_after_hint = 0


@pytest.fixture
def downloads(settings: Settings) -> Path:
    """Where the bot streams videos before uploading them (beside its database)."""
    return settings.database_path.parent / "downloads"


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def link_buttons(message: RecordedMessage) -> list[str]:
    return [c["url"] for row in message.components for c in row.get("components", []) if "url" in c]


async def shown_with_file_pending(fake: FakeDiscord, job_id: int) -> RecordedMessage:
    """The job's message once it shows the result while the file is still on its way."""

    def match(message: Any) -> bool:
        footer = str(message.embeds[0].get("footer", {}).get("text", "")) if message.embeds else ""
        return shows_result(message) and message.content == ATTACHING and f"#{job_id}" in footer

    message: RecordedMessage = await fake.wait_for_message(match, 15)
    return message


async def recorded_shown(bot: Any, job_id: int) -> Any:
    """The job's row once it records the showing; the bot writes it after Discord's answer
    to the edit, so the fake may have the message a moment before the row says so."""
    async with asyncio.timeout(5):
        while (job := await bot.db.jobs.get(job_id)) is None or job.shown_at is None:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    return job


def first_request(fake: FakeDiscord, probe: Any) -> int:
    return next(i for i, r in enumerate(fake.requests) if probe(r))


def shows_done(body: Any) -> bool:
    embeds = body.get("embeds") if isinstance(body, dict) else None
    return bool(embeds) and str(embeds[0].get("title", "")).startswith("✅")


async def test_the_link_and_buttons_show_before_the_video_is_downloaded(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot, downloads: Path
) -> None:
    held, arrived = asyncio.Event(), asyncio.Event()
    relay.fail_next("files", status=None, wait=held, arrived=arrived)  # the download hangs
    relay.behaviour.video_bytes = 50_000
    bot = await start_bot()
    inter = await fake_discord.run_slash("video", {"prompt": "a kite over dunes"})

    shown = await shown_with_file_pending(fake_discord, 1)
    assert shown is inter.original and not shown.attachments
    job = await recorded_shown(bot, 1)  # written once Discord has answered the edit
    assert job is not None and job.result_url and job.shown_at and job.delivered_at is None
    assert link_buttons(shown) == [job.result_url]  # Open video
    assert {"job:rerun:1", "job:remix:1", "job:details:1"} <= set(shown.custom_ids())
    assert job.result_url in embed_text(shown)
    await asyncio.wait_for(arrived.wait(), 15)
    (part,) = leftovers(downloads)  # the download goes to a file in the data folder
    assert part.endswith(".part")

    held.set()
    message = await final_message(fake_discord, 1)
    assert message is shown and message.content == ""
    (attachment,) = message.attachments
    assert len(attachment.data) == 50_000
    assert link_buttons(message) == [job.result_url] and job.result_url in embed_text(message)
    # At the fake Discord: the result (link, buttons) was edited in before any upload,
    # and the file came in a later edit.
    done_at = first_request(fake_discord, lambda r: shows_done(r.body))
    upload_at = first_request(fake_discord, lambda r: r.files)
    done_request = fake_discord.requests[done_at]
    assert done_at < upload_at and not done_request.files
    assert done_request.method == "PATCH" and done_request.body["content"] == ATTACHING
    assert done_request.body["components"], "the buttons came with the link"
    versions = [v for v in message.history if v.embeds and v.embeds[0]["title"].startswith("✅")]
    assert [v.attachment_names for v in versions] == [(), ("sora-1.mp4",)]
    assert deliveries(fake_discord, 1) == [message]
    assert await book(bot, fake_discord, 1) == CHARGED_ONCE
    assert leftovers(downloads) == []


async def test_a_linkless_video_says_finished_attaching_then_brings_the_file(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot, downloads: Path
) -> None:
    relay.behaviour.official_link = "none"
    held = asyncio.Event()
    relay.fail_next("content", status=None, wait=held)
    bot = await start_bot(relay_format="official")
    await fake_discord.run_slash("video", {"prompt": "a heron at dawn"}, locale="zh-CN")

    def match(message: Any) -> bool:
        return shows_result(message) and message.content == t("live.attaching", "zh-CN")

    shown = await fake_discord.wait_for_message(match, 15)
    assert not shown.attachments and link_buttons(shown) == []  # no link to show
    assert "/v1/videos/" not in embed_text(shown)
    held.set()
    message = await final_message(fake_discord, 1)
    assert message is shown and message.content == "" and message.attachments
    assert deliveries(fake_discord, 1) == [message]
    assert await book(bot, fake_discord, 1) == CHARGED_ONCE
    assert leftovers(downloads) == []


@pytest.mark.parametrize("case", ["too_big", "download_fails", "discord_413"])
async def test_a_video_that_cant_be_attached_keeps_its_link_and_leaves_no_file(
    fake_discord: FakeDiscord,
    relay: FakeRelay,
    start_bot: StartBot,
    downloads: Path,
    case: str,
) -> None:
    relay.behaviour.video_bytes = 300_000
    overrides: dict[str, Any] = {}
    if case == "too_big":
        overrides["max_download_bytes"] = 100_000
    elif case == "download_fails":
        relay.fail_next("files", status=503, times=20)
    else:
        fake_discord.upload_limit = 100_000  # the server's limit is lower than we knew
    bot = await start_bot(**overrides)
    await fake_discord.run_slash("video", {"prompt": "a harbour in fog"})
    message = await final_message(fake_discord, 1)
    job = await bot.db.jobs.get(1)
    assert job is not None and job.result_url and job.delivered_at is not None
    assert title(message).startswith("✅") and not message.attachments
    assert message.content == ""  # the "attaching" line is gone; the link stays
    assert ATTACHING in message.contents
    assert link_buttons(message) == [job.result_url]
    assert deliveries(fake_discord, 1) == [message]
    assert await book(bot, fake_discord, 1) == CHARGED_ONCE
    assert leftovers(downloads) == []


async def test_a_restart_between_the_link_and_the_file_attaches_it_once(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot, downloads: Path
) -> None:
    held, arrived = asyncio.Event(), asyncio.Event()
    relay.fail_next("files", status=None, wait=held, arrived=arrived)
    first = await start_bot()
    inter = await fake_discord.run_slash("video", {"prompt": "a lighthouse in rain"})
    shown = await shown_with_file_pending(fake_discord, 1)
    await asyncio.wait_for(arrived.wait(), 15)
    assert len(leftovers(downloads)) == 1
    before = await first.db.jobs.get(1)
    assert before is not None and before.shown_at is not None and before.delivered_at is None
    await first.close()  # mid-download: the temporary file goes with it
    assert leftovers(downloads) == []
    held.set()

    second = await start_bot()
    message = await final_message(fake_discord, 1)
    assert message is shown is inter.original and message.attachments
    assert message.contents.count(ATTACHING) == 1  # the result was not shown again
    after = await second.db.jobs.get(1)
    assert after is not None and after.delivered_at is not None
    assert after.shown_at == before.shown_at
    assert deliveries(fake_discord, 1) == [message]
    assert await book(second, fake_discord, 1) == CHARGED_ONCE
    assert relay.submits_for("a lighthouse in rain") == 1
    assert leftovers(downloads) == []


def _leave_behind(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "sora-7-abc123.part").write_bytes(b"\0" * 1000)
    (folder / "notes.txt").write_text("not ours")


async def test_downloads_a_killed_process_left_are_swept_at_start(
    start_bot: StartBot, downloads: Path
) -> None:
    _leave_behind(downloads)
    await start_bot()
    assert leftovers(downloads) == ["notes.txt"]


class _PacingStuck:
    """The bot's clock, except that the message writer's long waits never end: whatever
    the result needs must not wait behind progress pacing."""

    def __init__(self, clock: Any) -> None:
        self.inner = clock
        self.stuck = 0

    def now(self) -> datetime:
        now: datetime = self.inner.now()
        return now

    def monotonic(self) -> float:
        value: float = self.inner.monotonic()
        return value

    async def sleep(self, seconds: float) -> None:
        if seconds > 1:
            self.stuck += 1
            await asyncio.Event().wait()
        await self.inner.sleep(seconds)


async def test_the_result_is_shown_at_once_not_after_the_progress_pace(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    relay.behaviour.render_polls = 6
    bot = await start_bot(progress_edit_interval=60)
    paced = bot.live.clock = _PacingStuck(bot.live.clock)
    inter = await fake_discord.run_slash("video", {"prompt": "a comet over snow"})
    message = await final_message(fake_discord, 1)
    assert message is inter.original and message.attachments
    assert paced.stuck, "no progress edit was waiting its turn: the test proved nothing"


async def test_the_video_streams_to_a_file_on_disk_not_into_memory(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot, downloads: Path
) -> None:
    """Mid-download, what arrived so far is already in the temporary file."""
    held, arrived = asyncio.Event(), asyncio.Event()
    relay.fail_next("files", stall_after=2_000_000, wait=held, arrived=arrived)
    relay.behaviour.video_bytes = 5_000_000
    bot = await start_bot()
    await fake_discord.run_slash("video", {"prompt": "a train through pines"})
    await asyncio.wait_for(arrived.wait(), 15)
    on_disk = await _grown_to(downloads, 1_900_000)
    assert on_disk[4:8] == b"ftyp"  # the video's first bytes, written as they came
    assert (await bot.db.jobs.get(1)).delivered_at is None  # type: ignore[union-attr]
    held.set()
    message = await final_message(fake_discord, 1)
    (attachment,) = message.attachments
    assert len(attachment.data) == 5_000_000 and attachment.data[4:8] == b"ftyp"
    assert leftovers(downloads) == []


async def _grown_to(folder: Path, size: int) -> bytes:
    """The one temporary file's bytes once it holds at least `size` (the bot writes it
    from another connection; there is no event to await, so look every few ms)."""
    for _ in range(3000):
        if (found := _part_holding(folder, size)) is not None:
            return found
        await asyncio.sleep(0.005)
    raise AssertionError(f"no temporary file in {folder} reached {size} bytes")


def _part_holding(folder: Path, size: int) -> bytes | None:
    files = list(folder.glob("*.part")) if folder.exists() else []
    if len(files) == 1 and files[0].stat().st_size >= size:
        return files[0].read_bytes()
    return None


async def test_a_render_ending_late_in_the_token_brings_its_file_in_one_message(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """The render ends 11 minutes in and the download outlives the reply's 15-minute token:
    the result moves to a message the bot owns before the download, so the file lands in
    that message instead of a second one beside a reply stuck at "attaching…"."""
    clock = FakeClock(datetime.now(UTC))
    render, download, arrived = asyncio.Event(), asyncio.Event(), asyncio.Event()
    relay.fail_next("poll", status=None, wait=render)
    relay.fail_next("files", status=None, wait=download, arrived=arrived)
    bot = await start_bot(clock=clock)
    inter = await fake_discord.run_slash("video", {"prompt": "a lantern at dusk"})
    await inter.wait_until(lambda i: i.original is not None and bool(i.original.embeds))
    clock.advance(11 * 60)  # the job's message is up; its render ends 11 minutes in
    render.set()
    await asyncio.wait_for(arrived.wait(), 15)
    clock.advance(5 * 60)  # 16 minutes in: Discord no longer takes the reply's token
    download.set()

    message = await final_message(fake_discord, 1)
    assert message.interaction_id is None and message.attachments
    assert deliveries(fake_discord, 1) == [message]
    assert inter.original is not None and not shows_result(inter.original)
    assert await book(bot, fake_discord, 1) == CHARGED_ONCE
