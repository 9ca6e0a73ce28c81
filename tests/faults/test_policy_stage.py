"""A content-policy refusal names the check that refused it, in the member's language."""

from __future__ import annotations

from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import FakeRelay
from bot.ui.i18n import t

from .conftest import StartBot, error_field, final_message


async def test_content_policy_failure_at_95_percent_names_the_finished_video(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """Moderation refused the finished video (95 %): the relay client knows the stage
    ("output"), and the catalogue has a sentence for it, but the job's message shows the
    generic one because only the error code is kept for the embed."""
    relay.script(prompt_contains="forbidden", outcome="policy", fail_at_percent=95.0)
    await start_bot()
    await fake_discord.run_slash("video", {"prompt": "something forbidden"})
    message = await final_message(fake_discord, 1)
    reason = error_field(message).split("\n")[0]
    assert reason == t("error.content_policy.output", "en-US")
