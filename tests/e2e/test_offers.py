"""Which models the relays sell, end to end: their `/v1/models` decides where a job goes,
what `/relay status` shows, and which models a member is refused before paying."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from pydantic import SecretStr

from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import FakeRelay
from bot.settings import RelayConfig

from .conftest import RELAY_KEY, StartBot, final_message, title
from .test_errors import private_reply, used_units


@pytest_asyncio.fixture
async def second() -> AsyncIterator[FakeRelay]:
    async with FakeRelay(api_key=RELAY_KEY) as fake:
        yield fake


def two_relays(first: FakeRelay, second: FakeRelay) -> list[RelayConfig]:
    return [
        RelayConfig(name="first", base_url=first.url, api_key=SecretStr(RELAY_KEY)),
        RelayConfig(name="second", base_url=second.url, api_key=SecretStr(RELAY_KEY)),
    ]


async def test_a_job_goes_to_the_relay_that_lists_its_model(
    fake_discord: FakeDiscord, relay: FakeRelay, second: FakeRelay, start_bot: StartBot
) -> None:
    relay.behaviour.models = ("sora-2",)
    second.behaviour.models = ("sora-2", "sora-2-pro")
    bot = await start_bot(relays=two_relays(relay, second))
    await fake_discord.run_slash("video", {"prompt": "a pro otter", "model": "sora-2-pro"})
    message = await final_message(fake_discord)
    assert title(message).startswith("✅")
    job = await bot.db.jobs.get(1)
    assert job is not None and job.relay_name == "second"
    assert relay.requests_to("submit") == [] and second.submits_for("a pro otter") == 1


async def test_a_model_no_relay_sells_is_refused_before_anything_is_charged(
    fake_discord: FakeDiscord, relay: FakeRelay, second: FakeRelay, start_bot: StartBot
) -> None:
    relay.behaviour.models = ("sora-2",)
    second.behaviour.models = ("sora-2",)
    bot = await start_bot(relays=two_relays(relay, second))
    for locale, words in (("en-US", "No video service offers"), ("zh-CN", "没有视频服务提供")):
        inter = await fake_discord.run_slash(
            "video", {"prompt": "a pro otter", "model": "sora-2-pro"}, locale=locale
        )
        text = await private_reply(inter)
        assert words in text and text.count("\n") == 0
    assert relay.requests_to("submit") == [] and second.requests_to("submit") == []
    assert await used_units(bot, fake_discord) == 0
    assert await bot.db.jobs.get(1) is None


async def test_a_relay_without_a_model_list_still_takes_jobs(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    relay.behaviour.models_answer = "absent"  # many relays 404 /v1/models
    await start_bot()
    await fake_discord.run_slash("video", {"prompt": "an unlisted otter", "model": "sora-2-pro"})
    assert title(await final_message(fake_discord)).startswith("✅")
    assert relay.submits_for("an unlisted otter") == 1


async def test_relay_status_names_what_each_relay_offers(
    fake_discord: FakeDiscord, relay: FakeRelay, second: FakeRelay, start_bot: StartBot
) -> None:
    relay.behaviour.models = ("sora-2", "veo3-fast", "gpt-4o-mini")
    second.behaviour.models_answer = "absent"
    await start_bot(relays=two_relays(relay, second))
    inter = await fake_discord.run_slash(
        "relay", {}, subcommand="status", user_id=fake_discord.owner.id
    )
    await inter.wait_until(lambda i: bool(i.followups) and bool(i.followups[-1].embeds))
    fields = {f["name"]: f["value"] for f in inter.followups[-1].embeds[0]["fields"]}
    assert "Offers: sora-2, veo3-fast" in fields["first"]
    assert "not in the catalogue: gpt-4o-mini" in fields["first"]
    assert "Offers: unknown (no model list); may carry sora-2, sora-2-pro" in fields["second"]
    assert RELAY_KEY not in str(fields)
