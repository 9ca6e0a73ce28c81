"""Pytest helpers for running a real discord.py bot against `FakeDiscord`.

Import the fixtures into a conftest (`from bot.fakes.discord_testing import fake_discord,
bot_factory  # noqa: F401`) or use `running_bot` directly in the sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import discord
import pytest
import pytest_asyncio
from discord.ext import commands

from bot.fakes.discord import FakeDiscord, SteerableClock

BotT = TypeVar("BotT", bound=discord.Client)


class FakeFriendlyBot(commands.AutoShardedBot):
    """AutoShardedBot that skips discord.py's 5 s pause between IDENTIFYs.

    Real Discord needs the pause (identify concurrency 1); the fake does not, and
    multi-shard tests would otherwise wait 5 s per extra shard.
    """

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None


def bot_intents() -> discord.Intents:
    """Intents.default() without message_content: what the real bot asks for."""
    intents = discord.Intents.default()
    intents.message_content = False
    return intents


def make_bot(fake: FakeDiscord, **kwargs: Any) -> FakeFriendlyBot:
    """A `FakeFriendlyBot` wired to the fake's application id; kwargs go to the constructor."""
    kwargs.setdefault("command_prefix", commands.when_mentioned)
    kwargs.setdefault("intents", bot_intents())
    kwargs.setdefault("application_id", fake.application_id)
    kwargs.setdefault("guild_ready_timeout", 0.05)
    return FakeFriendlyBot(**kwargs)


@contextlib.asynccontextmanager
async def running_bot(
    fake: FakeDiscord, bot: BotT, *, ready_timeout: float = 10.0
) -> AsyncIterator[BotT]:
    """Log `bot` in to `fake`, wait for on_ready, and close everything on exit."""
    restore = fake.point_discord_py_here()
    task: asyncio.Task[None] | None = None
    try:
        assert fake.token is not None
        await bot.login(fake.token)
        task = asyncio.create_task(bot.connect(reconnect=True), name="fake-bot-connect")
        ready = asyncio.create_task(bot.wait_until_ready(), name="fake-bot-ready")
        done, _ = await asyncio.wait(
            {task, ready}, timeout=ready_timeout, return_when="FIRST_COMPLETED"
        )
        if ready not in done:
            ready.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ready
            if task in done:
                task.result()
            raise TimeoutError("bot did not become ready against the fake")
        yield bot
    finally:
        await bot.close()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        restore()


@pytest.fixture
def fake_discord_options() -> dict[str, Any]:
    """Constructor kwargs for `fake_discord`; override with
    `@pytest.mark.parametrize("fake_discord_options", [{"upload_limit": 1024}])`."""
    return {}


@pytest_asyncio.fixture
async def fake_discord(fake_discord_options: dict[str, Any]) -> AsyncIterator[FakeDiscord]:
    """A started FakeDiscord with a `SteerableClock` (`fake.clock.advance(900)`)."""
    options: dict[str, Any] = {"clock": SteerableClock(), "heartbeat_interval_ms": 5000}
    options.update(fake_discord_options)
    async with FakeDiscord(**options) as fake:
        yield fake


BotFactory = Callable[..., Awaitable[FakeFriendlyBot]]


@pytest_asyncio.fixture
async def bot_factory(fake_discord: FakeDiscord) -> AsyncIterator[BotFactory]:
    """`await bot_factory(setup=async fn(bot), **bot_kwargs)` returns a ready bot.

    `setup` runs after login and before the gateway connects (add cogs, commands,
    sync the tree there). All bots are closed at teardown.
    """
    stack = contextlib.AsyncExitStack()

    async def factory(
        setup: Callable[[FakeFriendlyBot], Awaitable[None]] | None = None,
        **kwargs: Any,
    ) -> FakeFriendlyBot:
        bot = make_bot(fake_discord, **kwargs)
        if setup is not None:
            original = bot.setup_hook

            async def hook() -> None:
                await original()
                await setup(bot)

            bot.setup_hook = hook  # type: ignore[method-assign]
        return await stack.enter_async_context(running_bot(fake_discord, bot))

    async with stack:
        yield factory
