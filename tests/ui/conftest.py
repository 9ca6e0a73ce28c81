"""A plain job record for UI tests: the UI reads jobs through `JobLike`, not the store."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import discord
import pytest

from bot.relay.models import VideoRequest
from bot.ui.embeds import (
    DESCRIPTION_LIMIT,
    FIELD_COUNT_LIMIT,
    FIELD_NAME_LIMIT,
    FIELD_VALUE_LIMIT,
    FOOTER_LIMIT,
    TITLE_LIMIT,
    TOTAL_LIMIT,
)
from bot.ui.records import JobStatus

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class FakeJob:
    id: int = 42
    user_id: int = 1001
    locale: str = "en-US"
    request: VideoRequest = field(default_factory=lambda: VideoRequest(prompt="a cat on a piano"))
    relay_id: str | None = None
    status: JobStatus = "queued"
    progress: float | None = None
    phase: str | None = None
    result_url: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    error_detail: str | None = None
    cost: int = 2
    created_at: datetime = NOW - timedelta(minutes=2)
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def is_final(self) -> bool:
        return self.status not in {"queued", "submitting", "running"}


def make_job(**fields: Any) -> FakeJob:
    return replace(FakeJob(), **fields)


def assert_within_limits(embed: discord.Embed) -> None:
    """Every limit Discord enforces on one embed."""
    assert len(embed.title or "") <= TITLE_LIMIT
    assert len(embed.description or "") <= DESCRIPTION_LIMIT
    assert len(embed.fields) <= FIELD_COUNT_LIMIT
    for item in embed.fields:
        assert 0 < len(item.name or "") <= FIELD_NAME_LIMIT
        assert 0 < len(item.value or "") <= FIELD_VALUE_LIMIT
    assert len(embed.footer.text or "") <= FOOTER_LIMIT
    assert len(embed) <= TOTAL_LIMIT


@pytest.fixture
def now() -> datetime:
    return NOW
