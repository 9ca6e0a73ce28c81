"""The job engine: everything between "a member asked" and "the link is ready".

A job is a row in SQLite before the relay is called, and every step after is written
back, so a restart loses nothing: task- and official-format jobs that the relay already
accepted resume polling; queued jobs run; a chat stream cut by the restart cannot be
resumed, so that job ends as interrupted and its units are refunded.

Several processes may share one database. Each engine has an owner id and runs only the
jobs whose lease it holds (`JobRepo.claim`): waiting jobs are claimed in queue order under
the caps, counted over every process; leases are renewed every third of
`lease_seconds` and released when a job ends or the engine stops. A process that dies
stops renewing: once its leases expire, another engine takes its jobs over under the
same rules as a restart (an accepted job resumes polling and is never submitted again; a
job cut mid-submit or mid-stream is interrupted and refunded). An engine that finds a
lease it held taken over (it was paused too long) stops acting on that job, and its
writes, conditioned on the lease, change nothing. A cancel asked in a process that
doesn't run the job is written to the row; the owner acts on it within `POLL_SECONDS`.

The engine knows nothing about Discord. It tells listeners about each change
(`JobUpdate`) and the Discord layer renders them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from bot.catalogue import Catalogue, shipped_catalogue
from bot.clock import Clock, SystemClock
from bot.jobs.costs import Prices
from bot.jobs.queue import JobQueue
from bot.relay.errors import ContentPolicyError, ModelNotOfferedError, RelayError, TimedOutError
from bot.relay.estimate import from_history
from bot.relay.http import watch_submits
from bot.relay.models import (
    Event,
    Finished,
    Progress,
    RelayFormat,
    Submitted,
    VideoRequest,
    VideoResult,
)
from bot.store.images import ImagesGoneError
from bot.store.interface import Store
from bot.store.jobs import WAITING, Claimed, Holder, Job, NewJob

log = logging.getLogger(__name__)

UpdateKind = Literal["queued", "started", "progress", "finished"]


@dataclass(frozen=True, slots=True)
class JobUpdate:
    """One change to a job, as listeners see it."""

    kind: UpdateKind
    job: Job
    queue_position: int | None = None


JobListener = Callable[[JobUpdate], Awaitable[None]]


class Relay(Protocol):
    """What the engine needs from its relays (see `bot.relay.pool.RelayPool`)."""

    def generate(
        self,
        request: VideoRequest,
        *,
        deadline: float | None = None,
        relay_name: str | None = None,
        history: Callable[[str], Awaitable[float | None]] | None = None,
    ) -> AsyncIterator[Event]: ...

    def resume(
        self,
        relay_id: str,
        format: RelayFormat,
        *,
        deadline: float | None = None,
        relay_name: str | None = None,
        expected: float | None = None,
        elapsed: float = 0.0,
    ) -> AsyncIterator[Event]: ...

    def offers(self, model: str) -> bool:
        """Whether some healthy relay sells `model` (or may: its model list is unknown)."""
        ...


class JobError(Exception):
    """A job action a user asked for can't be done; `code` picks the translated sentence."""

    def __init__(self, code: str, job_id: int) -> None:
        super().__init__(f"{code}: job {job_id}")
        self.code = code
        self.job_id = job_id


CancelReason = Literal["user", "admin"]
#: Why an engine stops a job's task: a cancel, or a lease another process took over.
StopReason = Literal["user", "admin", "lost"]
#: How long a relay's render history is trusted before it is read again.
HISTORY_TTL = 300.0
# A cancelled job's `error_detail`: whether its units came back.
CANCEL_REFUNDED = "refunded"
CANCEL_CHARGED = "charged"
WATCHDOG_GRACE = 120.0
#: Real seconds between two looks for cancels asked elsewhere and for waiting jobs.
POLL_SECONDS = 1.0
#: Owner ids of the engines running in this interpreter: alive whatever their pid says.
_LIVE_OWNERS: set[str] = set()


