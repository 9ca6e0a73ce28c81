"""Issue 10, row 4: the bot's memory while it delivers `jobs` large videos at once.

The bot runs as its own process (`python -m bot`) so its peak resident memory (VmHWM) is
its own. `jobs` renders finish together; the fake relay's file server holds every
download until all of them have asked, then answers them at once, so the bot has
`jobs` files of `size` bytes in flight at the same moment (10 × 8 MiB in the full run).
Each delivery is done when the fake Discord holds the uploaded file.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from bench.procs import RELAY_KEY, BotProcess, bot_env
from bench.report import Figure
from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import Behaviour, FakeRelay

NAME = "delivery"
RSS_LIMIT_MB = 110.0
MiB = 1 << 20


async def _until(condition: object, limit: float) -> bool:
    deadline = time.monotonic() + limit
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def run(jobs: int = 10, size: int = 8 * MiB, *, limit: float = 120.0) -> list[Figure]:
    """`jobs` videos of `size` bytes delivered at once; the bot's peak RSS."""
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as scratch:
        workdir = Path(scratch)
        async with (
            FakeDiscord(heartbeat_interval_ms=41250, callback_deadline=30.0) as discord,
            FakeRelay(api_key=RELAY_KEY) as relay,
        ):
            relay.behaviour = Behaviour(render_polls=2, video_bytes=size)
            gate = asyncio.Event()
            relay.fail_next("files", times=jobs, wait=gate)  # answers normally, once let go
            env = bot_env(
                discord,
                relay,
                workdir,
                max_concurrent_jobs=jobs,
                max_concurrent_jobs_per_guild=jobs,
            )
            async with BotProcess(env, workdir) as bot:
                await asyncio.sleep(1.0)  # start-up settles (command sync, first reads)
                before = bot.sample()
                sent = await asyncio.gather(
                    *(discord.run_slash("video", {"prompt": f"large #{n}."}) for n in range(jobs))
                )
                asked = await _until(lambda: len(relay.requests_to("files")) >= jobs, limit)
                gate.set()
                began = time.monotonic()

                def attached() -> int:
                    return sum(
                        1
                        for i in sent
                        for m in i.messages
                        if any(a.size == size for a in m.attachments)
                    )

                await _until(lambda: attached() >= jobs, limit)
                took = time.monotonic() - began
                await asyncio.sleep(1.0)
                after = bot.sample()
                delivered = attached()
        downloads = len(relay.requests_to("files"))
        return [
            Figure(NAME, "bot RSS before the renders", before.rss / MiB, "MB"),
            Figure(
                NAME,
                f"bot peak RSS, {jobs} deliveries of {size / MiB:g} MiB at once",
                after.peak_rss / MiB,
                "MB",
                "<",
                RSS_LIMIT_MB,
                note="VmHWM of the bot process",
            ),
            Figure(NAME, "bot RSS after", after.rss / MiB, "MB"),
            Figure(
                NAME,
                "videos attached",
                delivered,
                "",
                "==",
                jobs,
                note=f"{downloads} downloads{'' if asked else ', not all asked at once'}",
            ),
            Figure(NAME, "all released → all attached", took, "s"),
        ]
