"""Polling shared by the task and official formats: one normalised status, one cadence.

Every dialect a backend parses becomes a `Snapshot`; `poll_events` turns a series of
snapshots into the `Progress`/`Finished` events the engine consumes and decides when to
look again. The cadence starts quick (~2 s, a video can be refused at once) and slows
with elapsed time toward a cap set by how long the video is expected to take, so a
3-minute render costs well under 40 requests; a relay's `Retry-After` hint wins.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, assert_never

from bot.clock import Clock
from bot.relay.errors import (
    ContentPolicyError,
    GenerationFailedError,
    InvalidResponseError,
    PolicyStage,
    RelayError,
    TimedOutError,
)
from bot.relay.http import RelayHTTP, guess_stage, looks_like_policy
from bot.relay.models import (
    Event,
    Finished,
    Phase,
    Progress,
    RelayFormat,
    VideoRequest,
    VideoResult,
)

CHECKING_PERCENT = 90.0
FIRST_INTERVAL = 2.0
MIN_HINT = 0.5
MAX_INTERVAL = 15.0
SUCCESS_WITHOUT_LINK_POLLS = 3


class Status(Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Snapshot:
    status: Status
    percent: float | None = None
    url: str | None = None
    thumbnail_url: str | None = None
    error: str = ""
    error_code: str = ""


def expected_seconds(request: VideoRequest | None) -> float:
    """The vendor's figures: 10 s video 1–3 min, 15 s about 2 min more, HD about 8 min more."""
    if request is None:
        return 180.0
    expected = 120.0
    if request.duration == 15:
        expected += 120.0
    elif request.duration == 25:
        expected += 300.0
    if request.effective_hd:
        expected += 480.0
    if request.images:
        expected += 30.0
    return expected


def next_interval(elapsed: float, expected: float, hint: float | None = None) -> float:
    """Seconds until the next poll: 2 s at first, +1 s every 12 s, capped by the expectation."""
    cap = min(MAX_INTERVAL, max(6.0, expected / 12.0))
    interval = min(cap, FIRST_INTERVAL + max(elapsed, 0.0) / 12.0)
    if hint is not None:
        interval = min(max(hint, MIN_HINT), 60.0)
    return interval


def phase_of(snapshot: Snapshot) -> Phase:
    match snapshot.status:
        case Status.QUEUED:
            return "queued"
        case Status.RUNNING:
            if snapshot.percent is not None and snapshot.percent >= CHECKING_PERCENT:
                return "checking"
            return "rendering"
        case Status.SUCCEEDED | Status.FAILED | Status.CANCELLED:
            return "finishing"
        case _:
            assert_never(snapshot.status)


def failure_error(snapshot: Snapshot, last_percent: float | None) -> RelayError:
    text = f"{snapshot.error} {snapshot.error_code}".strip()
    percent = snapshot.percent if snapshot.percent is not None else last_percent
    if looks_like_policy(text):
        default: PolicyStage = (
            "output" if percent is not None and percent >= CHECKING_PERCENT else "prompt"
        )
        return ContentPolicyError(snapshot.error or text, stage=guess_stage(text, default))
    return GenerationFailedError(snapshot.error or text or "the relay reported a failure")


Fetch = Callable[[], Awaitable[tuple[Snapshot, float | None]]]


async def poll_events(
    fetch: Fetch,
    *,
    clock: Clock,
    started: float,
    deadline: float | None,
    expected: float,
    relay_id: str,
    fmt: RelayFormat,
    first: Snapshot | None = None,
    hint: float | None = None,
    content_path: str | None = None,
) -> AsyncGenerator[Event, None]:
    """Poll until the job ends; yields Progress on change and one Finished, or raises.

    `content_path`: where the relay serves the finished file itself (official format);
    a success without a link then finishes at once instead of waiting for one.
    """
    last: tuple[float | None, Phase] | None = None
    last_percent: float | None = None
    no_link = 0
    snapshot = first
    while True:
        if snapshot is not None:
            match snapshot.status:
                case Status.SUCCEEDED:
                    if snapshot.url or content_path:
                        # No link but a content path: OpenAI's own shape; the file is
                        # fetched from the relay, so there is nothing to wait for.
                        yield Progress(100.0, "finishing")
                        yield Finished(
                            VideoResult(
                                snapshot.url,
                                relay_id,
                                fmt,
                                snapshot.thumbnail_url,
                                content_path=None if snapshot.url else content_path,
                            )
                        )
                        return
                    no_link += 1
                    if no_link > SUCCESS_WITHOUT_LINK_POLLS:
                        raise InvalidResponseError(
                            f"the relay says {relay_id} succeeded but gives no video link"
                        )
                case Status.FAILED:
                    raise failure_error(snapshot, last_percent)
                case Status.CANCELLED:
                    raise GenerationFailedError(snapshot.error or f"the relay cancelled {relay_id}")
                case Status.QUEUED | Status.RUNNING:
                    phase = phase_of(snapshot)
                    key = (snapshot.percent, phase)
                    if key != last:
                        last = key
                        yield Progress(snapshot.percent, phase)
                    if snapshot.percent is not None:
                        last_percent = snapshot.percent
                case _:
                    assert_never(snapshot.status)
        elapsed = clock.monotonic() - started
        wait = next_interval(elapsed, expected, hint)
        if deadline is not None:
            remaining = deadline - elapsed
            if remaining <= 0:
                raise TimedOutError(
                    f"{relay_id} was still unfinished after {elapsed:.0f} s "
                    f"(last progress {'unknown' if last_percent is None else f'{last_percent:g}%'})"
                )
            wait = min(wait, remaining)
        await clock.sleep(wait)
        snapshot, hint = await fetch()


async def follow(
    http: RelayHTTP,
    path: str,
    parse: Callable[[Any], Snapshot],
    *,
    relay_id: str,
    fmt: RelayFormat,
    deadline: float | None,
    expected: float,
    started: float | None = None,
    first: Snapshot | None = None,
    hint: float | None = None,
    immediate: bool = False,
    content_path: str | None = None,
) -> AsyncGenerator[Event, None]:
    """Poll `path` until the job there ends; the task and official formats differ only in
    where they look and how they read the answer. `immediate`: look once before waiting
    (a resumed job may have finished while nobody watched)."""

    async def fetch() -> tuple[Snapshot, float | None]:
        reply = await http.get_json(path, not_found_is_task=True, paced=True)
        return parse(reply.data), reply.retry_after

    if immediate:
        first, hint = await fetch()
    async for event in poll_events(
        fetch,
        clock=http.clock,
        started=http.clock.monotonic() if started is None else started,
        deadline=deadline,
        expected=expected,
        relay_id=relay_id,
        fmt=fmt,
        first=first,
        hint=hint,
        content_path=content_path,
    ):
        yield event
