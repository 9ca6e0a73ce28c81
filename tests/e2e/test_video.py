"""/video from the command to the delivered video, as a member sees it."""

from __future__ import annotations

import pytest

from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import FakeRelay

from .conftest import StartBot


def final(inter):
    msg = inter.original
    return msg is not None and any(
        "video" in (c.get("url") or "") or c.get("style") == 5
        for row in msg.components
        for c in row.get("components", [])
    )


@pytest.mark.parametrize("fmt", ["task", "official", "chat"])
async def test_video_is_delivered_in_each_format(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot, fmt: str
) -> None:
    await start_bot(relay_format=fmt)
    inter = await fake_discord.run_slash("video", {"prompt": "a cat walks across a piano"})
    response = await inter.wait_for_response()
    assert response.type == 5  # deferred at once
    await inter.wait_until(
        lambda i: i.original is not None and bool(i.original.attachments), timeout=15
    )
    message = inter.original
    assert message.attachments[0].filename.endswith(".mp4")
    assert relay.submits_for("a cat walks across a piano") == 1
    embed = message.embeds[0]
    assert "a cat walks across a piano" in embed["description"]
