"""Benchmark 1: how fast `/video` is acknowledged when many arrive at once.

The bot runs as its own process (`python -m bot`) so the figure is the bot's alone, not
shared with the fakes' event loop. Latency is measured on the fake's clock, from the
moment each INTERACTION_CREATE frame was written to the gateway socket to the moment the
deferral (callback type 5) arrived; that includes the loopback hop both ways and the
fake's own handling, so it slightly overstates the bot's share.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

from bench.procs import RELAY_KEY, BotProcess, bot_env, sample
from bench.report import Figure, percentile
from bot.fakes.discord import FakeDiscord, FakeInteraction
from bot.fakes.relay import Behaviour, FakeRelay

NAME = "ack"
TARGET_P99_MS = 30.0
SINGLES = 20


async def _until(condition: object, limit: float) -> bool:
    """Poll `condition()` every 10 ms; False when `limit` seconds ran out."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.01)
    return False


async def run(commands: int = 200, *, limit: float = 60.0) -> list[Figure]:
    """Send `commands` `/video` interactions in one burst; report deferral latency."""
    with tempfile.TemporaryDirectory(prefix="bench-ack-") as scratch:
        workdir = Path(scratch)
        async with (
            FakeDiscord(heartbeat_interval_ms=41250, callback_deadline=30.0) as discord,
            FakeRelay(api_key=RELAY_KEY) as relay,
        ):
            # Renders never end during the benchmark: only the commands are measured.
            relay.behaviour = Behaviour(progress=[0.0, 10.0, 20.0], outcome="never")
            async with BotProcess(bot_env(discord, relay, workdir), workdir) as bot:
                # One command first, so lazy imports and first-use caches are warm.
                # Its job reaches the relay (the relay client's first request builds its
                # connection pool), then the bot is left to go quiet.
                warm = await discord.run_slash("video", {"prompt": "warm-up"})
                await _until(lambda: warm.followups and relay.submits_for("warm-up"), limit)
                await asyncio.sleep(0.5)
                single = []
                for n in range(SINGLES):  # one at a time: the bot's own cost per command
                    one = await discord.run_slash("video", {"prompt": f"single {n}"})
                    await one.wait_for_response(limit)
                    single.append(one)
                await asyncio.sleep(0.5)
                started = bot.sample()
                me0 = sample(os.getpid())
                burst = await asyncio.gather(
                    *(
                        discord.run_slash("video", {"prompt": f"bench prompt {n}"})
                        for n in range(commands)
                    )
                )
                await _until(lambda: all(i.responded for i in burst), limit)
                acked = bot.sample()
                me1 = sample(os.getpid())
                await _until(lambda: all(i.followups for i in burst), limit)
                posted = bot.sample()
        figures = _single_figures(single)
        figures += _figures(burst, started.cpu_seconds, acked.cpu_seconds, posted.cpu_seconds)
        fakes_cpu = me1.cpu_seconds - me0.cpu_seconds
        return [*figures, Figure(NAME, "fakes' CPU until all acked", fakes_cpu, "s")]


def _latencies(interactions: list[FakeInteraction]) -> list[float]:
    return [
        (i.response.at - i.dispatched_at) * 1000
        for i in interactions
        if i.response is not None and i.response.type == 5 and i.dispatched_at is not None
    ]


def _single_figures(single: list[FakeInteraction]) -> list[Figure]:
    latencies = _latencies(single)
    return [
        Figure(NAME, "ack latency, one at a time, p50", percentile(latencies, 50), "ms"),
        Figure(
            NAME,
            "ack latency, one at a time, p99",
            percentile(latencies, 99),
            "ms",
            "<",
            TARGET_P99_MS,
            note=f"{len(latencies)} commands",
        ),
    ]


def _figures(
    burst: list[FakeInteraction], cpu0: float, cpu_acked: float, cpu_posted: float
) -> list[Figure]:
    deferred = [i for i in burst if i.response is not None and i.response.type == 5]
    latencies = _latencies(burst)
    first_sent = min(i.dispatched_at or 0.0 for i in burst)
    last_sent = max(i.dispatched_at or 0.0 for i in burst)
    shown = [
        (i.original.history[-1].at - i.dispatched_at) * 1000
        for i in burst
        if i.followups and i.original is not None and i.dispatched_at is not None
    ]
    n = len(burst)
    return [
        Figure(NAME, f"deferred of {n} at once", len(deferred), "", "==", n),
        Figure(NAME, f"ack latency, {n} at once, p50", percentile(latencies, 50), "ms"),
        Figure(
            NAME,
            f"ack latency, {n} at once, p99",
            percentile(latencies, 99),
            "ms",
            "<",
            TARGET_P99_MS,
        ),
        Figure(NAME, f"ack latency, {n} at once, max", max(latencies, default=float("nan")), "ms"),
        Figure(
            NAME,
            "burst written in",
            (last_sent - first_sent) * 1000,
            "ms",
            note="gateway frames, back to back",
        ),
        Figure(
            NAME,
            "job message shown p99",
            percentile(shown, 99),
            "ms",
            note=f"{len(shown)}/{n} follow-ups posted",
        ),
        Figure(NAME, "bot CPU until all acked", cpu_acked - cpu0, "s"),
        Figure(NAME, "bot CPU until all posted", cpu_posted - cpu0, "s"),
    ]
