"""Interaction tokens never reach a log, at any level, through any handler.

An interaction token lets whoever holds it edit the bot's reply for 15 minutes, and
discord.py writes it at DEBUG inside webhook URLs and gateway payloads. The autouse
`no_secret_leaks` scan of this package fails a test on any token the fake Discord issued;
these tests make sure the DEBUG lines that would carry one were really logged.
"""

from __future__ import annotations

import io
import logging

import pytest

from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import FakeRelay
from bot.logs import REDACTED, install_token_redaction, redact_tokens, setup_logging

from .conftest import StartBot, final_message, title


async def test_a_video_at_debug_logs_webhook_urls_without_their_tokens(
    fake_discord: FakeDiscord,
    relay: FakeRelay,
    start_bot: StartBot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    relay.behaviour.render_polls = 2
    relay.behaviour.retry_after_hint = 0
    stream = io.StringIO()
    handler = setup_logging("DEBUG", stream=stream)  # the bot's own handler, too
    try:
        await start_bot()
        inter = await fake_discord.run_slash("video", {"prompt": "a heron in the rain"})
        await inter.wait_for_response()
        message = await final_message(fake_discord)
        assert title(message).startswith("✅")
    finally:
        logging.getLogger().removeHandler(handler)
    token = inter.token
    lines = [r.getMessage() for r in caplog.records] + stream.getvalue().splitlines()
    assert not [line for line in lines if token in line]
    webhook_lines = [line for line in lines if f"/webhooks/{fake_discord.application_id}/" in line]
    assert webhook_lines, "discord.py logged no webhook request: the check proved nothing"
    assert all(f"/{REDACTED}" in line for line in webhook_lines)
    assert any("INTERACTION_CREATE" in line and REDACTED in line for line in lines)


def test_records_are_redacted_for_every_handler_and_in_tracebacks() -> None:
    install_token_redaction()
    token = "aW50ZXJhY3Rpb246" + "x7-Yq_" * 12
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):  # not the bot's handler: no filter of ours on it
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    log = logging.getLogger("discord.test_redaction")
    keep = Keep(level=logging.DEBUG)
    log.addHandler(keep)
    log.setLevel(logging.DEBUG)
    try:
        log.debug("PATCH %s has returned 200", f"http://x/api/v10/webhooks/42/{token}/messages/1")
        log.debug("WebSocket Event: %s", {"t": "INTERACTION_CREATE", "d": {"token": token}})
        log.info("POST /api/v10/interactions/7/%s/callback", token)
        try:
            raise RuntimeError(f"404, url='http://x/api/v10/webhooks/42/{token}'")
        except RuntimeError:
            log.warning("edit failed", exc_info=True)
    finally:
        log.removeHandler(keep)
        log.setLevel(logging.NOTSET)
    texts = [logging.Formatter().format(record) for record in seen]
    assert len(texts) == 4
    assert all(token not in text for text in texts), texts
    assert all(REDACTED in text for text in texts)
    assert "RuntimeError" in texts[-1]
    for text in ("'access_token': 'kept'", "/webhooks/ with no id", "nothing secret"):
        assert redact_tokens(text) == text
