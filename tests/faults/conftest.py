"""The fault suite: the real bot against both loopback fakes, with one fault at a time.

Fixtures come from `tests/e2e/conftest.py` (imported, not copied). Every test here also
runs under `no_secret_leaks`: at teardown, all log records (DEBUG, every logger), every
message and embed the fake Discord recorded, every request body the bot sent Discord,
and any subprocess output a test registered are searched for the relay key and the
Discord token.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.app import VideoBot
from bot.fakes.discord import FakeDiscord, RecordedAttachment, RecordedMessage
from bot.fakes.discord_testing import fake_discord  # noqa: F401
from bot.fakes.relay import FakeRelay
from tests.e2e.conftest import (  # noqa: F401  (fixtures re-exported for this package)
    RELAY_KEY,
    StartBot,
    TestBot,
    final_message,
    is_final,
    png_bytes,
    relay,
    settings,
    shows_result,
    start_bot,
    title,
)
from tests.e2e.test_errors import private_reply  # noqa: F401

DISCORD_TOKEN = "fake-discord-token-faults-7f3a9c2e51"
SECRETS = {"relay key": RELAY_KEY, "Discord token": DISCORD_TOKEN}
# Server-side loggers of the fakes see the secrets by design (they check them).
FAKE_LOGGERS = ("bot.fakes", "aiohttp")
LOUD_LOGGERS = ("", "discord", "httpx", "httpcore", "bot", "cogs", "asyncio")


@pytest.fixture
def fake_discord_options() -> dict[str, Any]:
    """A distinctive bot token to search for; generous edit buckets."""
    return {"edit_rate_limit": (50, 1.0), "token": DISCORD_TOKEN}


def _needles(interaction_tokens: Iterable[str] = ()) -> dict[str, str]:
    found = dict(SECRETS)
    for name, secret in SECRETS.items():
        found[f"{name} (masked middle)"] = secret[3:-3]
    for n, token in enumerate(interaction_tokens, 1):
        found[f"interaction token {n}"] = token
    return found


def leaks_in(texts: list[tuple[str, str]], interaction_tokens: Iterable[str] = ()) -> list[str]:
    """ "<secret> in <where>" for each secret (or its masked middle) found in a text, and
    for each interaction token given (each lets its holder edit the bot's reply)."""
    needles = _needles(interaction_tokens)
    return [
        f"{name} in {where}"
        for where, text in texts
        for name, needle in needles.items()
        if needle in text
    ]


@dataclass
class LeakScan:
    """Texts to search for secrets at teardown, besides logs and Discord recordings."""

    texts: list[tuple[str, str]] = field(default_factory=list)

    def add(self, where: str, text: str) -> None:
        self.texts.append((where, text))


def _message_texts(message: RecordedMessage) -> Iterator[str]:
    for version in message.history:
        yield version.content
        yield json.dumps(version.embeds, ensure_ascii=False)
        yield json.dumps(version.components, ensure_ascii=False)
        yield " ".join(version.attachment_names)
    yield message.content
    yield json.dumps(message.embeds, ensure_ascii=False)


def _record_text(record: logging.LogRecord) -> str:
    text = record.getMessage()
    if record.exc_info:
        text += "\n" + logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        text += "\n" + record.exc_text
    return text


@pytest.fixture(autouse=True)
def no_secret_leaks(
    caplog: pytest.LogCaptureFixture, fake_discord: FakeDiscord
) -> Iterator[LeakScan]:
    """Fails the test if the relay key, the Discord token or an interaction token reached
    a log (DEBUG included) or a message."""
    for name in LOUD_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)
    scan = LeakScan()
    yield scan
    texts: list[tuple[str, str]] = list(scan.texts)
    records = [
        r
        for when in ("setup", "call", "teardown")
        for r in caplog.get_records(when)
        if not r.name.startswith(FAKE_LOGGERS)
    ]
    texts += [(f"log {r.name}", _record_text(r)) for r in records]
    for message in fake_discord.messages.values():
        texts += [(f"Discord message {message.id}", t) for t in _message_texts(message)]
    for request in fake_discord.requests:
        body = json.dumps(request.body, ensure_ascii=False, default=str)
        texts.append((f"Discord request {request.method} {request.route}", body))
    tokens = [inter.token for inter in fake_discord.interactions.values()]
    leaks = leaks_in(texts, tokens)
    assert not leaks, "secrets leaked: " + "; ".join(leaks[:10])
    assert records or scan.texts, "no log output was captured: the scan would prove nothing"


# -- helpers the fault tests share ---------------------------------------------------------


async def book(bot: VideoBot, fake: FakeDiscord, job_id: int) -> Counter[str]:
    """The quota ledger rows of one job, by kind (reserve, commit, refund)."""
    rows = await bot.db.quotas.ledger(fake.guild.id)
    return Counter(row.kind for row in rows if row.job_id == job_id)


REFUNDED = Counter(reserve=1, refund=1)
CHARGED_ONCE = Counter(reserve=1, commit=1)


def embed_text(message: RecordedMessage) -> str:
    return json.dumps(message.embeds, ensure_ascii=False)


def error_field(message: RecordedMessage) -> str:
    """The "what went wrong" field of a failed job's embed."""
    for embed_field in message.embeds[0].get("fields", []):
        if embed_field.get("name") == "What happened":
            return str(embed_field["value"])
    raise AssertionError(f"no error field in {embed_text(message)}")


def one_sentence(text: str) -> bool:
    """Short and plain: one sentence (two clauses at most), no markup or traces."""
    return (
        0 < len(text) <= 200
        and text.count(". ") == 0
        and "Traceback" not in text
        and "<" not in text
        and "{" not in text
    )


async def still_serves(fake: FakeDiscord, job_id: int, prompt: str = "a lighthouse") -> None:
    """After a fault, the next /video renders and is delivered with its file."""
    inter = await fake.run_slash("video", {"prompt": prompt})
    await inter.wait_for_response()
    message = await final_message(fake, job_id)
    assert title(message).startswith("✅"), embed_text(message)
    assert message.attachments, "the video file was not attached"


async def delivered_once(
    bot: VideoBot, fake: FakeDiscord, relay: FakeRelay, prompt: str, job_id: int = 1
) -> RecordedMessage:
    """The job's end, checked the way every "a paid render is never lost" test needs it:
    its video attached, shown once, submitted to the relay once, charged once."""
    message = await final_message(fake, job_id)
    assert title(message).startswith("✅"), embed_text(message)
    assert message.attachments, "the video file was not attached"
    assert len(deliveries(fake, job_id)) == 1
    assert relay.submits_for(prompt) == 1
    assert await book(bot, fake, job_id) == CHARGED_ONCE
    return message


def deliveries(fake: FakeDiscord, job_id: int) -> list[RecordedMessage]:
    """Every visible message showing the job's final state (or its result with the file
    still on the way: a second message stuck there is a duplicate too)."""
    return [
        m
        for m in fake.messages.values()
        if shows_result(m) and f"#{job_id} " in str(m.embeds[0].get("footer", {}).get("text", ""))
    ]


class CdnWatch(dict[int, RecordedAttachment]):
    """The fake's attachment table, noting which attachments the CDN was asked for."""

    def __init__(self, table: dict[int, RecordedAttachment]) -> None:
        super().__init__(table)
        self.fetched: set[int] = set()

    def get(self, key: int, default: Any = None) -> Any:
        self.fetched.add(key)
        return super().get(key, default)


def watch_cdn(fake: FakeDiscord) -> CdnWatch:
    watch = CdnWatch(fake.attachments)
    fake.attachments = watch
    return watch
