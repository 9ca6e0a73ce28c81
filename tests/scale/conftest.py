"""Several bot processes: real `python -m bot` subprocesses, shards of one bot, against
the loopback fakes (a fake Discord with two guilds, one on each of two shards)."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest_asyncio

from bot.fakes.discord import FakeDiscord, FakeGuild, SteerableClock
from bot.fakes.processes import BotProcess, bot_env
from bot.fakes.relay import FakeRelay

RELAY_KEY = "sk-relay-scale-0123456789abcdef"
DISCORD_TOKEN = "fake-discord-token-scale-51c0ffee"


@pytest_asyncio.fixture
async def discord2() -> AsyncIterator[FakeDiscord]:
    """Two shards; guild `A` lands on shard 0 and guild `B` on shard 1."""
    fake = FakeDiscord(
        shards=2,
        default_guild=False,
        clock=SteerableClock(),
        token=DISCORD_TOKEN,
        edit_rate_limit=(50, 1.0),
    )
    fake.add_guild("A", shard=0)
    fake.add_guild("B", shard=1)
    async with fake:
        yield fake


def guilds(fake: FakeDiscord) -> tuple[FakeGuild, FakeGuild]:
    first, second = fake.guilds.values()
    return first, second


@pytest_asyncio.fixture
async def relay() -> AsyncIterator[FakeRelay]:
    async with FakeRelay(api_key=RELAY_KEY) as fake:
        fake.behaviour.retry_after_hint = 0.05  # the relay asks for quick polls (real time)
        yield fake


Launch = Callable[..., Awaitable[BotProcess]]


@pytest_asyncio.fixture
async def launch(discord2: FakeDiscord, relay: FakeRelay, tmp_path: Path) -> AsyncIterator[Launch]:
    """`await launch(name, *args, **settings)`: a `python -m bot ARGS` process; every one
    still running at teardown is killed, and none may have logged a traceback or a secret."""
    processes: list[BotProcess] = []

    async def start(name: str, *args: str, **settings: object) -> BotProcess:
        env = bot_env(discord2, relay, RELAY_KEY, **settings)
        process = await BotProcess.start(name, env, tmp_path, *args)
        processes.append(process)
        return process

    try:
        yield start
    finally:
        for process in processes:
            with contextlib.suppress(Exception):
                await process.stop(signal.SIGINT, timeout=10)
    for process in processes:
        output = process.stderr + process.stdout
        assert "Traceback" not in output, f"{process.name}:\n{output[-4000:]}"
        assert RELAY_KEY not in output and DISCORD_TOKEN not in output, process.name


async def sync_commands(launch: Launch, **settings: object) -> None:
    """`python -m bot sync`, once, as an operator runs it after a deploy."""
    sync = await launch("sync", "sync", **settings)
    assert await sync.wait(30) == 0, sync.stderr
    assert "synced" in sync.stdout
