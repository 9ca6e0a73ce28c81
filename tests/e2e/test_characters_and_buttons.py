"""Characters by alias, the buttons on finished videos, and the modals."""

from __future__ import annotations

from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import FakeRelay

from .conftest import StartBot, button_ids, final_message, modal_fields, title
from .test_errors import private_reply


async def test_a_character_is_created_and_used_by_alias(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    bot = await start_bot()
    create = await fake_discord.run_slash(
        "character",
        {"alias": "kitty", "start": 1, "end": 3, "url": "https://clips.example/cat.mp4"},
        subcommand="create",
    )
    await create.wait_until(lambda i: i.original is not None and "@kitty" in i.original.content)
    [made] = relay.requests_to("characters")
    assert made.json == {"url": "https://clips.example/cat.mp4", "timestamps": "1,3"}
    saved = await bot.db.characters.get(fake_discord.guild.id, "kitty")
    assert saved is not None

    choices = await fake_discord.autocomplete(
        "character", {"alias": "ki"}, focused="alias", subcommand="delete"
    )
    assert [c["value"] for c in choices] == ["kitty"]

    await fake_discord.run_slash("video", {"prompt": "@kitty plays the drums"})
    await final_message(fake_discord)
    [submit] = relay.requests_to("task_submit")
    assert f" @{saved.username} " in f" {submit.json['prompt']} "
    assert "@kitty" not in submit.json["prompt"]


async def test_character_timestamps_are_checked(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    await start_bot()
    inter = await fake_discord.run_slash(
        "character",
        {"alias": "dog", "start": 1, "end": 9, "url": "https://x/y.mp4"},
        subcommand="create",
    )
    await inter.wait_for_response()
    assert inter.original is not None and inter.original.ephemeral
    assert "1 to 3 seconds" in inter.original.content
    assert relay.requests_to("characters") == []


async def test_rerun_and_details_buttons_work_after_a_restart(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    first = await start_bot()
    await fake_discord.run_slash("video", {"prompt": "a paper boat"})
    done = await final_message(fake_discord, 1)
    await first.close()

    await start_bot()  # persistent buttons: a new process still answers them
    details = await fake_discord.click_button(done, "job:details:1")
    await details.wait_for_response()
    assert details.original is not None and details.original.ephemeral
    assert "a paper boat" in str(details.original.embeds)

    rerun = await fake_discord.click_button(done, "job:rerun:1")
    await rerun.wait_for_response()
    again = await final_message(fake_discord, 2)
    assert title(again).startswith("✅") and relay.submits_for("a paper boat") == 2


async def test_remix_button_opens_a_modal_and_remixes(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    bot = await start_bot()
    await fake_discord.run_slash("video", {"prompt": "a red kite"})
    done = await final_message(fake_discord, 1)
    source = await bot.db.jobs.get(1)
    assert source is not None

    opening = await fake_discord.click_button(done, "job:remix:1")
    await opening.wait_for_response()
    assert opening.response_type == 9  # a modal
    submitted = await fake_discord.submit_modal(
        opening, modal_fields(opening, {"": "make it blue"})
    )
    await submitted.wait_for_response()
    remixed = await final_message(fake_discord, 2)
    assert title(remixed).startswith("✅")
    [call] = relay.requests_to("remix")
    assert call.path == f"/v1/videos/{source.relay_id}/remix" and call.json == {
        "prompt": "make it blue"
    }


async def test_cancel_button_stops_a_waiting_job_and_refunds(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    import asyncio

    held = asyncio.Event()
    relay.fail_next("poll", status=None, wait=held, times=1000)
    bot = await start_bot(max_concurrent_jobs=1)
    await fake_discord.run_slash("video", {"prompt": "first in line"})
    waiting = await fake_discord.run_slash(
        "video", {"prompt": "second in line"}, user_id=fake_discord.owner.id
    )
    await waiting.wait_until(
        lambda i: i.original is not None and "job:cancel:2" in button_ids(i.original)
    )
    assert "#1 in line" in title(waiting.original)

    not_mine = await fake_discord.click_button(waiting.original, "job:cancel:2")
    assert "someone else's" in await private_reply(not_mine)

    mine = await fake_discord.click_button(
        waiting.original, "job:cancel:2", user_id=fake_discord.owner.id
    )
    await mine.wait_for_response()
    cancelled = await final_message(fake_discord, 2)
    assert title(cancelled).startswith("🚫")
    status = await bot.db.quotas.status(fake_discord.guild.id, fake_discord.owner.id)
    assert status.user_used == 0 and relay.submits_for("second in line") == 0
    held.set()
    await final_message(fake_discord, 1)


async def test_storyboard_modal_builds_the_shot_prompt(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    await start_bot()
    opening = await fake_discord.run_slash("storyboard", {"duration": 15, "model": "sora-2-pro"})
    await opening.wait_for_response()
    bad = await fake_discord.submit_modal(
        opening, modal_fields(opening, {"shot": "5 | a plane takes off\n5 | it lands"})
    )
    await bad.wait_for_response()
    assert bad.original is not None and bad.original.ephemeral and "15" in bad.original.content

    reopened = await fake_discord.run_slash("storyboard", {"duration": 15, "model": "sora-2-pro"})
    await reopened.wait_for_response()
    good = await fake_discord.submit_modal(
        reopened, modal_fields(reopened, {"shot": "7.5 | a plane takes off\n7.5 | it lands"})
    )
    await good.wait_for_response()
    await final_message(fake_discord)
    [submit] = relay.requests_to("task_submit")
    assert submit.json["prompt"].startswith("Shot 1:\nduration: 7.5sec\nScene: a plane takes off")
