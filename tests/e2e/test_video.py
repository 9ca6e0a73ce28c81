"""/video from the command to the delivered video, as a member sees it."""

from __future__ import annotations

import base64

import pytest

from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import FakeRelay

from .conftest import StartBot, button_ids, final_message, png_bytes, title


@pytest.mark.parametrize("fmt", ["task", "official", "chat"])
async def test_video_is_delivered_in_each_format(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot, fmt: str
) -> None:
    await start_bot(relay_format=fmt)
    inter = await fake_discord.run_slash("video", {"prompt": "a cat walks across a piano"})
    assert (await inter.wait_for_response()).type == 5  # deferred at once
    message = await final_message(fake_discord)

    assert message is inter.original  # one message, edited from queued to done
    assert title(message).startswith("✅")
    assert [a.filename for a in message.attachments] == ["sora-1.mp4"]
    assert message.attachments[0].data[4:8] == b"ftyp"
    assert "a cat walks across a piano" in message.embeds[0]["description"]
    assert {"job:rerun:1", "job:remix:1", "job:details:1"} <= set(button_ids(message))
    assert any(str(b).startswith(relay.url) for b in button_ids(message))  # the link button
    assert relay.submits_for("a cat walks across a piano") == 1
    assert message.allowed_mentions == {"parse": []}
    titles = [str(v.embeds[0].get("title")) for v in message.history if v.embeds]
    assert any("%" in t for t in titles), titles  # progress was visible along the way


async def test_options_and_images_reach_the_relay(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    await start_bot()
    image = png_bytes()
    inter = await fake_discord.run_slash(
        "video",
        {
            "prompt": "a lighthouse at dusk",
            "orientation": "landscape",
            "duration": 15,
            "hd": True,
            "model": "sora-2-pro",
        },
        attachments={"image": ("ref.png", image, "image/png")},
    )
    await final_message(fake_discord)
    [submit] = relay.requests_to("task_submit")
    body = submit.json
    assert (body["aspect_ratio"], body["duration"], body["hd"], body["model"]) == (
        "16:9",
        "15",
        True,
        "sora-2-pro",
    )
    [sent] = body["images"]
    assert base64.b64decode(sent.split(",")[-1]) == image
    assert inter.original is not None and not inter.original.ephemeral


async def test_a_long_render_is_announced_to_its_owner(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    relay.behaviour.render_polls = 30  # minutes of (fake) render time
    await start_bot()
    await fake_discord.run_slash("video", {"prompt": "a slow sunrise"})
    await final_message(fake_discord)
    ping = await fake_discord.wait_for_message(lambda m: "is ready" in m.content)
    assert f"<@{fake_discord.alice.id}>" in ping.content
    assert ping.allowed_mentions is not None and ping.allowed_mentions.get("users")


async def test_the_file_falls_back_to_the_link_when_too_big(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    relay.behaviour.video_bytes = 3 * 1024 * 1024
    await start_bot(max_download_bytes=1024 * 1024)
    await fake_discord.run_slash("video", {"prompt": "a big file"})
    message = await final_message(fake_discord)
    assert message.attachments == []
    assert any(str(b).startswith(relay.url) for b in button_ids(message))
