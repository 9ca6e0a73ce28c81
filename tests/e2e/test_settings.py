"""/settings end to end: a member's defaults shape the next /video, typed options win,
an admin's restriction refuses a model before anything is spent, members can't change
the server's settings, and a member's defaults in one server never reach another."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from bot import app as app_module
from bot.clock import FakeClock
from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import FakeRelay
from bot.store.preferences import Defaults

from .conftest import StartBot, final_message, modal_fields, png_bytes


async def private_text(inter: Any) -> str:
    """Everything the member was shown privately: content and embeds, reply and follow-ups."""
    await inter.wait_until(
        lambda i: any(
            m.ephemeral and (m.content or m.embeds) for m in [i.original, *i.followups] if m
        ),
        timeout=10,
    )
    shown = [m for m in [inter.original, *inter.followups] if m and m.ephemeral]
    return "\n".join(m.content + str(m.embeds) for m in shown)


def submitted(relay: FakeRelay, prompt: str) -> dict[str, Any]:
    [job] = [job for job in relay.jobs.values() if prompt in job.prompt]
    return dict(job.body)


async def test_a_members_defaults_shape_video_and_typed_options_win(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    bot = await start_bot()
    saved = await fake_discord.run_slash(
        "settings", {"model": "sora-2-pro", "duration": 15}, subcommand="set"
    )
    text = await private_text(saved)
    assert "Saved" in text and "Sora 2 Pro" in text and "15 s" in text

    await fake_discord.run_slash("video", {"prompt": "a lighthouse at dusk"})
    message = await final_message(fake_discord, 1)
    body = submitted(relay, "a lighthouse at dusk")
    assert body["model"] == "sora-2-pro" and str(body["duration"]) == "15"
    job = await bot.db.jobs.get(1)
    assert job is not None and job.cost == 6  # 15 s of sora-2-pro: 2 units × 3
    assert "6 units" in str(message.embeds)

    # An option typed in /video wins over the stored default; the rest still apply.
    await fake_discord.run_slash("video", {"prompt": "a short lighthouse", "duration": 10})
    await final_message(fake_discord, 2)
    body = submitted(relay, "a short lighthouse")
    assert body["model"] == "sora-2-pro" and str(body["duration"]) == "10"
    job = await bot.db.jobs.get(2)
    assert job is not None and job.cost == 3
    status = await bot.db.quotas.status(fake_discord.guild.id, fake_discord.alice.id)
    assert status.user_used == 9

    # /settings reset: back to the catalogue's defaults.
    await private_text(await fake_discord.run_slash("settings", {}, subcommand="reset"))
    await fake_discord.run_slash("video", {"prompt": "a plain lighthouse"})
    await final_message(fake_discord, 3)
    body = submitted(relay, "a plain lighthouse")
    assert body["model"] == "sora-2" and str(body["duration"]) == "10"


async def test_settings_that_could_never_render_are_refused_with_one_sentence(
    fake_discord: FakeDiscord, start_bot: StartBot
) -> None:
    bot = await start_bot()
    refused = await fake_discord.run_slash(
        "settings", {"model": "sora-2", "duration": 25}, subcommand="set"
    )
    text = await private_text(refused)
    # The model's sentence names what it renders instead (its catalogue entry, issue 11).
    assert "sora-2 renders 10 or 15 s" in text and "embed" not in text.lower()
    unknown = await fake_discord.run_slash("settings", {"model": "sora-9"}, subcommand="set")
    assert "sora-9" in await private_text(unknown)
    prefs = await bot.db.preferences.get(fake_discord.guild.id, fake_discord.alice.id)
    assert prefs.member.is_empty
    # A level's values are checked together: a duration its own stored model lacks is
    # refused, not saved to be skipped at every /video.
    await private_text(
        await fake_discord.run_slash("settings", {"model": "veo3-fast"}, subcommand="set")
    )
    lacking = await fake_discord.run_slash("settings", {"duration": 15}, subcommand="set")
    assert "veo3-fast renders 8 s only" in await private_text(lacking)
    prefs = await bot.db.preferences.get(fake_discord.guild.id, fake_discord.alice.id)
    assert prefs.member == Defaults(model="veo3-fast")


async def test_an_admins_restriction_refuses_the_model_and_charges_nothing(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    bot = await start_bot()
    owner = fake_discord.owner.id
    denied = await fake_discord.run_slash(
        "settings-admin", {"model": "sora-2-pro"}, subcommand="models deny", user_id=owner
    )
    assert "sora-2-pro" not in (await private_text(denied)).split("Members here can use")[1][:80]

    refused = await fake_discord.run_slash(
        "video", {"prompt": "a pro lighthouse", "model": "sora-2-pro"}
    )
    text = await private_text(refused)
    assert "sora-2-pro is not allowed on this server" in text
    assert "the models allowed here are sora-2" in text
    assert relay.requests_to("task_submit") == [] and relay.jobs == {}
    assert await bot.db.quotas.ledger(fake_discord.guild.id) == []
    assert await bot.db.jobs.get(1) is None

    # In Chinese too.
    zh = await fake_discord.run_slash(
        "video", {"prompt": "a pro lighthouse", "model": "sora-2-pro"}, locale="zh-CN"
    )
    assert "本服务器不允许使用 sora-2-pro" in await private_text(zh)

    # A stored default the admins took away is skipped with a note, not refused.
    await bot.db.preferences.set_member(
        fake_discord.guild.id, fake_discord.alice.id, model="sora-2-pro"
    )
    noted = await fake_discord.run_slash("video", {"prompt": "a noted lighthouse"})
    await final_message(fake_discord, 1)
    note = await private_text(noted)
    assert "Your default model Sora 2 Pro is not allowed here" in note
    assert submitted(relay, "a noted lighthouse")["model"] == "sora-2"

    # The rerun button of a pro video made before the restriction is refused the same way.
    await fake_discord.run_slash("settings-admin", {}, subcommand="models reset", user_id=owner)
    await fake_discord.run_slash("video", {"prompt": "an old pro video", "model": "sora-2-pro"})
    old = await final_message(fake_discord, 2)
    await fake_discord.run_slash(
        "settings-admin", {"model": "sora-2-pro"}, subcommand="models deny", user_id=owner
    )
    used = (await bot.db.quotas.status(fake_discord.guild.id, fake_discord.alice.id)).user_used
    rerun = await fake_discord.click_button(old, "job:rerun:2")
    assert "sora-2-pro is not allowed on this server" in await private_text(rerun)
    assert await bot.db.jobs.get(3) is None
    after = (await bot.db.quotas.status(fake_discord.guild.id, fake_discord.alice.id)).user_used
    assert after == used and relay.submits_for("an old pro video") == 1


async def test_members_cant_change_the_servers_settings(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    bot = await start_bot()
    command = fake_discord.find_command("settings-admin")
    assert command is not None and int(command["default_member_permissions"]) == 1 << 5
    for subcommand, options in (
        ("models deny", {"model": "sora-2"}),
        ("defaults set", {"model": "sora-2-pro"}),
        ("models reset", {}),
    ):
        refused = await fake_discord.run_slash("settings-admin", options, subcommand=subcommand)
        assert "permission" in await private_text(refused)
    prefs = await bot.db.preferences.get(fake_discord.guild.id, fake_discord.alice.id)
    assert prefs.server.is_empty and prefs.allowed_models is None


async def test_server_defaults_apply_under_a_members_own(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    await start_bot()
    owner = fake_discord.owner.id
    saved = await fake_discord.run_slash(
        "settings-admin",
        {"model": "sora-2-pro", "orientation": "landscape"},
        subcommand="defaults set",
        user_id=owner,
    )
    assert "Saved" in await private_text(saved)
    await private_text(
        await fake_discord.run_slash("settings", {"orientation": "portrait"}, subcommand="set")
    )
    await fake_discord.run_slash("video", {"prompt": "alice's boat"})
    await fake_discord.run_slash("video", {"prompt": "the owner's boat"}, user_id=owner)
    await final_message(fake_discord, 1)
    await final_message(fake_discord, 2)
    alice, theirs = submitted(relay, "alice's boat"), submitted(relay, "the owner's boat")
    assert alice["model"] == theirs["model"] == "sora-2-pro"
    assert alice["aspect_ratio"] == "9:16" and theirs["aspect_ratio"] == "16:9"


async def test_a_members_defaults_stay_in_their_server(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    other = fake_discord.add_guild("Elsewhere")
    await start_bot()
    await private_text(
        await fake_discord.run_slash(
            "settings", {"model": "sora-2-pro", "duration": 15}, subcommand="set"
        )
    )
    await fake_discord.run_slash("video", {"prompt": "a boat elsewhere"}, guild_id=other.id)
    await final_message(fake_discord, 1)
    body = submitted(relay, "a boat elsewhere")
    assert body["model"] == "sora-2" and str(body["duration"]) == "10"
    # ...while in the server where they were set, they apply.
    await fake_discord.run_slash("video", {"prompt": "a boat at home"})
    await final_message(fake_discord, 2)
    body = submitted(relay, "a boat at home")
    assert body["model"] == "sora-2-pro" and str(body["duration"]) == "15"


async def test_settings_show_and_quota_show_the_effective_defaults(
    fake_discord: FakeDiscord, start_bot: StartBot
) -> None:
    await start_bot()
    await private_text(
        await fake_discord.run_slash(
            "settings", {"model": "sora-2-pro", "hd": True}, subcommand="set"
        )
    )
    shown = await private_text(await fake_discord.run_slash("settings", {}, subcommand="show"))
    assert "Sora 2 Pro · 10 s · Portrait · HD" in shown and "All: Sora 2" in shown
    quota = await private_text(await fake_discord.run_slash("quota", {}))
    assert "Sora 2 Pro · 10 s · Portrait · HD" in quota and "/settings" in quota
    zh = await private_text(
        await fake_discord.run_slash("settings", {}, subcommand="show", locale="zh-CN")
    )
    assert "视频默认设置" in zh and "高清" in zh


async def test_a_storyboard_takes_its_left_out_options_from_settings(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    await start_bot()
    await private_text(
        await fake_discord.run_slash(
            "settings",
            {"model": "sora-2-pro", "duration": 25, "orientation": "landscape"},
            subcommand="set",
        )
    )
    opening = await fake_discord.run_slash("storyboard", {})
    await opening.wait_for_response()
    shots = "12.5 | a plane takes off\n12.5 | it lands"
    good = await fake_discord.submit_modal(opening, modal_fields(opening, {"shot": shots}))
    await good.wait_for_response()
    await final_message(fake_discord, 1)
    body = submitted(relay, "a plane takes off")
    assert body["model"] == "sora-2-pro" and str(body["duration"]) == "25"
    assert body["aspect_ratio"] == "16:9"


async def test_with_settings_stored_options_are_checked_after_the_acknowledgement(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """HD is fine for a member whose default model has it, and refused (privately, after
    the "thinking" reply is removed) for one whose default model hasn't."""
    bot = await start_bot()
    owner = fake_discord.owner.id
    await private_text(
        await fake_discord.run_slash("settings", {"model": "sora-2-pro"}, subcommand="set")
    )
    await private_text(
        await fake_discord.run_slash(
            "settings", {"model": "sora-2"}, subcommand="set", user_id=owner
        )
    )
    accepted = await fake_discord.run_slash("video", {"prompt": "an hd boat", "hd": True})
    assert (await accepted.wait_for_response()).type == 5
    await final_message(fake_discord, 1)
    assert submitted(relay, "an hd boat")["model"] == "sora-2-pro"

    refused = await fake_discord.run_slash(
        "video", {"prompt": "another hd boat", "hd": True}, user_id=owner
    )
    assert (await refused.wait_for_response()).type == 5
    text = await private_text(refused)
    assert "HD" in text and "sora-2-pro" in text
    assert refused.original is not None and refused.original.deleted
    assert relay.submits_for("another hd boat") == 0 and await bot.db.jobs.get(2) is None


