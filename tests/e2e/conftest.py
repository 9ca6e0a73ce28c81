"""The real bot, end to end: discord.py against the loopback Discord, the relay client
against the loopback relay, SQLite on disk. Nothing of ours is mocked."""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import discord
import pytest
import pytest_asyncio
from PIL import Image

from bot.app import VideoBot, point_at_discord
from bot.clock import FakeClock
from bot.fakes.discord import FakeDiscord
from bot.fakes.discord_testing import fake_discord  # noqa: F401
from bot.fakes.relay import FakeRelay
from bot.settings import Settings
from bot.ui.i18n import t

RELAY_KEY = "sk-relay-e2e-secret-0123456789"


class TestBot(VideoBot):
    """The real bot; only discord.py's 5 s pause between shard IDENTIFYs is skipped."""

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None


@pytest_asyncio.fixture
async def relay() -> AsyncIterator[FakeRelay]:
    async with FakeRelay(api_key=RELAY_KEY) as fake:
        yield fake


@pytest.fixture
def settings(tmp_path: Path, fake_discord: FakeDiscord, relay: FakeRelay) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        discord_token=fake_discord.token,
        discord_api_base=f"{fake_discord.url}/api/v10",
        discord_gateway_url=fake_discord.gateway_url,
        relay_base_url=relay.url,
        relay_api_key=RELAY_KEY,
        relay_format="task",
        database_path=tmp_path / "bot.db",
        progress_edit_interval=0,
        quota_guild_monthly=100,
        quota_user_daily=20,
    )


StartBot = Callable[..., Awaitable[TestBot]]


@pytest_asyncio.fixture
async def start_bot(settings: Settings, fake_discord: FakeDiscord) -> AsyncIterator[StartBot]:
    """`await start_bot(**setting_overrides)`: a logged-in, ready bot with synced commands.
    Several may be started (one after another) on the same database."""
    stack = contextlib.AsyncExitStack()
    old_base = discord.http.Route.BASE
    old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY

    async def start(clock: FakeClock | None = None, **overrides: Any) -> TestBot:
        configured = settings.model_copy(update=overrides)
        point_at_discord(configured.discord_api_base, configured.discord_gateway_url)
        bot = TestBot(
            configured,
            clock=clock or FakeClock(datetime.now(UTC)),
            guild_ready_timeout=0.05,
        )
        assert configured.discord_token is not None
        await bot.login(configured.discord_token.get_secret_value())
        connection = stack.enter_async_context(_connected(bot))
        await connection
        await bot.tree.sync()
        return bot

    async with stack:
        yield start
    discord.http.Route.BASE = old_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway


@contextlib.asynccontextmanager
async def _connected(bot: TestBot) -> AsyncIterator[TestBot]:
    import asyncio

    task = asyncio.create_task(bot.connect(reconnect=True))
    ready = asyncio.create_task(bot.wait_until_ready())
    done, _ = await asyncio.wait({task, ready}, timeout=10, return_when="FIRST_COMPLETED")
    if ready not in done:
        ready.cancel()
        if task in done:
            task.result()
        raise TimeoutError("bot did not become ready")
    try:
        yield bot
    finally:
        if not bot.is_closed():
            await bot.close()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def png_bytes(size: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), "teal").save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def fake_discord_options() -> dict[str, Any]:
    """Generous edit buckets, so tests that don't study rate limits don't wait for them."""
    return {"edit_rate_limit": (50, 1.0)}


FINAL_TITLES = ("✅", "❌", "🚫", "⌛", "🔁")


def title(message: Any) -> str:
    return str(message.embeds[0].get("title", "")) if message.embeds else ""


ATTACHING = tuple(t("live.attaching", locale) for locale in ("en-US", "zh-CN"))


def shows_result(message: Any) -> bool:
    """The job's end is on screen, perhaps still with its file on the way."""
    return not message.deleted and title(message).startswith(FINAL_TITLES)


def is_final(message: Any) -> bool:
    """The job's end is on screen and complete: no file is still being attached."""
    return shows_result(message) and message.content not in ATTACHING


async def final_message(fake: FakeDiscord, job_id: int | None = None, timeout: float = 15) -> Any:
    """The message showing a finished job (wherever it lives), once it is final."""

    def match(message: Any) -> bool:
        if not is_final(message):
            return False
        footer = str(message.embeds[0].get("footer", {}).get("text", ""))
        return job_id is None or f"#{job_id}" in footer

    return await fake.wait_for_message(match, timeout)


def button_ids(message: Any) -> list[str]:
    return [
        c.get("custom_id") or c.get("url")
        for row in message.components
        for c in row.get("components", [])
    ]


def modal_fields(opening: Any, values: dict[str, str]) -> dict[str, str]:
    """Map label fragments to the modal's generated input ids."""
    fields: dict[str, str] = {}
    for item in opening.modal.get("components", []):
        inputs = [item["component"]] if item.get("type") == 18 else item.get("components", [])
        label_of_row = item.get("label", "")
        for component in inputs:
            label = component.get("label") or label_of_row
            for fragment, value in values.items():
                if fragment.lower() in label.lower():
                    fields[component["custom_id"]] = value
    return fields
