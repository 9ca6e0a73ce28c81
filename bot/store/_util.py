"""Small shared pieces: the "leave unchanged" sentinel, timestamps and UTC quota periods."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from typing import Final


class Unset(enum.Enum):
    """Marks a keyword argument the caller did not pass, so `None` can mean "clear"."""

    UNSET = "UNSET"


UNSET: Final = Unset.UNSET


def to_db(when: datetime) -> str:
    """Timestamps are stored as fixed-width UTC ISO-8601 text, so they also sort as text."""
    if when.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous; pass a timezone-aware UTC datetime")
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def from_db(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def from_db_opt(text: str | None) -> datetime | None:
    return None if text is None else from_db(text)


def day_key(when: datetime) -> str:
    """The UTC calendar day a user's daily quota counts in, e.g. `2026-03-15`."""
    return when.astimezone(UTC).strftime("%Y-%m-%d")


def month_key(when: datetime) -> str:
    """The UTC calendar month a guild's monthly quota counts in, e.g. `2026-03`."""
    return when.astimezone(UTC).strftime("%Y-%m")


def next_day(when: datetime) -> datetime:
    """The next 00:00 UTC: when a daily quota resets."""
    day = when.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day + timedelta(days=1)


def next_month(when: datetime) -> datetime:
    """The 1st of next month at 00:00 UTC: when a monthly quota resets."""
    when = when.astimezone(UTC)
    year, month = (when.year + 1, 1) if when.month == 12 else (when.year, when.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)
