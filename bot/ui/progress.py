"""Text progress bars and time estimates for the one message a job keeps editing.

Relays report progress unevenly (some only in phases, some jump from 0 to 90), so the
estimate uses the observed rate only once there is enough of it, and falls back to how
long such a video typically takes.
"""

from __future__ import annotations

import math
from datetime import datetime

from bot.catalogue import Catalogue, shipped_catalogue
from bot.relay.models import VideoRequest
from bot.ui.records import JobLike

FILLED = "▰"
EMPTY = "▱"

_TYPICAL_BY_DURATION: dict[int, float] = {10: 120.0, 15: 240.0, 25: 360.0}
_HD_EXTRA = 480.0
_RATE_MIN_PERCENT = 5.0


def progress_bar(percent: float | None, width: int = 20) -> str:
    """`▰▰▰▱▱▱ 42%`; None (no number from the relay yet) shows an empty bar and `…`."""
    width = max(1, width)
    if percent is None or math.isnan(percent):
        return f"{EMPTY * width} …"
    percent = min(100.0, max(0.0, percent))
    filled = math.floor(percent / 100 * width)  # full only at 100: never promise too early
    return f"{FILLED * filled}{EMPTY * (width - filled)} {math.floor(percent)}%"


def format_duration(seconds: float) -> str:
    """Compact elapsed/remaining time: `42s`, `1m 05s`, `1h 02m`."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def typical_render_seconds(request: VideoRequest, catalogue: Catalogue | None = None) -> float:
    """How long a render like this usually takes: its model's catalogue entry says (the
    bot's catalogue, else the shipped one); a model neither knows, by duration and HD."""
    entry = (catalogue or shipped_catalogue()).get(request.model)
    if entry is not None:
        return entry.typical_seconds(request)
    seconds = _TYPICAL_BY_DURATION.get(request.duration, _TYPICAL_BY_DURATION[25])
    if request.effective_hd:
        seconds += _HD_EXTRA
    return seconds


def elapsed_seconds(job: JobLike, now: datetime) -> float:
    """Time since the render started (or was asked for), up to when it finished."""
    start = job.started_at or job.created_at
    end = job.finished_at or now
    return max(0.0, (end - start).total_seconds())


def estimate_remaining(
    job: JobLike, now: datetime, typical_seconds: float | None = None
) -> float | None:
    """Seconds left, or None when finished or already past any honest guess."""
    if job.status in {"succeeded", "failed", "cancelled", "timed_out", "interrupted"}:
        return None
    typical = typical_render_seconds(job.request) if typical_seconds is None else typical_seconds
    if job.status in {"queued", "submitting"} or job.started_at is None:
        return typical
    elapsed = elapsed_seconds(job, now)
    percent = job.progress
    if percent is not None and _RATE_MIN_PERCENT < percent < 100 and elapsed > 0:
        return elapsed * (100 - percent) / percent
    remaining = typical - elapsed
    return remaining if remaining > 0 else None
