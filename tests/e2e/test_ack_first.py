"""A burst of commands is acknowledged before anything else is done for any of them: the
deferral is each interaction's first request, and no job message (follow-up) of the burst
is posted before the last deferral, even when Discord is slow to take one of them."""

from __future__ import annotations

import asyncio

from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import FakeRelay

from .conftest import StartBot

BURST = 40
CALLBACK = "/interactions/{interaction_id}/{token}/callback"
FOLLOWUP = "/webhooks/{app_id}/{token}"


async def test_a_burst_is_acknowledged_before_any_follow_up(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    bot = await start_bot(quota_user_daily=1000, quota_guild_monthly=1000)
    await bot.db.characters.add(
        fake_discord.guild.id,
        "captain",
        character_id="ch_1",
        username="captain.sora",
        permalink=None,
        picture_url=None,
        created_by=fake_discord.alice.id,
    )
    # Discord is slow to take the first command's deferral: the others' job messages must
    # still wait for it (acknowledgements go first), not overtake it.
    first_callback = asyncio.Event()

    async def slow_first_ack(method: str, path: str) -> None:
        if path.endswith("/callback") and not first_callback.is_set():
            first_callback.set()
            await asyncio.sleep(0.2)

    fake_discord.answer_delay = slow_first_ack
    before = len(fake_discord.requests)
    # Half of them name a saved character: its alias is read from the database, which
    # must wait until every command of the burst is acknowledged.
    prompts = [f"@captain sails boat {n}" if n % 2 else f"a boat {n}" for n in range(BURST)]
    burst = await asyncio.gather(*(fake_discord.run_slash("video", {"prompt": p}) for p in prompts))
    for inter in burst:
        await inter.wait_until(lambda i: bool(i.followups), timeout=30)
    made = fake_discord.requests[before:]
    callbacks = [n for n, r in enumerate(made) if r.route == CALLBACK]
    followups = [n for n, r in enumerate(made) if r.route == FOLLOWUP and r.method == "POST"]
    assert len(callbacks) == BURST and len(followups) >= BURST
    assert all(i.response is not None and i.response.type == 5 for i in burst)
    # Per interaction: its first request is the deferral.
    for inter in burst:
        mine = [r for r in made if str(inter.id) in r.path or inter.token in r.path]
        assert mine[0].route == CALLBACK, [r.route for r in mine]
    # Across the burst: every deferral before the first job message.
    assert max(callbacks) < min(followups), (callbacks, followups)
