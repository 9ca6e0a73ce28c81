"""The secret scan itself: it would notice a leak (every other test here runs under it)."""

from __future__ import annotations

import logging

import pytest

from .conftest import DISCORD_TOKEN, RELAY_KEY, LeakScan, leaks_in


def test_leak_scan_catches_the_key_and_the_token_even_masked(
    caplog: pytest.LogCaptureFixture, no_secret_leaks: LeakScan
) -> None:
    """A log line with the relay key, an embed with the masked token: both are reported."""
    logging.getLogger("bot.relay").info("relay said: bad key %s", RELAY_KEY)
    masked = f"Bot {DISCORD_TOKEN[:3]}***{DISCORD_TOKEN[3:-3]}***"
    texts = [(f"log {r.name}", r.getMessage()) for r in caplog.records]
    texts.append(("Discord message 1", f'[{{"description": "{masked}"}}]'))
    found = leaks_in(texts)
    caplog.clear()  # this test's own leak is deliberate
    logging.getLogger("bot").debug("clean line")
    assert "relay key in log bot.relay" in found
    assert found[-1] == "Discord token (masked middle) in Discord message 1"


def test_leak_scan_catches_an_interaction_token() -> None:
    """The scan is given every token the fake Discord issued; one in a log is reported."""
    token = "aW50ZXJhY3Rpb246" + "q" * 40
    texts = [("log discord.webhook", f"PATCH /webhooks/1/{token}/messages/@original")]
    assert leaks_in(texts, [token]) == ["interaction token 1 in log discord.webhook"]
    assert leaks_in(texts, []) == []
    logging.getLogger("bot").debug("clean line")  # the autouse scan needs something to read
