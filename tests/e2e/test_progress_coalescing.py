"""The job message as a member watches it: states a few milliseconds apart are written
once, and the final state is never held back by the progress cadence."""

from __future__ import annotations

from bot.clock import SystemClock
from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import FakeRelay

from .conftest import StartBot, final_message, title


async def test_states_milliseconds_apart_are_written_once(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """The relay refuses the submit: queued, submitting and failed follow each other within
    milliseconds. After the job's first message, one edit shows the failure. (On the real
    clock: the final state must cut the 5 s cadence short, so the test still takes ms.)"""
    await start_bot(clock=SystemClock(), progress_edit_interval=5)
    relay.fail_next("task_submit", status=400)
    inter = await fake_discord.run_slash("video", {"prompt": "a boat"})
    message = await final_message(fake_discord)
    assert message is inter.original
    shown = [v for v in message.history if not v.flags & 128]  # 128: "thinking…"
    assert title(message).startswith("❌"), title(message)
    # The follow-up that posted the job, then exactly one edit: the final state.
    assert len(shown) == 2, [str(v.embeds[0].get("title")) if v.embeds else "" for v in shown]
    assert str(shown[-1].embeds[0].get("title")).startswith("❌")