def new_owner_id(host: str | None = None) -> str:
    """A process's lease owner id: host, pid and a random part, unique to this run."""
    return f"{host or socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _is_dead(owner: str, pid: int) -> bool:
    """Whether an earlier engine recorded on this host is gone (see `JobRepo.register`).

    An engine of this interpreter is alive. Any other with our own pid is a previous run
    (a container restarted keeps pid 1); otherwise the pid says."""
    if owner in _LIVE_OWNERS:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # someone else's process: alive
        return False
    return False


class _AlreadyFinal(Exception):
    """The job became final (cancelled) before it was submitted."""


def _reason(text: str) -> CancelReason:
    """A cancel reason read back from the database."""
    return "admin" if text == "admin" else "user"


class _LeaseLost(Exception):
    """Another process took the job over: this engine must leave it alone."""


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asked for a job made from another one, where, and where its answer goes.

    `guild_id` is required: a job acts only in the server that owns it, and a server's
    quota must never pay for a request made from somewhere else.
    """

    guild_id: int
    user_id: int
    roles: Sequence[int] = ()
    is_admin: bool = False
    channel_id: int | None = None
    interaction_token: str | None = None
    locale: str | None = None

    def new_job(
        self,
        source: Job,
        *,
        request: VideoRequest,
        format: RelayFormat,
        relay_name: str = "default",
    ) -> NewJob:
        return NewJob(
            guild_id=self.guild_id,
            relay_name=relay_name,
            channel_id=self.channel_id or source.channel_id,
            user_id=self.user_id,
            request=request,
            format=format,
            interaction_token=self.interaction_token,
            locale=self.locale or source.locale,
            parent_job_id=source.id,
        )


def render_deadline(request: VideoRequest, base_minutes: float) -> float:
    """Seconds a render may take before it is abandoned; longer for 15/25 s and HD."""
    minutes = base_minutes
    if request.duration == 15:
        minutes += 5
    elif request.duration == 25:
        minutes += 10
    if request.effective_hd:
        minutes += 15
    return minutes * 60


class JobEngine:
    """Runs jobs against the relay under global and per-guild caps, durably."""

    def __init__(
        self,
        db: Store,
        relay: Relay,
        *,
        costs: Prices | None = None,
        catalogue: Catalogue | None = None,
        clock: Clock | None = None,
        max_running: int = 8,
        max_per_guild: int = 3,
        deadline_minutes: float = 20.0,
        owner: str | None = None,
        host: str | None = None,
        lease_seconds: float = 30.0,
        autotick: bool = True,
    ) -> None:
        self.db = db
        self.relay = relay
        #: The models: a request is resolved against its entry before any unit is reserved.
        if catalogue is None:
            catalogue = costs.catalogue if costs is not None else shipped_catalogue()
        self.catalogue: Catalogue = catalogue
        self.costs = costs or Prices(self.catalogue)
        self.clock = clock or SystemClock()
        self.deadline_minutes = deadline_minutes
        self.queue = JobQueue(max_running, max_per_guild)
        self.host = host or socket.gethostname()
        self.owner = owner or new_owner_id(self.host)
        self.lease_seconds = lease_seconds
        self.autotick = autotick
        #: Live processes sharing the database, as of the last renewal.
        self.processes = 1
        self._share_listeners: list[Callable[[int], None]] = []
        self._shared_once = False
        self._renewed_at = float("-inf")  # on self.clock's monotonic scale
        self._ticker: asyncio.Task[None] | None = None
        self._listeners: list[JobListener] = []
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._cancel_reasons: dict[int, StopReason] = {}
        # Jobs whose video the relay has reported finished: their delivery runs to the end.
        self._finishing: set[int] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._idle = asyncio.Event()
        self._idle.set()
        # (relay, model, duration, hd) -> (read at, typical render seconds or None)
        self._history: dict[tuple[str, str, int, bool], tuple[float, float | None]] = {}

    # -- wiring ---------------------------------------------------------------------

    def add_listener(self, listener: JobListener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: JobListener) -> None:
        self._listeners.remove(listener)

    def add_share_listener(self, listener: Callable[[int], None]) -> None:
        """`listener(n)` whenever the number of live processes sharing the database
        changes (and once at start): budgets meant for the whole bot divide by it."""
        self._share_listeners.append(listener)

    async def start(self) -> None:
        """Take over every job no live process holds (a previous run's included) and
        start the waiting ones that fit."""
        self._stopping = False
        _LIVE_OWNERS.add(self.owner)
        dead = await self.db.jobs.register(
            self.owner, host=self.host, pid=os.getpid(), is_dead=_is_dead
        )
        if dead:
            log.info("%d earlier run(s) on this host are gone: taking their jobs now", dead)
        await self._renew()
        await self._take_over()
        await self._pump()
        if self.autotick:
            self._ticker = asyncio.create_task(self._tick_forever(), name="job-leases")

    async def stop(self, *, release: bool = True) -> None:
        """Stop working without touching the jobs' state, so the next start (here or in
        another process) resumes them. `release` expires this engine's leases at once,
        as a clean shutdown does; without it the jobs wait for their leases to run out,
        as after a crash."""
        self._stopping = True
        _LIVE_OWNERS.discard(self.owner)
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        if release:
            try:
                await self.db.jobs.release(self.owner)
            except Exception:
                log.exception("could not release the job leases of %s", self.owner)

    # -- leases -----------------------------------------------------------------------

    async def tick(self, *, renew: bool = True) -> None:
        """One round of lease work: act on cancels asked elsewhere, renew the leases (and
        drop jobs another process took over), take over jobs whose lease expired, and
        claim waiting jobs. The engine runs it by itself (`autotick`); tests call it."""
        for job_id, reason in (await self.db.jobs.cancel_requests(self.owner)).items():
            if job_id not in self._cancel_reasons and job_id not in self._finishing:
                self._in_background(self._act_on_cancel(job_id, _reason(reason)))
        if renew:
            await self._renew()
            await self._take_over()
        await self._pump()

    async def _tick_forever(self) -> None:
        # Real time, not self.clock: a test's FakeClock would make this a busy loop.
        # Leases are stamped on self.clock; renewing every third of a lease leaves room.
        # Rounds slowed by a busy loop are counted in the clock's time too, so a lease
        # is renewed once a third of it has passed on the clock that stamps it.
        every = max(1, round(self.lease_seconds / 3 / POLL_SECONDS))
        count = 0
        while True:
            await asyncio.sleep(POLL_SECONDS)
            count += 1
            due = self.clock.monotonic() - self._renewed_at >= self.lease_seconds / 3
            try:
                await self.tick(renew=due or count % every == 0)
            except Exception:
                log.exception("job leases: one round failed")

    async def _renew(self) -> None:
        self._renewed_at = self.clock.monotonic()
        renewed = await self.db.jobs.renew(
            self.owner, lease_seconds=self.lease_seconds, host=self.host, pid=os.getpid()
        )
        for job_id, task in list(self._tasks.items()):
            if job_id in renewed.held or task.done():
                continue
            job = await self.db.jobs.get(job_id)
            if job is None or job.is_final or job.lease_owner == self.owner:
                continue  # ended meanwhile, or its task is finishing it
            log.warning("job %s: taken over by %s; leaving it", job_id, job.lease_owner)
            self._cancel_reasons[job_id] = "lost"
            task.cancel()
        if renewed.processes != self.processes or not self._shared_once:
            self._shared_once = True
            self.processes = renewed.processes
            for listener in self._share_listeners:
                try:
                    listener(renewed.processes)
                except Exception:
                    log.exception("a budget share listener failed")

    async def _take_over(self) -> None:
        """Run the jobs at a relay that no live process holds."""
        for job in await self.db.jobs.take_over(self.owner, lease_seconds=self.lease_seconds):
            if job.id in self._tasks:
                continue
            if job.relay_id and job.format != "chat":
                log.info("job %s: resuming %s polling of %s", job.id, job.format, job.relay_id)
                self._spawn(job)
                if job.cancel_requested:
                    self._in_background(self._act_on_cancel(job.id, _reason(job.cancel_requested)))
            else:
                # A chat stream can't be re-attached, and a submit cut before the relay's
                # answer may or may not have been accepted: either way nothing will deliver.
                log.warning("job %s: cut while %s; refunding", job.id, job.status)
                await self._finish(job.id, "interrupted", error_code="interrupted", refund=True)

    def _in_background(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def wait_idle(self) -> None:
        """Wait until no job is running or waiting (for tests and graceful shutdown)."""
        await self._idle.wait()

    # -- what members ask for ---------------------------------------------------------

    async def submit(
        self, new: NewJob, *, roles: Sequence[int] = (), is_admin: bool = False
    ) -> Job:
        """Reserve the cost and queue the job; raises `QuotaExceededError` when it won't fit,
        `InvalidRequest` (before anything is reserved) for a model the catalogue doesn't
        know or a rule of its model the request breaks, `ModelNotAllowedError` (before
        anything is reserved) when the server's admins don't allow the model: commands,
        reruns, remixes and storyboards all pass here; and `ModelNotOfferedError` (nothing
        reserved) when no relay sells its model now."""
        new = dataclasses.replace(new, request=self.catalogue.resolve(new.request))
        if new.request.remix_of is None and not self.relay.offers(new.request.model):
            # A remix goes where its source is, whatever the lists say; anything else
            # would only be refunded after the pool found no relay for it.
            raise ModelNotOfferedError(f"no relay offers {new.request.model!r}")
        cost = self.costs.cost(new.request)
        job = await self.db.jobs.create(new, cost=cost, roles=roles, is_admin=is_admin)
        log.info(
            "job %s: queued (guild %s, user %s, %s units)", job.id, job.guild_id, job.user_id, cost
        )
        self._idle.clear()
        claimed = await self._claim()
        # Its place as it joined the line, even when this claim starts it at once.
        await self._emit(JobUpdate("queued", job, self.queue.ahead_of(job.id) + 1))
        await self._start(claimed)
        return job

    async def find(self, job_id: int, *, guild_id: int) -> Job:
        """A job as seen from `guild_id`: only the server that made a job can see or use it
        (job numbers are sequential, so anything else would let strangers guess them)."""
        job = await self._get(job_id)
        if job.guild_id is None or job.guild_id != guild_id:
            raise JobError("other_server", job_id)
        return job

    async def rerun(self, job_id: int, requester: Requester) -> Job:
        """The same request again, as a new job charged to whoever asked."""
        source = await self.find(job_id, guild_id=requester.guild_id)
        # A rerun of a remix is pinned to the source's relay like the remix was; any other
        # job is offered to the relays afresh (the relay that takes it is recorded then).
        new = requester.new_job(
            source, request=source.request, format=source.format, relay_name=source.relay_name
        )
        try:
            return await self.submit(
                new,
                roles=requester.roles,
                is_admin=requester.is_admin,
            )
        except ImagesGoneError:  # cleaned up after IMAGE_RETENTION_DAYS; nothing was written
            raise JobError("images_gone", job_id) from None

    async def remixable(self, job_id: int, *, guild_id: int) -> Job:
        """The job, if it can be remixed: finished, not private, and its model (as the
        catalogue says now) has remix; else the refusal, before a prompt is asked for."""
        source = await self.find(job_id, guild_id=guild_id)
        if source.status != "succeeded" or not source.relay_id:
            raise JobError("remix_not_finished", job_id)
        if source.request.private:
            raise JobError("remix_private", job_id)
        entry = self.catalogue.require(source.request.model)
        entry.require_feature("remix", catalogue=self.catalogue)
        return source

    async def remix(self, job_id: int, prompt: str, requester: Requester) -> Job:
        """A finished video, changed by a new prompt (the relay's official remix endpoint)."""
        source = await self.remixable(job_id, guild_id=requester.guild_id)
        request = VideoRequest.build(
            **source.request.model_dump(exclude={"prompt", "images", "storyboard", "remix_of"}),
            prompt=prompt,
            remix_of=source.relay_id,
        )
        # The remix must go to the relay that made the source video.
        new = requester.new_job(
            source, request=request, format="official", relay_name=source.relay_name
        )
        return await self.submit(new, roles=requester.roles, is_admin=requester.is_admin)

    async def cancel(
        self, job_id: int, *, guild_id: int, user_id: int, is_admin: bool = False
    ) -> Job:
        """Cancel a job. Nothing billed, nothing charged: a waiting job, or one whose submit
        can't have reached a relay yet (connecting, waiting out a 429, retrying a refused
        connection), is refunded in full. Once a relay has the job, or may have it (the
        request was on the wire: no relay id to collect, but it may bill), the operator is
        charged, so a member's own cancel is not refunded (an admin's is). A job whose video
        the relay already reported finished is delivered, not cancelled. `guild_id` is where
        the cancel was asked: an admin elsewhere is no admin here."""
        job = await self.find(job_id, guild_id=guild_id)
        if job.user_id != user_id and not is_admin:
            raise JobError("cancel_not_yours", job_id)
        if job.is_final or job_id in self._finishing:
            raise JobError("already_finished", job_id)
        reason: CancelReason = "user" if job.user_id == user_id else "admin"
        if job_id not in self._tasks and job.lease_owner != self.owner:
            # Waiting in line, whichever process it was asked in: nothing reached a relay.
            if await self._cancelled(job_id, refund=True, holder=WAITING):
                self.queue.forget(job_id)
                await self._pump()
                return await self._get(job_id)
            job = await self._get(job_id)
            if job.is_final:
                return job
            if job.lease_owner != self.owner:
                return await self._cancel_elsewhere(job, reason)
        await self._act_on_cancel(job_id, reason)
        return await self._get(job_id)

    async def _act_on_cancel(self, job_id: int, reason: CancelReason) -> None:
        """Cancel a job this engine holds, asked here or in another process."""
        if job_id in self._finishing:
            return  # the video is made: it is delivered, and the asker is told so
        if (task := self._tasks.get(job_id)) is not None:
            if not task.cancelling():
                # Once: a second cancel (a double click) would interrupt the first one's
                # bookkeeping, and the fallback below would then refund a billed job.
                self._cancel_reasons[job_id] = reason
                task.cancel()
            # `wait`, not `gather`: if this caller is cancelled, the job's task is not.
            await asyncio.wait({task})
        job = await self._get(job_id)
        if not job.is_final and job.lease_owner == self.owner:
            # Caught between its claim and its task starting: nothing reached the relay
            # yet (unless it was taken over with a relay id), and the task will see the
            # row is final and not submit.
            await self._cancelled(job_id, refund=reason == "admin" or not job.relay_id)

    async def _cancel_elsewhere(self, job: Job, reason: CancelReason) -> Job:
        """Another process runs the job: ask it through the row, and wait until it acted
        (or, if it died, until the process that takes the job over acts)."""
        await self.db.jobs.request_cancel(job.id, reason)
        log.info("job %s: cancel by %s asked of %s", job.id, reason, job.lease_owner)
        try:
            async with asyncio.timeout(2 * self.lease_seconds + 10 * POLL_SECONDS):
                while not job.is_final:
                    await asyncio.sleep(POLL_SECONDS / 10)  # real time, like the ticks
                    job = await self._get(job.id)
        except TimeoutError:
            raise JobError("cancel_pending", job.id) from None
        return job

    def queue_position(self, job_id: int) -> int | None:
        return self.queue.position(job_id)

    # -- running ----------------------------------------------------------------------

    async def _pump(self) -> None:
        """Start every waiting job that fits under the caps."""
        if self._stopping:
            return
        try:
            await self._start_ready()
        except Exception:
            log.exception("could not start waiting jobs")

    async def _start_ready(self) -> None:
        await self._start(await self._claim())

    async def _claim(self) -> Claimed | None:
        """Lease the waiting jobs that fit under the caps, across every process."""
        if self._stopping:
            return None
        try:
            claimed = await self.db.jobs.claim(
                self.owner,
                lease_seconds=self.lease_seconds,
                max_running=self.queue.max_running,
                max_per_guild=self.queue.max_per_guild,
            )
        except Exception:
            log.exception("could not claim waiting jobs")
            return None
        self.queue.update(claimed.waiting, claimed.running)
        return claimed

    async def _start(self, claimed: Claimed | None) -> None:
        if claimed is None:
            return
        for job in claimed.jobs:
            log.info("job %s: claimed by %s", job.id, self.owner)
            self._spawn(job)
            if job.cancel_requested:
                self._in_background(self._act_on_cancel(job.id, _reason(job.cancel_requested)))
        if claimed.jobs:
            await self._announce_positions()
        if not self._tasks and not len(self.queue):
            self._idle.set()

    def _spawn(self, job: Job) -> None:
        self._idle.clear()
        task = asyncio.create_task(self._run(job), name=f"job-{job.id}")
        self._tasks[job.id] = task
        task.add_done_callback(self._on_task_done)

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        job_id = int(task.get_name().removeprefix("job-"))
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("job %s: its task died", job_id, exc_info=error)
        self._tasks.pop(job_id, None)
        if not self._stopping:
            self._in_background(self._pump())

    async def _run(self, job: Job) -> None:
        try:
            await self._render(job)
        finally:
            self._finishing.discard(job.id)

    async def _render(self, job: Job) -> None:
        # The relay client enforces the deadline on its own clock; this watchdog, in real
        # time, also ends a stream that stalls while the relay keeps it alive with pings.
        watchdog = render_deadline(job.request, self.deadline_minutes) + WATCHDOG_GRACE
        accepted = bool(job.relay_id)  # a resumed job: the relay has it
        done: VideoResult | None = None
        with watch_submits() as watch:
            try:
                events = await self._events_for(job)
                await self._emit(JobUpdate("started", job))
                async with asyncio.timeout(watchdog):
                    async for event in events:
                        if isinstance(event, Finished):
                            # From here on nothing may swallow the delivery (see `_deliver`).
                            done = event.result
                            self._finishing.add(job.id)
                        elif done is None:
                            accepted = accepted or isinstance(event, Submitted)
                            if isinstance(event, Progress) and event.phase == "finishing":
                                # The relay reported the video made and its `Finished`
                                # comes next: a cancel now would be charged and lose it.
                                self._finishing.add(job.id)
                            await self._handle(job.id, event)
            except _AlreadyFinal:
                return
            except _LeaseLost:
                log.warning("job %s: another process holds it now; leaving it", job.id)
                return
            except ImagesGoneError:  # removed while it waited: nothing reached the relay
                log.warning("job %s: its reference images are no longer kept", job.id)
                await self._finish(job.id, "failed", error_code="images_gone", refund=True)
            except TimeoutError:
                if done is None:
                    log.info("job %s: no end after %.0f s; abandoned", job.id, watchdog)
                    await self._finish(
                        job.id,
                        "timed_out",
                        error_code=TimedOutError.code,
                        error_message=TimedOutError.default_message,
                        refund=True,
                    )
            except asyncio.CancelledError:
                reason = self._cancel_reasons.pop(job.id, None)
                if reason == "lost":  # taken over: the new owner finishes (and delivers) it
                    return
                if done is not None:
                    await self._deliver(job.id, done)
                    if reason is None:
                        raise
                    return
                if reason is None:  # shutdown: leave the row as it is, the next start resumes it
                    raise
                # Nothing billed unless a relay has, or may have, the job.
                billed = accepted or watch.may_have_reached
                if not billed:  # a job this task followed after taking it back (`_not_submitted`)
                    row = await self.db.jobs.get(job.id)
                    billed = row is not None and bool(row.relay_id)
                log.info(
                    "job %s: cancelled by %s (%s)",
                    job.id,
                    reason,
                    "billed" if billed else "not billed",
                )
                await self._cancelled(job.id, refund=reason == "admin" or not billed)
            except RelayError as exc:
                if done is not None:  # the video is made; whatever broke after is moot
                    log.info("job %s: %s after the relay finished it", job.id, exc.code)
                    return await self._deliver(job.id, done)
                status = "timed_out" if isinstance(exc, TimedOutError) else "failed"
                log.info("job %s: %s (%s)", job.id, exc.code, exc.detail or exc.user_message)
                await self._finish(
                    job.id,
                    status,
                    error_code=exc.code,
                    error_message=exc.user_message,
                    error_detail=exc.stage if isinstance(exc, ContentPolicyError) else None,
                    refund=exc.refund,
                )
            except Exception:
                log.exception("job %s: unexpected failure", job.id)
                if done is None:
                    await self._finish(job.id, "failed", error_code="internal", refund=True)
        if done is not None:
            await self._deliver(job.id, done)

    async def _deliver(self, job_id: int, result: VideoResult) -> None:
        """Record the finished video and tell the listeners, even if a cancel, the watchdog
        or a shutdown lands meanwhile: the relay made (and billed) it, and a finish cut
        after its commit would leave a succeeded row whose "finished" update never came."""
        # A link, or the relay path serving the file (no public link): the row keeps
        # whichever, so a restart can still deliver.
        step = asyncio.ensure_future(self._finish(job_id, "succeeded", result_url=result.location))
        interrupted = False
        try:
            while not step.done():
                try:
                    await asyncio.shield(step)
                except asyncio.CancelledError:
                    interrupted = True
        finally:
            self._finishing.discard(job_id)
        step.result()
        if interrupted:
            raise asyncio.CancelledError

    async def _events_for(self, job: Job) -> AsyncIterator[Event]:
        """Resume polling a job the relay already has, or submit it (recorded first)."""
        total = render_deadline(job.request, self.deadline_minutes)
        if job.relay_id and job.format != "chat":
            started = job.started_at or job.created_at
            elapsed = (self.clock.now() - started).total_seconds()
            return self.relay.resume(
                job.relay_id,
                job.format,
                deadline=max(total - elapsed, 0.0),
                relay_name=job.relay_name,
                expected=await self.typical_seconds(job.relay_name, job.request),
                elapsed=elapsed,
            )
        if not await self.db.jobs.mark_submitting(
            job.id, owner=self.owner, lease_seconds=self.lease_seconds
        ):
            return await self._not_submitted(job.id)
        # The image bytes are read only now, for the relay; the job row names them by ref.
        request = await self.db.images.load(job.request)
        # A remix must go to the relay that made its source; anything else may fail over.
        pinned = job.relay_name if job.request.remix_of else None

        async def history(relay_name: str) -> float | None:
            return await self.typical_seconds(relay_name, request)

        return self.relay.generate(request, deadline=total, relay_name=pinned, history=history)

    async def _not_submitted(self, job_id: int) -> AsyncIterator[Event]:
        """The write that allows a submit was refused: send nothing, ever, from this
        claim. Only a job this engine holds again by a takeover is followed further."""
        job = await self._get(job_id)
        if job.is_final:
            raise _AlreadyFinal  # cancelled while it was being started
        if job.lease_owner != self.owner:
            raise _LeaseLost
        if job.status == "queued":
            # The claim lapsed before the submit (a busy loop renewed nothing): nothing
            # was sent; let any process, this one included, claim it again.
            log.warning("job %s: its claim lapsed before the submit; back in line", job_id)
            await self.db.jobs.let_go(job_id, self.owner)
            raise _AlreadyFinal
        # Another process claimed it while this claim had lapsed, submitted it, then
        # lost it to this engine's takeover (which left it to this task): follow the
        # relay's id, or, without one, end it as a restart does; never submit again.
        if job.relay_id and job.format != "chat":
            return await self._events_for(job)
        log.warning("job %s: cut while %s; refunding", job_id, job.status)
        await self._finish(job_id, "interrupted", error_code="interrupted", refund=True)
        raise _AlreadyFinal

    async def typical_seconds(self, relay_name: str, request: VideoRequest) -> float | None:
        """How long renders like `request` took lately on `relay_name` (the median of the
        newest successes), cached a few minutes per kind; None without history. It seeds
        when the relay is asked for the job's status, so a failure here costs nothing."""
        key = (relay_name, request.model, request.duration, request.effective_hd)
        now = self.clock.monotonic()
        cached = self._history.get(key)
        if cached is not None and now - cached[0] < HISTORY_TTL:
            return cached[1]
        try:
            seconds = await self.db.jobs.render_seconds(
                relay_name, model=request.model, duration=request.duration, hd=key[3]
            )
        except Exception:
            log.exception("could not read the render history of %s", relay_name)
            return None
        typical = from_history(seconds)
        self._history[key] = (now, typical)
        return typical

    async def _handle(self, job_id: int, event: Event) -> None:
        match event:
            case Submitted(relay_id=relay_id, relay=relay_name, format=fmt):
                if not await self.db.jobs.mark_running(
                    job_id, relay_id, relay_name=relay_name, format=fmt, owner=self.owner
                ):
                    await self._check_held(job_id)
                await self._emit(JobUpdate("progress", await self._get(job_id)))
            case Progress(percent=percent, phase=phase):
                if not await self.db.jobs.set_progress(job_id, percent, phase, owner=self.owner):
                    await self._check_held(job_id)
                await self._emit(JobUpdate("progress", await self._get(job_id)))
            case Finished(result=result):
                await self._deliver(job_id, result)

    async def _check_held(self, job_id: int) -> None:
        """A write conditioned on the lease changed nothing: raise `_LeaseLost` if another
        process holds (or held and ended) the job now; a row this engine made final is
        left to the caller, as before leases."""
        job = await self._get(job_id)
        if job.lease_owner != self.owner:
            raise _LeaseLost

    async def _cancelled(self, job_id: int, *, refund: bool, holder: Holder = None) -> bool:
        """End a job as cancelled; its row says whether the units came back, so the job's
        message can tell the member."""
        return await self._finish(
            job_id,
            "cancelled",
            error_code="cancelled",
            error_detail=CANCEL_REFUNDED if refund else CANCEL_CHARGED,
            refund=refund,
            holder=holder,
        )

    async def _finish(
        self,
        job_id: int,
        status: str,
        *,
        result_url: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        error_detail: str | None = None,
        refund: bool = False,
        holder: Holder = None,
    ) -> bool:
        """Make the job final, only while this engine holds its lease (or, with `WAITING`,
        while it waits unclaimed); True if this call settled it."""
        settled = await self.db.jobs.finish(
            job_id,
            status,  # type: ignore[arg-type]
            result_url=result_url,
            error_code=error_code,
            error_message=error_message,
            error_detail=error_detail,
            refund=refund,
            holder=holder or self.owner,
        )
        if settled:
            log.info("job %s: %s%s", job_id, status, " (refunded)" if refund else "")
            await self._emit(JobUpdate("finished", await self._get(job_id)))
        return settled

    async def _announce_positions(self, limit: int = 20) -> None:
        """Tell the first few waiting jobs their new place in line."""
        for position, job_id in enumerate(self.queue.waiting()[:limit], 1):
            job = await self.db.jobs.get(job_id)
            if job is not None:
                await self._emit(JobUpdate("queued", job, position))

    async def _emit(self, update: JobUpdate) -> None:
        for listener in list(self._listeners):
            try:
                await listener(update)
            except Exception:
                log.exception("job %s: listener failed on %s", update.job.id, update.kind)

    async def _get(self, job_id: int) -> Job:
        job = await self.db.jobs.get(job_id)
        if job is None:
            raise JobError("job_not_found", job_id)
        return job
