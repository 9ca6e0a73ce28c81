"""Every failure a member can cause or meet: one short sentence, nothing lost."""

from __future__ import annotations

import pytest

from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import FakeRelay

from .conftest import StartBot, final_message, png_bytes, title


async def used_units(bot, fake: FakeDiscord) -> int:
    status = await bot.db.quotas.status(fake.guild.id, fake.alice.id)
    return status.user_used


async def private_reply(inter) -> str:
    """The one ephemeral sentence the member got (a direct reply or a follow-up)."""
    await inter.wait_until(
        lambda i: any(m.ephemeral and m.content for m in [i.original, *i.followups] if m),
        timeout=10,
    )
    [message] = [m for m in [inter.original, *inter.followups] if m and m.ephemeral and m.content]
    return message.content


@pytest.mark.parametrize(
    ("options", "sentence"),
    [
        ({"hd": True}, "HD needs a model that offers it: sora-2-pro."),
        ({"duration": 25}, "sora-2 renders 10 or 15 s; pick one of those or another model."),
        ({"prompt": "x" * 5000}, "keep it under 4,000"),
    ],
)
async def test_rule_breaks_are_answered_privately_before_anything_is_spent(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot, options, sentence
) -> None:
    bot = await start_bot()
    inter = await fake_discord.run_slash("video", {"prompt": "a boat", **options})
    response = await inter.wait_for_response()
    assert response.type == 4  # answered at once, not deferred
    text = await private_reply(inter)
    assert sentence in text and text.count(".") <= 2
    assert relay.requests_other_than("models") == [] and await used_units(bot, fake_discord) == 0


async def test_chinese_members_read_chinese(fake_discord: FakeDiscord, start_bot: StartBot) -> None:
    await start_bot()
    inter = await fake_discord.run_slash("video", {"prompt": "a boat", "hd": True}, locale="zh-CN")
    text = await private_reply(inter)
    assert "sora-2-pro" in text and any("\u4e00" <= ch <= "\u9fff" for ch in text)


async def test_a_non_image_attachment_is_refused_by_its_type(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    bot = await start_bot()
    inter = await fake_discord.run_slash(
        "video",
        {"prompt": "a boat"},
        attachments={"image": ("notes.pdf", b"%PDF-1.7", "application/pdf")},
    )
    assert "notes.pdf is not an image" in await private_reply(inter)
    assert relay.requests_other_than("models") == [] and await used_units(bot, fake_discord) == 0


async def test_a_pdf_renamed_png_is_found_out_after_download(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    bot = await start_bot()
    inter = await fake_discord.run_slash(
        "video",
        {"prompt": "a boat"},
        attachments={"image": ("cat.png", b"%PDF-1.7" * 100, "image/png")},
    )
    text = await private_reply(inter)
    assert "cat.png could not be read as an image" in text
    assert inter.original is None or inter.original.deleted or inter.original.ephemeral
    assert relay.requests_other_than("models") == [] and await used_units(bot, fake_discord) == 0


async def test_an_oversized_image_is_refused_before_download(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    await start_bot(max_image_bytes=2 * 1024 * 1024)
    big = png_bytes() + b"\0" * (3 * 1024 * 1024)
    inter = await fake_discord.run_slash(
        "video", {"prompt": "a boat"}, attachments={"image": ("huge.png", big, "image/png")}
    )
    assert "huge.png is larger than 2 MB" in await private_reply(inter)
    assert not [r for r in fake_discord.requests if "/cdn/" in r.path]  # never downloaded


async def test_an_unknown_alias_is_named(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    await start_bot()
    inter = await fake_discord.run_slash("video", {"prompt": "@ghost dances in the rain"})
    assert "@ghost" in await private_reply(inter)
    assert relay.requests_other_than("models") == []


async def test_relay_down_fails_the_job_and_refunds(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    relay.fail_next(
        "submit", status=503, body="<html><h1>502 Bad Gateway</h1></html>", content_type="text/html"
    )
    bot = await start_bot()
    await fake_discord.run_slash("video", {"prompt": "a calm lake"})
    message = await final_message(fake_discord)
    assert title(message).startswith("❌")
    text = str(message.embeds[0])
    assert "unreachable" in text and "refunded" in text
    assert "<html>" not in text
    assert await used_units(bot, fake_discord) == 0


async def test_a_policy_refusal_is_explained_and_charged(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    relay.script(prompt_contains="forbidden", outcome="policy")
    bot = await start_bot()
    await fake_discord.run_slash("video", {"prompt": "something forbidden"})
    message = await final_message(fake_discord)
    text = str(message.embeds[0])
    assert "content policy" in text and "refunded" not in text
    assert await used_units(bot, fake_discord) == 1


async def test_quota_exhausted_then_granted(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    await start_bot(quota_user_daily=1)
    await fake_discord.run_slash("video", {"prompt": "first video"})
    await final_message(fake_discord)

    refused = await fake_discord.run_slash("video", {"prompt": "second video"})
    text = await private_reply(refused)
    assert "1 of your 1 daily units" in text
    assert relay.submits_for("second video") == 0

    grant = await fake_discord.run_slash(
        "quota-admin",
        {"units": 2, "member": fake_discord.alice.id},
        subcommand="grant",
        user_id=fake_discord.owner.id,
    )
    await grant.wait_for_response()
    third = await fake_discord.run_slash("video", {"prompt": "third video"})
    await third.wait_for_response()
    await third.wait_until(lambda i: i.original is not None and i.original.embeds != [], timeout=10)
    message = await final_message(fake_discord, 2)
    assert title(message).startswith("✅") and relay.submits_for("third video") == 1


async def test_members_cannot_use_admin_commands(
    fake_discord: FakeDiscord, start_bot: StartBot
) -> None:
    await start_bot()
    inter = await fake_discord.run_slash("quota-admin", {"units": 50}, subcommand="grant")
    assert "permission" in await private_reply(inter)
