"""Issue 9, access: a job belongs to its server, DMs make no videos, and a job whose first
message is lost to the network still reaches its member.

A second server (`fake.add_guild`, before the bot logs in) shares its members with the
first: alice is in both, and the owner manages both. Nothing done from the second server
or from a DM may show, spend or cancel the first server's jobs.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from bot.app import VideoBot
from bot.fakes.discord import DROP, FakeDiscord, FakeGuild, FakeInteraction, RecordedMessage
from bot.fakes.relay import FakeRelay
from bot.ui.i18n import t
from tests.e2e.conftest import modal_fields

from .conftest import (
    CHARGED_ONCE,
    StartBot,
    delivered_once,
    deliveries,
    final_message,
    one_sentence,
    private_reply,
    title,
)

OTHER_SERVER = "belongs to another server"
GUILD_ONLY = t("generic.guild_only", "en-US")


async def ledger(bot: VideoBot, guild_id: int) -> Counter[tuple[int | None, str]]:
    """A server's quota ledger as (job, kind) counts."""
    rows = await bot.db.quotas.ledger(guild_id, limit=10_000)
    return Counter((row.job_id, row.kind) for row in rows)


async def two_servers(
    fake: FakeDiscord, start_bot: StartBot, **settings: Any
) -> tuple[VideoBot, FakeGuild]:
    """The bot in the default server and a second one (added before the bot logs in)."""
    other = fake.add_guild("Other Server")
    bot = await start_bot(**settings)
    assert {g.id for g in bot.guilds} == {fake.guild.id, other.id}
    return bot, other


async def finished_job(fake: FakeDiscord, prompt: str = "a red kite") -> RecordedMessage:
    """Job #1, made and delivered in the first server."""
    inter = await fake.run_slash("video", {"prompt": prompt})
    await inter.wait_for_response()
    done = await final_message(fake, 1)
    assert title(done).startswith("✅")
    return done


async def click_from(
    fake: FakeDiscord, guild: FakeGuild, message: RecordedMessage, custom_id: str, **kw: Any
) -> FakeInteraction:
    """A click whose interaction says it happened in `guild`: what a modified client, or a
    component copied into another server, sends. The bot must judge by the job's server."""
    component = message.find_component(custom_id)
    assert component is not None, message.custom_ids()
    return await fake.dispatch_interaction(
        3,
        {"custom_id": custom_id, "component_type": component["type"]},
        guild_id=guild.id,
        message=message,
        **kw,
    )


