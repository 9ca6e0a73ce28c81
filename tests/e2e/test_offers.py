"""Which models the relays sell, end to end: their `/v1/models` decides where a job goes,
what `/relay status` shows, and which models a member is refused before paying."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio
from pydantic import SecretStr

from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import FakeRelay
from bot.jobs.engine import JobUpdate
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


# --- a vendor's model (Veo) through /video: autocomplete, validation, cost -----------------


async def model_menu(fake: FakeDiscord, typed: str = "", locale: str = "en-US") -> dict[str, str]:
    """What the member sees typing into `/video model:` (value -> label)."""
    choices = await fake.autocomplete(
        "video", {"prompt": "a lighthouse", "model": typed}, focused="model", locale=locale
    )
    return {c["value"]: c["name"] for c in choices}


async def test_the_model_menu_shows_veo_only_when_a_relay_sells_it(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    relay.behaviour.models = ("sora-2", "sora-2-pro", "veo3-fast")
    bot = await start_bot()
    reads = len(relay.requests_to("models"))
    menu = await model_menu(fake_discord)
    assert list(menu) == ["sora-2", "sora-2-pro", "veo3-fast"]
    assert menu["veo3-fast"] == "Veo 3 Fast (veo3-fast)"
    assert (await model_menu(fake_discord, "veo", "zh-CN")) == {
        "veo3-fast": "Veo 3 快速版 (veo3-fast)"
    }
    assert len(relay.requests_to("models")) == reads  # the menu reads the cache, not the relay

    relay.behaviour.models = ("sora-2", "sora-2-pro")  # the relay stopped selling it
    await bot.relay.refresh_offers()
    assert "veo3-fast" not in await model_menu(fake_discord)
    assert list(await model_menu(fake_discord, "veo")) == []


async def test_the_storyboard_menu_shows_only_offered_models(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    relay.behaviour.models = ("sora-2",)
    await start_bot()
    choices = await fake_discord.autocomplete("storyboard", {"model": ""}, focused="model")
    assert [c["value"] for c in choices] == ["sora-2"]


async def test_the_model_menu_shows_what_an_unknown_relay_may_carry(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    relay.behaviour.models_answer = "absent"
    await start_bot()
    assert {"sora-2", "sora-2-pro", "veo3", "veo3-fast"} <= set(await model_menu(fake_discord))


async def test_veo_renders_through_the_task_format_charged_its_catalogue_cost(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    relay.behaviour.models = ("sora-2", "veo3-fast")
    relay.behaviour.refuse_unlisted = True
    bot = await start_bot()
    await fake_discord.run_slash(
        "video", {"prompt": "a veo lighthouse", "model": "veo3-fast", "duration": 8}
    )
    message = await final_message(fake_discord)
    assert title(message).startswith("✅") and message.attachments
    [submit] = relay.requests_to("submit")
    assert submit.json["model"] == "veo3-fast" and submit.json["duration"] == "8"
    assert submit.json["hd"] is False
    job = await bot.db.jobs.get(1)
    assert job is not None and job.status == "succeeded" and job.format == "task"
    veo = bot.catalogue.require("veo3-fast")
    assert submit.json["aspect_ratio"] == veo.aspect_ratio(job.request.orientation)
    assert job.relay_id is not None and job.relay_id.startswith("veo3:")
    cost = bot.catalogue.require("veo3-fast").cost[8]
    assert job.cost == cost == 2
    assert await used_units(bot, fake_discord) == cost
    rows = await bot.db.quotas.ledger(fake_discord.guild.id)
    assert sorted(row.kind for row in rows if row.job_id == 1) == ["commit", "reserve"]
    shown = [
        m
        for m in fake_discord.messages.values()
        if not m.deleted and m.attachments and title(m).startswith("✅")
    ]
    assert len(shown) == 1  # delivered once


async def test_veo_at_a_duration_it_lacks_is_refused_naming_what_it_renders(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    relay.behaviour.models = ("sora-2", "veo3-fast")
    bot = await start_bot()
    inter = await fake_discord.run_slash(
        "video", {"prompt": "a long veo", "model": "veo3-fast", "duration": 15}
    )
    text = await private_reply(inter)
    assert text == "veo3-fast renders 8 s only; pick 8 s or another model."
    inter = await fake_discord.run_slash(
        "video", {"prompt": "a veo in hd", "model": "veo3-fast", "duration": 8, "hd": True}
    )
    assert "HD" in await private_reply(inter)
    # Our validation stopped them: the relay (which would answer 400) never saw them.
    assert relay.requests_other_than("models") == []
    assert await used_units(bot, fake_discord) == 0 and await bot.db.jobs.get(1) is None


async def test_veo_goes_to_the_only_relay_that_lists_it(
    fake_discord: FakeDiscord, relay: FakeRelay, second: FakeRelay, start_bot: StartBot
) -> None:
    relay.behaviour.models = ("sora-2", "sora-2-pro")
    relay.behaviour.refuse_unlisted = True
    second.behaviour.models = ("sora-2", "veo3-fast")
    bot = await start_bot(relays=two_relays(relay, second))
    assert "veo3-fast" in await model_menu(fake_discord)
    await fake_discord.run_slash(
        "video", {"prompt": "a second veo", "model": "veo3-fast", "duration": 8}
    )
    assert title(await final_message(fake_discord)).startswith("✅")
    job = await bot.db.jobs.get(1)
    assert job is not None and job.relay_name == "second"
    assert job.relay_id is not None and job.relay_id.startswith("veo3:")
    assert relay.requests_to("submit") == [] and second.submits_for("a second veo") == 1


async def test_a_model_that_stops_being_sold_while_a_job_waits_is_refunded(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    relay.behaviour.models = ("sora-2", "sora-2-pro")
    relay.script(prompt_contains="holder", outcome="never")  # keeps the only slot busy
    bot = await start_bot(max_concurrent_jobs=1)
    holding = asyncio.Event()

    async def on_update(update: JobUpdate) -> None:
        if update.job.id == 1 and update.job.relay_id:
            holding.set()

    bot.engine.add_listener(on_update)
    await fake_discord.run_slash("video", {"prompt": "a holder"})
    await asyncio.wait_for(holding.wait(), 10)  # the relay has it: the slot is taken
    await fake_discord.run_slash("video", {"prompt": "a waiting pro", "model": "sora-2-pro"})
    await fake_discord.wait_for_message(lambda m: "#2" in str(m.embeds))  # queued, reserved
    relay.behaviour.models = ("sora-2",)  # the relay stops selling pro meanwhile
    await bot.relay.refresh_offers()
    [holder] = [job_id for job_id, job in relay.jobs.items() if "holder" in job.prompt]
    relay.finish(holder)
    message = await final_message(fake_discord, 2)
    assert title(message).startswith("❌")
    text = str(message.embeds)
    assert "No video service offers this model right now" in text and "refunded" in text
    job = await bot.db.jobs.get(2)
    assert job is not None and job.error_code == "model_not_offered"
    rows = await bot.db.quotas.ledger(fake_discord.guild.id)
    assert sorted(row.kind for row in rows if row.job_id == 2) == ["refund", "reserve"]
    assert relay.submits_for("a waiting pro") == 0  # nothing was sent, nothing billed
