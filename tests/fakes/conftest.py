"""Fake Discord fixtures, shared from the package so tests/e2e can import them too."""

from bot.fakes.discord_testing import bot_factory, fake_discord, fake_discord_options

__all__ = ["bot_factory", "fake_discord", "fake_discord_options"]