async def test_remix_of_another_servers_job_is_refused_and_charges_nobody(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    bot, other = await two_servers(fake_discord, start_bot)
    await finished_job(fake_discord)
    home_before = await ledger(bot, fake_discord.guild.id)

    for user in (fake_discord.alice.id, fake_discord.owner.id):  # a member and an admin
        remix = await fake_discord.run_slash(
            "remix", {"job": 1, "prompt": "make it night"}, guild_id=other.id, user_id=user
        )
        sentence = await private_reply(remix)
        assert OTHER_SERVER in sentence and one_sentence(sentence), sentence
        assert "a red kite" not in sentence  # nothing of the job is shown

    # Nor can its video become the other server's character.
    character = await fake_discord.run_slash(
        "character",
        {"alias": "kite", "start": 1, "end": 3, "job": 1},
        subcommand="create",
        guild_id=other.id,
    )
    assert OTHER_SERVER in await private_reply(character)
    assert relay.requests_to("characters") == []
    assert await bot.db.characters.get(other.id, "kite") is None

    assert relay.requests_to("remix") == [] and relay.submits_for("a red kite") == 1
    assert await bot.db.jobs.get(2) is None
    assert await ledger(bot, fake_discord.guild.id) == home_before
    assert await ledger(bot, other.id) == Counter()


async def test_rerun_remix_and_details_buttons_from_another_server_are_refused(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    bot, other = await two_servers(fake_discord, start_bot)
    done = await finished_job(fake_discord)
    home_before = await ledger(bot, fake_discord.guild.id)

    for custom_id in ("job:rerun:1", "job:remix:1", "job:details:1"):
        click = await click_from(fake_discord, other, done, custom_id)
        sentence = await private_reply(click)
        assert OTHER_SERVER in sentence and one_sentence(sentence), (custom_id, sentence)
        assert click.response_type != 9, "the remix form opened"

    # The remix form opened at home, submitted with the other server's context.
    opening = await fake_discord.click_button(done, "job:remix:1")
    await opening.wait_for_response()
    assert opening.response_type == 9
    other_channel = next(iter(other.channels.values()))
    submit = await fake_discord.submit_modal(
        opening,
        modal_fields(opening, {"": "make it blue"}),
        guild_id=other.id,
        channel_id=other_channel.id,
    )
    assert OTHER_SERVER in await private_reply(submit)

    assert relay.submits_for("a red kite") == 1 and relay.requests_to("remix") == []
    assert await bot.db.jobs.get(2) is None
    assert await ledger(bot, fake_discord.guild.id) == home_before
    assert await ledger(bot, other.id) == Counter()


async def test_jobs_show_and_cancel_from_another_server_are_refused(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    held = asyncio.Event()
    relay.fail_next("poll", status=None, wait=held, times=1000)
    bot, other = await two_servers(fake_discord, start_bot)
    mine = await fake_discord.run_slash("video", {"prompt": "a slow sunrise"})
    await mine.wait_until(lambda i: bool(i.followups))
    row = await bot.db.jobs.get(1)
    assert row is not None and not row.is_final

    owner = fake_discord.owner.id  # manages the other server too: no admin there is one here
    show = await fake_discord.run_slash(
        "jobs", {"id": 1}, subcommand="show", guild_id=other.id, user_id=owner
    )
    shown = await private_reply(show)
    assert OTHER_SERVER in shown and "a slow sunrise" not in shown
    assert not (show.original and show.original.embeds)
    cancel = await fake_discord.run_slash(
        "jobs", {"id": 1}, subcommand="cancel", guild_id=other.id, user_id=owner
    )
    assert OTHER_SERVER in await private_reply(cancel)
    row = await bot.db.jobs.get(1)
    assert row is not None and not row.is_final
    # Its owner, typing a job number in the other server, is offered none of this one's.
    here = await fake_discord.autocomplete("jobs", {"id": ""}, focused="id", subcommand="show")
    assert [choice["value"] for choice in here] == [1]
    there = await fake_discord.autocomplete(
        "jobs", {"id": ""}, focused="id", subcommand="cancel", guild_id=other.id
    )
    assert there == []

    held.set()
    done = await final_message(fake_discord, 1)
    assert title(done).startswith("✅") and len(deliveries(fake_discord, 1)) == 1
    assert Counter(kind for (_, kind) in await ledger(bot, fake_discord.guild.id)) == CHARGED_ONCE
    assert await ledger(bot, other.id) == Counter()


@pytest.mark.parametrize(
    ("name", "options", "subcommand"),
    [
        ("video", {"prompt": "a lighthouse at dusk"}, None),
        ("storyboard", {"duration": 15}, None),
        ("remix", {"job": 1, "prompt": "make it night"}, None),
        (
            "character",
            {"alias": "kitty", "start": 1, "end": 3, "url": "https://clips.example/cat.mp4"},
            "create",
        ),
        ("character", {}, "list"),
        ("jobs", {"id": 1}, "show"),
        ("jobs", {"id": 1}, "cancel"),
        ("jobs", {}, "list"),
        ("queue", {}, None),
    ],
)
async def test_video_commands_in_a_dm_are_refused_with_one_sentence(
    fake_discord: FakeDiscord,
    relay: FakeRelay,
    start_bot: StartBot,
    name: str,
    options: dict[str, Any],
    subcommand: str | None,
) -> None:
    bot = await start_bot()
    await finished_job(fake_discord)
    before = await ledger(bot, fake_discord.guild.id)
    requests_before = len(relay.requests)

    inter = await fake_discord.run_slash(name, options, subcommand=subcommand, dm=True)
    assert inter.guild_id is None and "member" not in inter.payload
    assert await private_reply(inter) == GUILD_ONLY
    assert not any(m.embeds for m in inter.messages), "something was shown in the DM"
    assert relay.requests[requests_before:] == [], "the relay was called from a DM"
    assert await bot.db.jobs.get(2) is None
    assert await ledger(bot, fake_discord.guild.id) == before
    daily = await bot.db.quotas.status(None, fake_discord.alice.id)
    assert daily.user_used == 0


async def test_the_dm_refusal_is_in_the_members_language(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    await start_bot()
    inter = await fake_discord.run_slash("video", {"prompt": "一座灯塔"}, dm=True, locale="zh-CN")
    assert await private_reply(inter) == t("generic.guild_only", "zh-CN")
    assert relay.requests_to("task_submit") == []


async def test_buttons_in_a_dm_are_refused(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """A finished video's buttons, clicked where no server can pay (a DM)."""
    bot = await start_bot()
    done = await finished_job(fake_discord)
    before = await ledger(bot, fake_discord.guild.id)
    for custom_id in ("job:rerun:1", "job:remix:1"):
        click = await fake_discord.dispatch_interaction(
            3, {"custom_id": custom_id, "component_type": 2}, message=done, dm=True
        )
        assert await private_reply(click) == GUILD_ONLY
    assert relay.submits_for("a red kite") == 1 and relay.requests_to("remix") == []
    assert await ledger(bot, fake_discord.guild.id) == before


async def test_commands_that_spend_or_touch_jobs_are_registered_server_only(
    fake_discord: FakeDiscord, start_bot: StartBot
) -> None:
    """What the bot synced: Discord offers these nowhere but in servers."""
    await start_bot()
    synced = {c["name"]: c for c in fake_discord.registered_commands()}
    server_only = {
        "video",
        "storyboard",
        "remix",
        "character",
        "jobs",
        "queue",
        "quota-admin",
        "relay",
        "settings",
        "settings-admin",
    }
    assert server_only <= synced.keys()
    for name in server_only:
        command = synced[name]
        assert command["contexts"] == [0], (name, command["contexts"])
        assert command["dm_permission"] is False, name
    # /quota spends nothing and knows DMs (it shows only the member's own day there).
    assert synced.keys() - server_only == {"quota"}


async def test_a_first_message_lost_to_the_network_still_reaches_the_member(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """The follow-up that shows the job dies with the connection (no HTTP answer). The
    bot fills its "thinking" reply instead; the job is delivered once and charged once."""
    bot = await start_bot()
    dropped = fake_discord.fail_next("POST", r"^/webhooks/\d+/[^/]+$", status=DROP)
    inter = await fake_discord.run_slash("video", {"prompt": "a paper boat"})
    done = await delivered_once(bot, fake_discord, relay, "a paper boat")

    assert dropped.hits == 1 and fake_discord.requests_matching("POST", "^/webhooks/", status=0)
    assert inter.original is not None and done.id == inter.original.id  # the reply itself
    assert not inter.original.thinking


async def test_a_first_message_and_its_retry_lost_to_the_network_go_to_the_channel(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """Both the follow-up and the edit of the reply die: the job shows in the channel."""
    bot = await start_bot()
    dropped = fake_discord.fail_next(
        "*", r"^/webhooks/\d+/[^/]+(/messages/@original)?$", DROP, times=2
    )
    await fake_discord.run_slash("video", {"prompt": "a paper plane"})
    done = await delivered_once(bot, fake_discord, relay, "a paper plane")

    assert dropped.hits == 2
    assert done.channel_id == fake_discord.channel.id and done.interaction_id is None
