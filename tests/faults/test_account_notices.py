"""Fault: the relay says the account is out of credit (`user_quota_too_low` notice)."""

from __future__ import annotations

import logging
import socket

import aiohttp
import pytest
from pydantic import SecretStr

from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import FakeRelay

from .conftest import StartBot

SECRET = "hook-secret-5f2c"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_low_credit_is_logged_shown_and_posted_once(
    fake_discord: FakeDiscord,
    relay: FakeRelay,
    start_bot: StartBot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    port = free_port()
    ops = fake_discord.channel
    bot = await start_bot(
        relay_webhook_port=port, relay_webhook_secret=SecretStr(SECRET), operator_channel_id=ops.id
    )
    url = f"http://127.0.0.1:{port}/relay-webhook/{SECRET}"

    assert await relay.notify(url, "user_quota_too_low", {"quota": 0.5}) == 204
    posted = await fake_discord.wait_for_message(lambda m: "credit is low" in m.content)
    assert posted.channel_id == ops.id and "0.5 left" in posted.content
    assert any("credit is low (0.5 left)" in r.getMessage() for r in caplog.records)

    assert await relay.notify(url, "user_quota_too_low", {"quota": 0.2}) == 204
    assert await relay.notify(url, "something_else", {}) == 204
    assert [m for m in fake_discord.messages.values() if "credit is low" in m.content] == [posted]

    [health] = await bot.relay.health()
    assert health.low_credit_noticed and health.low_credit == 0.2
    inter = await fake_discord.run_slash(
        "relay", {}, subcommand="status", user_id=fake_discord.owner.id
    )
    await inter.wait_until(lambda i: bool(i.followups) and bool(i.followups[-1].embeds))
    assert "0.2 left" in str(inter.followups[-1].embeds[0])


async def test_a_wrong_secret_or_a_bad_body_is_refused(
    relay: FakeRelay, start_bot: StartBot
) -> None:
    port = free_port()
    await start_bot(relay_webhook_port=port, relay_webhook_secret=SecretStr(SECRET))
    base = f"http://127.0.0.1:{port}/relay-webhook"
    assert await relay.notify(f"{base}/guess", "user_quota_too_low", {"quota": 0}) == 404
    async with aiohttp.ClientSession() as session, session.post(f"{base}/{SECRET}", data=b"{") as r:
        assert r.status == 400
