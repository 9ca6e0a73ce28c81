"""Two relays configured: a member never notices the first one failing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from pydantic import SecretStr

from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import FakeRelay
from bot.settings import RelayConfig

from .conftest import RELAY_KEY, StartBot, final_message, title


@pytest_asyncio.fixture
async def backup() -> AsyncIterator[FakeRelay]:
    async with FakeRelay(api_key=RELAY_KEY) as fake:
        yield fake


def relays(primary: FakeRelay, backup: FakeRelay) -> list[RelayConfig]:
    return [
        RelayConfig(name="primary", base_url=primary.url, api_key=SecretStr(RELAY_KEY)),
        RelayConfig(
            name="backup", base_url=backup.url, api_key=SecretStr(RELAY_KEY), format="official"
        ),
    ]


async def test_a_relay_out_of_credit_hands_jobs_to_the_next(
    fake_discord: FakeDiscord, relay: FakeRelay, backup: FakeRelay, start_bot: StartBot
) -> None:
    relay.fail_next(
        "submit",
        status=403,
        body='{"error":{"message":"用户额度不足","code":"insufficient_user_quota"}}',
    )
    bot = await start_bot(relays=relays(relay, backup))
    await fake_discord.run_slash("video", {"prompt": "a moth near a lamp"})
    message = await final_message(fake_discord)
    assert title(message).startswith("✅") and message.attachments
    job = await bot.db.jobs.get(1)
    assert job is not None and (job.relay_name, job.format) == ("backup", "official")
    assert relay.submits_for("a moth") == 0 and backup.submits_for("a moth") == 1


async def test_relay_status_shows_each_relay(
    fake_discord: FakeDiscord, relay: FakeRelay, backup: FakeRelay, start_bot: StartBot
) -> None:
    await backup.stop()  # the backup is down
    await start_bot(relays=relays(relay, backup))
    inter = await fake_discord.run_slash(
        "relay", {}, subcommand="status", user_id=fake_discord.owner.id
    )
    await inter.wait_until(lambda i: bool(i.followups) and bool(i.followups[-1].embeds))
    embed = str(inter.followups[-1].embeds[0])
    assert "primary" in embed and "backup" in embed
    assert inter.followups[-1].ephemeral
