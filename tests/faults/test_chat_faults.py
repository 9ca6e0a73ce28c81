"""Chat-format faults through the whole bot: /video in the fake Discord, a chat relay that
ends its stream oddly, goes quiet, or states an error inside its 200 stream.

Each ends with the job delivered once and charged once, or failed with one plain sentence
and refunded; the relay never sees a second submit.
"""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from bot.fakes.discord import FakeDiscord, RecordedMessage
from bot.fakes.relay import FakeRelay
from bot.settings import RelayConfig
from bot.ui.i18n import t

from .conftest import (
    REFUNDED,
    StartBot,
    book,
    delivered_once,
    error_field,
    final_message,
    one_sentence,
    still_serves,
)

BARE_UNTERMINATED = {
    "chat_dialect": "bare_tail",
    "signed_links": True,
    "chat_done": False,
    "chat_finish_reason": None,
    "chat_usage_chunk": False,
    "chat_keepalive": False,
    "chat_unterminated": True,
}


def shows_link(message: RecordedMessage, url: str) -> bool:
    return url in json.dumps(message.components) + message.content + json.dumps(message.embeds)


async def test_a_bare_signed_link_on_an_unterminated_last_line_is_delivered_once(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """The relay's last text is a bare signed URL (`….mp4?se=…&sig=…`) with no newline, no
    `[DONE]`, no `finish_reason`; the stream just closes mid-line. Today the link is
    dropped after 100 % and the job refunded, although the relay billed it."""
    relay.script(prompt_contains="a paper boat", **BARE_UNTERMINATED)
    bot = await start_bot(relay_format="chat")
    await fake_discord.run_slash("video", {"prompt": "a paper boat"})
    message = await delivered_once(bot, fake_discord, relay, "a paper boat")
    (job_id,) = relay.jobs
    url = relay.video_url(job_id)
    assert "&sig=" in url and shows_link(message, url)
    await still_serves(fake_discord, 2)


async def test_a_chat_relay_silent_for_45_seconds_is_waited_out_and_delivered_once(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """The relay accepts the stream, reports progress, then says nothing for 45 s (the job
    waits upstream) and finishes. Time is scaled 1/30, since an HTTP read timeout runs on
    the real clock: RELAY_TIMEOUT 30 s → 1 s, the 45 s silence → 1.5 s, the default
    RELAY_STREAM_IDLE_SECONDS 600 s → 20 s. Today RELAY_TIMEOUT ends the stream, the job
    fails as interrupted and is refunded, and the billed video is lost."""
    relay.script(prompt_contains="a quiet sea", chat_silence_seconds=1.5, chat_keepalive=False)
    bot = await start_bot(relay_format="chat", relay_timeout=1.0, relay_stream_idle_seconds=20)
    await fake_discord.run_slash("video", {"prompt": "a quiet sea"})
    await final_message(fake_discord, 1, timeout=30)
    await delivered_once(bot, fake_discord, relay, "a quiet sea")
    await still_serves(fake_discord, 2)


async def test_a_chat_relay_silent_past_the_stream_idle_setting_fails_refunded(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """The same silence against a relay configured (per relay, in RELAYS) with less
    patience: the stream is given up as interrupted, refunded, never resubmitted."""
    relay.script(prompt_contains="a quiet sea", chat_silence_seconds=1.5, chat_keepalive=False)
    relays = [
        RelayConfig(
            name="impatient",
            base_url=relay.url,
            api_key=SecretStr(relay.api_key),
            format="chat",
            stream_idle_seconds=0.3,
        )
    ]
    bot = await start_bot(relays=relays, relay_stream_idle_seconds=20)
    await fake_discord.run_slash("video", {"prompt": "a quiet sea"})
    message: RecordedMessage = await final_message(fake_discord, 1)
    reason, _refund = error_field(message).split("\n")
    assert reason == t("error.stream_interrupted", "en-US")
    assert await book(bot, fake_discord, 1) == REFUNDED
    assert relay.submits_for("a quiet sea") == 1


@pytest.mark.parametrize(
    ("error_type", "message"),
    [
        ("server_error", 'upstream said {"error": "<html>502</html>"}'),
        ("new_api_error", "当前分组上游负载已饱和，请稍后再试"),
    ],
)
async def test_a_server_error_stated_in_the_stream_is_unavailable_refunded_and_plain(
    fake_discord: FakeDiscord,
    relay: FakeRelay,
    start_bot: StartBot,
    caplog: pytest.LogCaptureFixture,
    error_type: str,
    message: str,
) -> None:
    """`data: {"error": {"type": "server_error", …}}` mid-stream: the relay's upstream
    failed, not the member. One plain sentence (no JSON or HTML from the relay), refunded;
    the relay's words go to the log. Today it reads "unreadable answer"."""
    relay.script(
        prompt_contains="a red kite",
        outcome="failed",
        chat_error_line=True,
        chat_error_type=error_type,
        chat_error_code="",
        fail_reason=message,
    )
    bot = await start_bot(relay_format="chat")
    await fake_discord.run_slash("video", {"prompt": "a red kite"})
    final: RecordedMessage = await final_message(fake_discord, 1)
    reason, refund = error_field(final).split("\n")
    assert reason in (t("error.relay_unavailable", "en-US"), t("error.rate_limited", "en-US"))
    assert one_sentence(reason)
    assert refund == t("refund.refunded", "en-US", units=1)
    assert "error" not in json.dumps(final.embeds, ensure_ascii=False).replace("error.", "")
    assert await book(bot, fake_discord, 1) == REFUNDED
    assert relay.submits_for("a red kite") == 1
    assert message in caplog.text  # the raw detail is for the operator's log


async def test_an_error_stated_after_the_link_still_delivers_once(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """The relay sent the link, then `data: {"error": …}`: it billed the video, so the
    member gets it, charged once."""
    relay.script(
        prompt_contains="a red kite",
        outcome="failed",
        chat_error_line=True,
        chat_error_after_link=True,
        chat_error_type="server_error",
        fail_reason="upstream connection reset",
        signed_links=True,
    )
    bot = await start_bot(relay_format="chat")
    await fake_discord.run_slash("video", {"prompt": "a red kite"})
    await delivered_once(bot, fake_discord, relay, "a red kite")
