"""Relay faults, through the whole bot: /video in the fake Discord, the answer from the fake relay.

Each test names its fault. The bot must keep serving (a following /video is delivered),
tell the member the truth in one short sentence, and lose nothing: units come back when
the fault is not the member's, and nothing is charged twice.
"""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.fakes.discord import FakeDiscord, RecordedMessage
from bot.fakes.relay import FakeRelay
from bot.ui.i18n import t

from .conftest import (
    CHARGED_ONCE,
    REFUNDED,
    RELAY_KEY,
    StartBot,
    book,
    delivered_once,
    error_field,
    final_message,
    one_sentence,
    still_serves,
    title,
)

HTML_502 = (
    "<html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)


REFUND_NOTE = t("refund.refunded", "en-US", units=1)


def said(code: str, keyword: str) -> str:
    """The catalogue sentence for a relay error code, checked to say what it should."""
    sentence = t(f"error.{code}", "en-US")
    assert keyword in sentence and one_sentence(sentence), sentence
    return sentence


def relay_error(message: str, code: str = "") -> str:
    body: dict[str, Any] = {"message": message, "type": "new_api_error"}
    if code:
        body["code"] = code
    return json.dumps({"error": body}, ensure_ascii=False)


# (fault id, fail_next arguments for the submit, the sentence the member must read)
SUBMIT_FAULTS: list[tuple[str, dict[str, Any], str]] = [
    (
        "relay_401_bad_key",
        {"status": 401, "body": relay_error("无效的令牌 (request id: 2025x)")},
        said("relay_auth", "key"),
    ),
    (
        "relay_401_echoing_the_key",
        {"status": 401, "body": relay_error(f"invalid api key: {RELAY_KEY}")},
        said("relay_auth", "key"),
    ),
    (
        "relay_403_key_credit_used_up",
        {"status": 403, "body": '{"error":{"message":"该令牌额度已用尽","type":"new_api_error"}}'},
        said("relay_credit", "credit"),
    ),
    (
        "relay_403_insufficient_user_quota",
        {
            "status": 403,
            "body": relay_error("用户额度不足, 剩余额度: ＄0.12", "insufficient_user_quota"),
        },
        said("relay_credit", "credit"),
    ),
    *[
        (
            f"relay_{status}_html_page",
            {
                "status": status,
                "body": HTML_502.replace("502 Bad Gateway", f"{status} Proxy Error"),
                "content_type": "text/html",
            },
            said("relay_unavailable", "unreachable"),
        )
        for status in (500, 502, 503)
    ],
    (
        "relay_malformed_json_on_submit",
        {"malformed": True},
        said("invalid_response", "unreadable"),
    ),
]


@pytest.mark.parametrize(
    ("fault", "sentence"),
    [pytest.param(f, s, id=name) for name, f, s in SUBMIT_FAULTS],
)
async def test_submit_fault_fails_the_job_refunds_and_the_bot_keeps_serving(
    fake_discord: FakeDiscord,
    relay: FakeRelay,
    start_bot: StartBot,
    fault: dict[str, Any],
    sentence: str,
) -> None:
    """A relay that refuses the submit: ❌, one true sentence, units back, next /video works."""
    relay.fail_next("submit", **fault)
    bot = await start_bot()
    await fake_discord.run_slash("video", {"prompt": "a calm lake"})
    message: RecordedMessage = await final_message(fake_discord, 1)
    assert title(message).startswith("❌")
    reason, refund = error_field(message).split("\n")
    assert reason == sentence and one_sentence(reason)
    assert refund == REFUND_NOTE
    assert await book(bot, fake_discord, 1) == REFUNDED
    assert len(relay.requests_to("submit")) == 1  # a refused submit is not repeated
    await still_serves(fake_discord, 2)
    assert await book(bot, fake_discord, 2) == CHARGED_ONCE


# (fault id, fail_next arguments for polls, times)
POLL_FAULTS: list[tuple[str, dict[str, Any], int]] = [
    ("relay_429_on_poll_with_retry_after", {"status": 429, "headers": {"Retry-After": "7"}}, 2),
    ("relay_429_on_poll_without_retry_after", {"status": 429}, 2),
    (
        "relay_502_html_on_poll",
        {"status": 502, "body": HTML_502, "content_type": "text/html"},
        2,
    ),
    ("relay_503_json_on_poll", {"status": 503}, 1),
    ("relay_malformed_json_on_poll", {"malformed": True}, 1),
    ("relay_dropped_connection_on_poll", {"drop": True}, 1),
]


@pytest.mark.parametrize(
    ("fault", "times"), [pytest.param(f, n, id=name) for name, f, n in POLL_FAULTS]
)
async def test_transient_poll_fault_is_retried_and_the_video_delivered_once(
    fake_discord: FakeDiscord,
    relay: FakeRelay,
    start_bot: StartBot,
    fault: dict[str, Any],
    times: int,
) -> None:
    """Polls are reads: a busy, broken or garbled poll answer is retried, never resubmitted."""
    relay.fail_next("poll", times=times, **fault)
    clock = FakeClock(datetime.now(UTC))
    bot = await start_bot(clock=clock)
    await fake_discord.run_slash("video", {"prompt": "a red kite"})
    await delivered_once(bot, fake_discord, relay, "a red kite")
    if "Retry-After" in fault.get("headers", {}):
        assert clock.slept.count(7.0) == times  # waited exactly what the relay asked
    await still_serves(fake_discord, 2)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_relay_connection_refused_fails_refunded_then_serves_when_it_is_back(
    fake_discord: FakeDiscord, start_bot: StartBot
) -> None:
    """RELAY_BASE_URL points at a closed port: ❌ unreachable, refunded; the relay comes back
    on that port and the same running bot delivers the next video."""
    port = closed_port()
    bot = await start_bot(relay_base_url=f"http://127.0.0.1:{port}")
    await fake_discord.run_slash("video", {"prompt": "a calm lake"})
    message: RecordedMessage = await final_message(fake_discord, 1)
    reason, refund = error_field(message).split("\n")
    assert reason == said("relay_unavailable", "unreachable")
    assert refund == REFUND_NOTE
    assert await book(bot, fake_discord, 1) == REFUNDED
    async with FakeRelay(api_key=RELAY_KEY, port=port) as back:
        await still_serves(fake_discord, 2)
        assert back.submits_for("a lighthouse") == 1


async def test_relay_read_timeout_on_submit_fails_refunded_without_resubmitting(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """RELAY_TIMEOUT small, the relay answers the submit late: the bot can't know whether the
    job was accepted, so it must not submit again; the member is refunded."""
    relay.fail_next("submit", status=None, delay=0.8)
    bot = await start_bot(relay_timeout=0.2)
    await fake_discord.run_slash("video", {"prompt": "a calm lake"})
    message: RecordedMessage = await final_message(fake_discord, 1)
    reason, refund = error_field(message).split("\n")
    assert reason == said("relay_unavailable", "unreachable")
    assert refund == REFUND_NOTE
    assert await book(bot, fake_discord, 1) == REFUNDED
    assert len(relay.requests_to("submit")) == 1
    await still_serves(fake_discord, 2)


async def test_relay_read_timeout_on_poll_is_retried(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """RELAY_TIMEOUT small, one poll answers late: the poll is repeated, the video delivered."""
    relay.fail_next("poll", status=None, delay=0.8)
    bot = await start_bot(relay_timeout=0.2)
    await fake_discord.run_slash("video", {"prompt": "a red kite"})
    message: RecordedMessage = await final_message(fake_discord, 1)
    assert title(message).startswith("✅") and message.attachments
    assert relay.submits_for("a red kite") == 1
    assert await book(bot, fake_discord, 1) == CHARGED_ONCE
    await still_serves(fake_discord, 2)


async def test_chat_sse_stream_cut_halfway_fails_refunded(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """Chat format: the relay's SSE stream dies after two progress chunks. A chat stream
    can't be re-attached, so the job fails, refunded, and is not submitted again."""
    relay.fail_next("chat", cut_after=2)
    bot = await start_bot(relay_format="chat")
    await fake_discord.run_slash("video", {"prompt": "a calm lake"})
    message: RecordedMessage = await final_message(fake_discord, 1)
    reason, refund = error_field(message).split("\n")
    assert reason == said("stream_interrupted", "dropped")
    assert refund == REFUND_NOTE
    assert await book(bot, fake_discord, 1) == REFUNDED
    assert relay.submits_for("a calm lake") == 1
    await still_serves(fake_discord, 2)


async def test_task_stuck_at_99_percent_past_its_deadline_times_out_refunded(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """The relay says 99 % forever. With JOB_DEADLINE_MINUTES=1 (on the bot's FakeClock, so
    no real waiting) the job ends ⌛ timed out, refunded, after showing the 99 %."""
    # Queued, then 99 % from the second read on: reads are few mid-render, so a longer
    # climb (counted in reads) would not fit in the one-minute deadline, nor would the
    # next job's render.
    relay.behaviour.render_polls = 2
    relay.script(prompt_contains="stuck", outcome="never")
    clock = FakeClock(datetime.now(UTC))
    bot = await start_bot(clock=clock, job_deadline_minutes=1)
    inter = await fake_discord.run_slash("video", {"prompt": "a stuck elevator"})
    message: RecordedMessage = await final_message(fake_discord, 1)
    assert title(message).startswith("⌛")
    reason, refund = error_field(message).split("\n")
    assert reason == said("timed_out", "too long")
    assert refund == REFUND_NOTE
    assert message is inter.original
    shown = [str(v.embeds[0].get("title", "")) for v in message.history if v.embeds]
    assert any("99%" in line for line in shown), shown
    assert 60 <= sum(clock.slept) < 120  # the deadline, on the fake clock
    assert await book(bot, fake_discord, 1) == REFUNDED
    assert relay.submits_for("stuck") == 1
    await still_serves(fake_discord, 2)


async def test_content_policy_failure_at_95_percent_is_charged_and_says_so(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """Moderation of the finished video refuses it at 95 %: the relay charged, so the member
    is charged once, and is told it was the finished video and that there is no refund."""
    relay.script(prompt_contains="forbidden", outcome="policy", fail_at_percent=95.0)
    bot = await start_bot()
    await fake_discord.run_slash("video", {"prompt": "something forbidden"})
    message: RecordedMessage = await final_message(fake_discord, 1)
    assert title(message).startswith("❌")
    reason, refund = error_field(message).split("\n")
    assert "refused by the content policy" in reason and one_sentence(reason)
    assert refund == t("refund.policy_charged", "en-US")
    assert await book(bot, fake_discord, 1) == CHARGED_ONCE
    assert relay.submits_for("forbidden") == 1
    await still_serves(fake_discord, 2)


async def test_relay_faults_leave_no_task_behind(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    """After a burst of different relay faults the engine is idle: nothing left running."""
    for fault in ({"status": 401}, {"status": 503}, {"malformed": True}):
        relay.fail_next("submit", **fault)
    bot = await start_bot()
    for n in range(3):
        await fake_discord.run_slash("video", {"prompt": f"attempt {n}"})
        await final_message(fake_discord, n + 1)
    await asyncio.wait_for(bot.engine.wait_idle(), 5)
    assert bot.engine.queue.running == 0
    await still_serves(fake_discord, 4)


@pytest.mark.parametrize(
    ("headers", "waited"),
    [
        pytest.param({"Retry-After": "20"}, 20.0, id="relay_429_on_submit_with_retry_after"),
        pytest.param({}, 15.0, id="relay_429_on_submit_without_retry_after"),
    ],
)
async def test_a_429_on_submit_is_waited_out_once_then_delivered(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot, headers, waited
) -> None:
    """A 429 means the relay refused the job, so trying again after its wait is safe."""
    relay.fail_next("submit", status=429, body=relay_error("您已达到请求数限制"), headers=headers)
    clock = FakeClock(datetime.now(UTC))
    bot = await start_bot(clock=clock)
    await fake_discord.run_slash("video", {"prompt": "a calm lake"})
    message = await final_message(fake_discord, 1)
    assert title(message).startswith("✅")
    assert len(relay.requests_to("submit")) == 2 and relay.submits_for("a calm lake") == 1
    assert waited in clock.slept
    assert await book(bot, fake_discord, 1) == CHARGED_ONCE


async def test_a_relay_that_stays_rate_limited_fails_the_job_refunded(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot
) -> None:
    relay.fail_next(
        "submit", status=429, body=relay_error("当前分组上游负载已饱和，请稍后再试"), times=2
    )
    bot = await start_bot()
    await fake_discord.run_slash("video", {"prompt": "a calm lake"})
    message = await final_message(fake_discord, 1)
    reason, refund = error_field(message).split("\n")
    assert reason == said("rate_limited", "busy") and refund == REFUND_NOTE
    assert await book(bot, fake_discord, 1) == REFUNDED
    assert relay.submits_for("a calm lake") == 0
