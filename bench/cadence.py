"""Benchmark 3: relay requests and Discord edits for one 3-minute render, per format.

A real 3-minute render would make the run long, so the bot, both fakes and the relay's
render clock share a `ScaledClock`: bot time runs `speed` times faster than real time
(sleeps are divided by it). Everything is counted in bot time: the relay finishes 180
bot-seconds after the submit, the fake Discord applies its 5-edits-per-5-s bucket in
bot seconds, and the gap between visible edits is read from the fake's message history
on the same clock. Event-loop delays are stretched by `speed` too, so gaps are, if
anything, overstated.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.report import Figure
from bot.app import VideoBot
from bot.clock import ScaledClock
from bot.fakes.discord import FakeDiscord, FakeInteraction
from bot.fakes.discord_testing import running_bot
from bot.fakes.relay import Behaviour, FakeRelay
from bot.relay.models import RelayFormat
from bot.settings import Settings

NAME = "3-min render"
RENDER_SECONDS = 180.0
MAX_REQUESTS = 40
MAX_GAP = 5.5  # "progress visible at least every ~5 s"
RELAY_KEY = "sk-bench-relay-0123456789abcdef"
FORMATS: tuple[RelayFormat, ...] = ("task", "official", "chat")
RELAY_ENDPOINTS = {
    "task": ("task_submit", "task_poll"),
    "official": ("official_submit", "official_poll"),
    "chat": ("chat",),
}


class _Bot(VideoBot):
    """The real bot; only discord.py's pause between shard IDENTIFYs is skipped."""

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None


async def run(jobs: int = 10, *, speed: float = 30.0) -> list[Figure]:
    """`jobs` concurrent 3-minute renders in each format, one fresh bot per format."""
    figures: list[Figure] = []
    errors = 0
    for fmt in FORMATS:
        per_format, failed = await _one_format(fmt, jobs, speed)
        figures += per_format
        errors += failed
    figures.append(Figure(NAME, "jobs not delivered", errors, "", "==", 0))
    return figures


async def _one_format(fmt: RelayFormat, jobs: int, speed: float) -> tuple[list[Figure], int]:
    clock = ScaledClock(speed)
    with tempfile.TemporaryDirectory(prefix="bench-cadence-") as scratch:
        async with (
            FakeDiscord(clock=clock, callback_deadline=3.0 * speed) as discord,
            FakeRelay(api_key=RELAY_KEY, clock=clock) as relay,
        ):
            relay.behaviour = Behaviour(
                render_seconds=RENDER_SECONDS,
                chat_seconds=RENDER_SECONDS,
                progress=[float(p) for p in range(3, 100, 3)],  # the chat stream's steps
            )
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                discord_token=discord.token,
                discord_api_base=f"{discord.url}/api/v10",
                discord_gateway_url=discord.gateway_url,
                relay_base_url=relay.url,
                relay_api_key=RELAY_KEY,
                relay_format=fmt,
                database_path=Path(scratch) / "bot.db",
                max_concurrent_jobs=jobs,
                max_concurrent_jobs_per_guild=jobs,
                quota_guild_monthly=10**8,
                quota_user_daily=10**8,
            )
            # As `python -m bot` runs it: what exists once ready is out of the full GC passes.
            bot = _Bot(settings, clock=clock, guild_ready_timeout=0.05, freeze_gc=True)
            async with running_bot(discord, bot):
                sent = await asyncio.gather(
                    *(discord.run_slash("video", {"prompt": f"{fmt} {n}"}) for n in range(jobs))
                )
                deadline = time.monotonic() + RENDER_SECONDS * 3 / speed + 30
                done = []
                while time.monotonic() < deadline:
                    done = await bot.db.jobs.recent_for_guild(discord.guild.id, jobs)
                    if len(done) == jobs and all(j.delivered_at for j in done):
                        break
                    await asyncio.sleep(0.05)
                delivered = sum(1 for j in done if j.status == "succeeded" and j.delivered_at)
            return _figures(fmt, jobs, sent, relay, discord), jobs - delivered


def _figures(
    fmt: RelayFormat,
    jobs: int,
    sent: list[FakeInteraction],
    relay: FakeRelay,
    discord: FakeDiscord,
) -> list[Figure]:
    wanted = RELAY_ENDPOINTS[fmt]
    calls = [r for r in relay.requests if r.endpoint in wanted]
    per_job = Counter(r.path.rsplit("/", 1)[-1] for r in calls if r.endpoint.endswith("_poll"))
    most = (max(per_job.values(), default=0) + 1) if fmt != "chat" else len(calls) / jobs
    edits = [r for r in discord.requests if r.method == "PATCH"]
    gaps = [_max_gap(i) for i in sent]
    limit = ("==", 1.0) if fmt == "chat" else ("<=", float(MAX_REQUESTS))
    return [
        Figure(NAME, f"{fmt}: relay requests/job, mean", len(calls) / jobs),
        Figure(NAME, f"{fmt}: relay requests/job, max", most, "", *limit),  # type: ignore[arg-type]
        Figure(NAME, f"{fmt}: Discord edits/job", len(edits) / jobs),
        Figure(
            NAME,
            f"{fmt}: max gap between progress edits",
            max(gaps, default=float("nan")),
            "s",
            "<=",
            MAX_GAP,
            note="bot clock",
        ),
        Figure(NAME, f"{fmt}: Discord 429s", discord.rate_limited_count, "", "==", 0),
    ]


FINAL_TITLES = ("✅", "❌", "🚫", "⌛", "🔁")


def _max_gap(interaction: FakeInteraction) -> float:
    """Longest time the job's message went unchanged between its first and its final
    state (the result; the file attached after it is delivery, not progress)."""
    message = interaction.original
    if message is None:
        return float("nan")
    shown = []
    for version in message.history:
        if version.flags & 128:  # 128: "thinking…"
            continue
        shown.append(version.at)
        title = str(version.embeds[0].get("title", "")) if version.embeds else ""
        if title.startswith(FINAL_TITLES):
            break
    if len(shown) < 2:
        return float("nan")
    return max(b - a for a, b in itertools.pairwise(shown))