async def test_toggle_buttons_flip_a_members_own_defaults(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    bot = await start_bot()
    guild, alice = fake_discord.guild.id, fake_discord.alice.id
    shown = await fake_discord.run_slash("settings", {}, subcommand="show")
    await private_text(shown)
    message = shown.original
    assert message is not None
    assert {"settings:toggle:hd", "settings:toggle:private"} <= set(message.custom_ids())

    flipped = await fake_discord.click_button(message, "settings:toggle:private")
    await flipped.wait_for_response()
    await flipped.wait_until(lambda _: "Private: Yes" in str(message.components))
    assert (await bot.db.preferences.member(guild, alice)).private is True
    assert "Private: Yes" in str(message.embeds)  # the member's own level, redrawn

    # HD with the default model (no HD) is refused with the model's sentence, and not saved.
    refused = await fake_discord.click_button(message, "settings:toggle:hd")
    await refused.wait_until(lambda i: any(m.content for m in i.followups))
    [text] = [m.content for m in refused.followups if m.content]
    assert "HD" in text and "sora-2-pro" in text and refused.followups[0].ephemeral
    assert (await bot.db.preferences.member(guild, alice)).hd is None

    await bot.db.preferences.set_member(guild, alice, model="sora-2-pro")
    again = await fake_discord.click_button(message, "settings:toggle:hd")
    await again.wait_until(lambda _: "HD: Yes" in str(message.components))
    assert (await bot.db.preferences.member(guild, alice)).hd is True
    await fake_discord.run_slash("video", {"prompt": "a toggled boat"})
    await final_message(fake_discord, 1)
    job = await bot.db.jobs.get(1)
    assert job is not None and job.request.hd and job.request.private


async def test_the_hourly_image_sweep_keeps_sweeping_and_keeps_the_settings(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot, monkeypatch: Any
) -> None:
    """The sweep that removes old reference images runs again and again, and never
    touches what /settings knows (a regression: it once replaced the defaults service)."""
    monkeypatch.setattr(app_module, "IMAGE_CLEANUP_INTERVAL", 0.01)
    clock = FakeClock(datetime.now(UTC))
    bot = await start_bot(clock=clock, image_retention_days=1)
    service = bot.defaults
    await private_text(
        await fake_discord.run_slash("settings", {"model": "sora-2-pro"}, subcommand="set")
    )
    await fake_discord.run_slash(
        "video", {"prompt": "a boat"}, attachments={"image": ("boat.png", png_bytes(), "image/png")}
    )
    await final_message(fake_discord, 1)
    assert await bot.db.images.count() == 1
    clock.advance(2 * 86400)  # the image is now unused for longer than it is kept

    async def swept() -> None:
        # The sweep has no event of its own to await: watch for its effect.
        while await bot.db.images.count():  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    await asyncio.wait_for(swept(), 10)  # a later sweep than the first one at start-up
    assert bot.defaults is service and service.has_settings(fake_discord.guild.id)
    await fake_discord.run_slash("video", {"prompt": "a second boat"})
    await final_message(fake_discord, 2)
    assert submitted(relay, "a second boat")["model"] == "sora-2-pro"


async def test_video_autocomplete_hides_the_models_this_server_denies(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    other = fake_discord.add_guild("Elsewhere")
    await start_bot()
    owner = fake_discord.owner.id

    async def offered(command: str, guild_id: int | None = None) -> list[str]:
        options = {"prompt": "x", "model": ""} if command == "video" else {"model": ""}
        choices = await fake_discord.autocomplete(
            command, options, focused="model", guild_id=guild_id
        )
        return [c["value"] for c in choices]

    assert "sora-2-pro" in await offered("video")
    await private_text(
        await fake_discord.run_slash(
            "settings-admin", {"model": "sora-2-pro"}, subcommand="models deny", user_id=owner
        )
    )
    here = await offered("video")
    assert "sora-2" in here and "sora-2-pro" not in here
    assert "sora-2-pro" not in await offered("storyboard")
    assert "sora-2-pro" in await offered("video", guild_id=other.id)
