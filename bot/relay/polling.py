"""Polling shared by the task and official formats: one normalised status, one cadence.

Every dialect a backend parses becomes a `Snapshot`; `poll_events` turns a series of
snapshots into the `Progress`/`Finished` events the engine consumes and decides when to
look again: from an estimate of the finish (`bot.relay.estimate`: the relay's percent
over time, seeded by history), so reads are few mid-render and dense near the end; a
relay's `Retry-After` hint wins. A relay callback (`Wake`) makes the next read now.

Once the relay holds the job it is billed, so a read that fails never ends it: the loop
keeps reading with a growing backoff until the job's deadline (`Unanswered`, `backoff`).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, assert_never

from bot.clock import Clock
from bot.relay.callbacks import Wake
from bot.relay.errors import (
    ContentPolicyError,
    GenerationFailedError,
    InvalidResponseError,
    PolicyStage,
    RelayError,
    TaskNotFoundError,
    TimedOutError,
    classify_failure,
)
from bot.relay.estimate import FinishEstimate, default_seconds
from bot.relay.http import MAX_DETAIL_CHARS, RelayHTTP
from bot.relay.models import (
    Event,
    Finished,
    Phase,
    Progress,
    RelayFormat,
    VideoRequest,
    VideoResult,
)

log = logging.getLogger("bot.relay")

CHECKING_PERCENT = 90.0
MIN_HINT = 0.5
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
    """With no history: the conservative default for the request (3 min when unknown)."""
    if request is None:
        return 180.0
    return default_seconds(request.duration, hd=request.effective_hd, images=bool(request.images))


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
    """The failure a readable status states (`fail_reason`, `error`), by what it says."""
    percent = snapshot.percent if snapshot.percent is not None else last_percent
    default: PolicyStage = (
        "output" if percent is not None and percent >= CHECKING_PERCENT else "prompt"
    )
    return classify_failure(snapshot.error, code=snapshot.error_code, default_stage=default)


@dataclass(frozen=True, slots=True)
class Unanswered:
    """A status read that produced no readable status: the job's state is unknown.

    Kept apart from a `Snapshot` on purpose. A failure the relay *states* in a readable
    status (FAILED plus a reason, however `failure_error` classifies it) ends the job; a
    failure to *read* the status (5xx, a proxy's HTML page, a timeout, a reset connection,
    401/403, an error envelope instead of a task, a status word we don't know) says
    nothing about the job, which the relay may still be rendering and billing.
    """

    error: RelayError


Answer = Snapshot | Unanswered
Fetch = Callable[[], Awaitable[tuple[Answer, float | None]]]

#: A relay may not know a task it has just accepted (a replica behind, a queue not yet
#: written): `task_not_exist` / 404 is "not yet" until both this long after the submit
#: and this many such answers in a row.
NOT_FOUND_GRACE = 120.0
NOT_FOUND_READS = 3
#: While reads fail, wait 4 s, 8 s, 16 s … up to a minute (with jitter) between them.
FIRST_BACKOFF = 4.0
MAX_BACKOFF = 60.0
#: Failed reads in a row before the member is told that the service is not answering.
NO_ANSWER_AFTER = 2

_rng = random.Random()


def backoff(failures: int, hint: float | None = None) -> float:
    """Seconds before the next read after `failures` failed ones in a row. The relay's
    `Retry-After` wins (capped at a minute)."""
    if hint is not None:
        return min(max(hint, MIN_HINT), MAX_BACKOFF)
    base = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** max(failures - 1, 0))
    return min(MAX_BACKOFF, base * (0.8 + 0.4 * _rng.random()))


def _definite(error: RelayError, not_found: int, elapsed: float) -> bool:
    """Whether a failed read still ends the job: a policy refusal is one wherever it is
    said, and a task the relay keeps not knowing long after the submit is gone."""
    if isinstance(error, ContentPolicyError):
        return True
    if isinstance(error, TaskNotFoundError):
        return elapsed >= NOT_FOUND_GRACE and not_found >= NOT_FOUND_READS
    return False


async def poll_events(
    fetch: Fetch,
    *,
    clock: Clock,
    started: float,
    deadline: float | None,
    expected: float,
    relay_id: str,
    fmt: RelayFormat,
    first: Answer | None = None,
    hint: float | None = None,
    immediate: bool = False,
    content_path: str | None = None,
    wake: Wake | None = None,
) -> AsyncGenerator[Event, None]:
    """Poll until the job ends; yields Progress on change and one Finished, or raises.

    `expected`: the prior for the finish, in seconds after `started` (history or the
    default); the relay's percent refines it. `wake`: rung by relay callbacks, each of
    which makes the next read now; the schedule is then only a slow safety net.

    `content_path`: where the relay serves the finished file itself (official format);
    a success without a link then finishes at once instead of waiting for one.

    Only a definite answer ends the job: a failure or cancellation the relay reports in a
    readable status, a policy refusal, or the deadline. A read that fails is retried with
    a growing backoff until the deadline (`Unanswered`), and after `NO_ANSWER_AFTER` of
    them the job's phase says so ("no_answer") until a read succeeds again.
    """
    last: tuple[float | None, Phase] | None = None
    last_percent: float | None = None
    no_link = 0
    failures = 0
    not_found = 0
    answer = first
    estimate = FinishEstimate(expected)
    reads = 0
    if immediate:
        answer, hint = await fetch()
        reads += 1
    while True:
        elapsed = clock.monotonic() - started
        wait: float
        if isinstance(answer, Unanswered):
            error = answer.error
            failures += 1
            not_found = not_found + 1 if isinstance(error, TaskNotFoundError) else 0
            if _definite(error, not_found, elapsed):
                raise error
            log.info(
                "%s: status read failed (%s: %s); reading again",
                relay_id,
                error.code,
                error.detail,
            )
            if (
                failures >= NO_ANSWER_AFTER
                and not not_found
                and last != (last_percent, "no_answer")
            ):
                last = (last_percent, "no_answer")
                yield Progress(last_percent, "no_answer")
            wait = backoff(failures, hint)
        else:
            failures = not_found = 0
            snapshot = answer
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
                        raise GenerationFailedError(
                            snapshot.error or f"the relay cancelled {relay_id}"
                        )
                    case Status.QUEUED | Status.RUNNING:
                        phase = phase_of(snapshot)
                        key = (snapshot.percent, phase)
                        if key != last:
                            last = key
                            yield Progress(snapshot.percent, phase)
                        if snapshot.percent is not None:
                            last_percent = snapshot.percent
                        if snapshot.status is Status.RUNNING:
                            estimate.observe(elapsed, snapshot.percent)
                    case _:
                        assert_never(snapshot.status)
            wait = estimate.next_read(elapsed, reads=reads, callbacks=wake is not None)
            if hint is not None:
                wait = min(max(hint, MIN_HINT), 60.0)
        if deadline is not None:
            remaining = deadline - elapsed
            if remaining <= 0:
                unread = " (the relay was not answering)" if failures else ""
                raise TimedOutError(
                    f"{relay_id} was still unfinished after {elapsed:.0f} s{unread} "
                    f"(last progress {'unknown' if last_percent is None else f'{last_percent:g}%'})"
                )
            wait = min(wait, remaining)
        # A relay's Retry-After is honoured even against a callback.
        if await _pause(clock, wait, wake, interruptible=hint is None):
            log.debug("%s: a relay callback asks for a read now", relay_id)
        answer, hint = await fetch()
        reads += 1


async def _pause(
    clock: Clock, seconds: float, wake: Wake | None, *, interruptible: bool = True
) -> bool:
    """Sleep `seconds` on `clock`, or less if `wake` rings; True when it rang. The read
    after it answers every callback so far (`Wake.answered`)."""
    if wake is None:
        await clock.sleep(seconds)
        return False
    if not interruptible:
        await clock.sleep(seconds)
    elif not wake.is_set:
        sleeper = asyncio.ensure_future(clock.sleep(seconds))
        ringer = asyncio.ensure_future(wake.wait())
        try:
            await asyncio.wait({sleeper, ringer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (sleeper, ringer):
                waiter.cancel()
            await asyncio.gather(sleeper, ringer, return_exceptions=True)
    if wake.is_set:
        wake.answered()  # one read for every callback until it comes back
        return True
    return False


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
    wake: Wake | None = None,
) -> AsyncGenerator[Event, None]:
    """Poll `path` until the job there ends; the task and official formats differ only in
    where they look and how they read the answer. `immediate`: look once before waiting
    (a resumed job may have finished while nobody watched)."""

    async def fetch() -> tuple[Answer, float | None]:
        # One request per look: the loop above owns the backoff while the relay is down.
        try:
            reply = await http.get_json(path, not_found_is_task=True, paced=True, retries=0)
        except RelayError as error:
            return Unanswered(error), error.retry_after
        try:
            return _redacted(http, parse(reply.data)), reply.retry_after
        except RelayError as error:  # no status in it: an envelope, an unknown word …
            # The relay's own words (logged while we wait): never with the key in them.
            error.detail = http.redact(error.detail)
            error.args = (error.detail or error.user_message,)
            return Unanswered(error), reply.retry_after

    async for event in poll_events(
        fetch,
        clock=http.clock,
        started=http.clock.monotonic() if started is None else started,
        deadline=deadline,
        expected=expected,
        relay_id=relay_id,
        fmt=fmt,
        first=None if first is None else _redacted(http, first),
        hint=hint,
        immediate=immediate,
        content_path=content_path,
        wake=wake,
    ):
        yield event


def _redacted(http: RelayHTTP, snapshot: Snapshot) -> Snapshot:
    """A stated failure reason (`fail_reason`, `error.message`) becomes an error's detail,
    which is logged and shown by `--verbose`: never with the key in it."""
    if not snapshot.error:
        return snapshot
    return replace(snapshot, error=http.redact(snapshot.error)[:MAX_DETAIL_CHARS])
