"""With PUBLIC_BASE_URL the bot asks task-format relays to call back, on the listener
that takes account notices, and a 60 s render costs one submit and at most two reads."""

from __future__ import annotations

import socket

from pydantic import SecretStr

from bot.clock import ScaledClock
from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import FakeRelay

from .conftest import StartBot, final_message, title

SECRET = "e2e-callback-secret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_render_with_callbacks_costs_one_submit_and_at_most_two_reads(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    clock = ScaledClock(60.0)  # a 60 s render in a real second
    relay.clock = clock
    relay.behaviour.render_seconds = 60
    relay.behaviour.hook_repeats = 2  # a relay that retries its callback
    port = free_port()
    await start_bot(
        clock=clock,
        relay_webhook_port=port,
        relay_webhook_secret=SecretStr(SECRET),
        public_base_url=f"http://127.0.0.1:{port}",
    )
    await fake_discord.run_slash("video", {"prompt": "a heron lands"})
    message = await final_message(fake_discord, 1)
    assert title(message).startswith("✅")
    submit = relay.requests_to("task_submit")
    assert len(submit) == 1
    assert (
        submit[0].json["notify_hook"] == f"http://127.0.0.1:{port}/relay-callback/{SECRET}/default"
    )
    assert 1 <= len(relay.requests_to("task_poll")) <= 2
    assert [status for _, status, _ in relay.hook_calls] == ["SUCCESS", "SUCCESS"]


async def test_without_a_public_base_no_hook_is_sent(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    await start_bot()
    await fake_discord.run_slash("video", {"prompt": "a heron lands"})
    message = await final_message(fake_discord, 1)
    assert title(message).startswith("✅")
    assert "notify_hook" not in relay.requests_to("task_submit")[0].json
