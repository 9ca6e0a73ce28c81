"""What a model's catalogue entry says it can't do is never offered, and an operator who
edits the catalogue (a model removed, remix turned off) never strands a render the relay
already accepted (issue 11 review)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import FakeRelay

from .conftest import StartBot, button_ids, final_message, title
from .test_errors import private_reply, used_units

KLING = """
[models.kling-2]
label = "Kling 2"
formats = ["task"]
durations = [5]
cost = { 5 = 2 }
orientations.landscape = { aspect_ratio = "16:9" }
"""


async def test_a_video_of_a_model_without_remix_has_no_remix_button(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    relay.behaviour.models = ("sora-2", "veo3-fast")
    await start_bot()
    await fake_discord.run_slash(
        "video", {"prompt": "a veo lighthouse", "model": "veo3-fast", "duration": 8}
    )
    veo = await final_message(fake_discord, 1)
    assert title(veo).startswith("✅")
    assert "job:rerun:1" in button_ids(veo) and "job:details:1" in button_ids(veo)
    assert "job:remix:1" not in button_ids(veo)  # veo3-fast's entry: remix = false
    await fake_discord.run_slash("video", {"prompt": "a sora lighthouse"})
    sora = await final_message(fake_discord, 2)
    assert "job:remix:2" in button_ids(sora)  # the ids stay as they were


async def test_an_old_remix_button_of_a_model_that_lost_remix_answers_at_the_click(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot, tmp_path: Path
) -> None:
    relay.behaviour.models = ("sora-2", "veo3-fast")
    with_remix = tmp_path / "remix.toml"
    with_remix.write_text("[models.veo3-fast]\nremix = true\n")
    first = await start_bot(models_file=with_remix)
    await fake_discord.run_slash(
        "video", {"prompt": "a veo harbour", "model": "veo3-fast", "duration": 8}
    )
    done = await final_message(fake_discord, 1)
    assert "job:remix:1" in button_ids(done)
    await first.close()

    bot = await start_bot()  # the operator took remix away again
    click = await fake_discord.click_button(done, "job:remix:1")
    assert await private_reply(click) == "veo3-fast has no remix; pick sora-2 or sora-2-pro."
    assert click.modal is None  # no prompt asked for a remix that can't be made
    assert await bot.db.jobs.get(2) is None
    assert await used_units(bot, fake_discord) == 2  # the first video only


async def test_a_model_removed_from_the_catalogue_still_delivers_what_the_relay_accepted(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot, tmp_path: Path
) -> None:
    relay.behaviour.models = ("sora-2", "kling-2")
    models = tmp_path / "models.toml"
    models.write_text(KLING)
    held = asyncio.Event()
    relay.fail_next("poll", status=None, wait=held, times=10_000)
    first = await start_bot(models_file=models)
    inter = await fake_discord.run_slash(
        "video", {"prompt": "a kling kite", "model": "kling-2", "duration": 5}
    )
    await inter.wait_until(lambda i: i.original is not None and title(i.original).startswith("🎬"))
    row = await first.db.jobs.get(1)
    assert row is not None and row.status == "running" and row.relay_id
    await first.close()

    held.set()
    second = await start_bot()  # MODELS_FILE no longer names kling-2
    assert "kling-2" not in second.catalogue
    message = await final_message(fake_discord, 1)
    assert title(message).startswith("✅") and message.attachments
    assert relay.submits_for("a kling kite") == 1
    assert "job:remix:1" not in button_ids(message)  # a model it no longer knows
    book = Counter(
        e.kind for e in await second.db.quotas.ledger(fake_discord.guild.id) if e.job_id == 1
    )
    assert book == Counter(reserve=1, commit=1)


async def test_the_storyboard_menu_and_form_skip_models_without_storyboard(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    relay.behaviour.models = ("sora-2", "veo3-fast")
    bot = await start_bot()
    menu = await fake_discord.autocomplete("storyboard", {"model": ""}, focused="model")
    assert [c["value"] for c in menu] == ["sora-2"]  # veo3-fast: storyboard = false
    video = await fake_discord.autocomplete("video", {"prompt": "x", "model": ""}, focused="model")
    assert "veo3-fast" in [c["value"] for c in video]
    # Typed anyway: told at once, before the member writes any shot.
    inter = await fake_discord.run_slash("storyboard", {"model": "veo3-fast"})
    # The models it names are those usable here: this relay doesn't sell sora-2-pro.
    assert await private_reply(inter) == "veo3-fast has no storyboard; pick sora-2."
    assert inter.modal is None
    zh = await fake_discord.run_slash("storyboard", {"model": "veo3-fast"}, locale="zh-CN")
    assert await private_reply(zh) == "veo3-fast 不支持分镜;请选择 sora-2。"
    assert await used_units(bot, fake_discord) == 0


async def test_a_refusal_names_only_models_usable_here(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    relay.behaviour.models = ("sora-2", "sora-2-pro", "veo3-fast")
    other = fake_discord.add_guild("Other")
    bot = await start_bot()
    hd = {"prompt": "a veo in hd", "model": "veo3-fast", "duration": 8, "hd": True}
    inter = await fake_discord.run_slash("video", hd)
    assert await private_reply(inter) == "HD needs a model that offers it: sora-2-pro."
    deny = await fake_discord.run_slash(
        "settings-admin",
        {"model": "sora-2-pro"},
        subcommand="models deny",
        user_id=fake_discord.owner.id,
    )
    await deny.wait_until(lambda i: i.original is not None and bool(i.original.embeds))
    inter = await fake_discord.run_slash("video", hd)
    # Not "pick sora-2-pro": the admins took it away here.
    assert await private_reply(inter) == "veo3-fast has no HD; turn HD off."
    # Veo is not sold by this relay any more: not named as an alternative either.
    relay.behaviour.models = ("sora-2",)
    await bot.relay.refresh_offers()
    inter = await fake_discord.run_slash("storyboard", {"model": "veo3-fast"}, guild_id=other.id)
    assert await private_reply(inter) == "veo3-fast has no storyboard; pick sora-2."
    assert await used_units(bot, fake_discord) == 0
