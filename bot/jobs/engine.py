"""The job engine: everything between "a member asked" and "the link is ready".

A job is a row in SQLite before the relay is called, and every step after is written
back, so a restart loses nothing: task- and official-format jobs that the relay already
accepted resume polling; queued jobs run; a chat stream cut by the restart cannot be
resumed, so that job ends as interrupted and its units are refunded.

The engine knows nothing about Discord. It tells listeners about each change
(`JobUpdate`) and the Discord layer renders them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
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
from bot.store.jobs import Job, NewJob

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
#: How long a relay's render history is trusted before it is read again.
HISTORY_TTL = 300.0
# A cancelled job's `error_detail`: whether its units came back.
CANCEL_REFUNDED = "refunded"
CANCEL_CHARGED = "charged"
WATCHDOG_GRACE = 120.0


class _AlreadyFinal(Exception):
    """The job became final (cancelled) before it was submitted."""


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
        self._listeners: list[JobListener] = []
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._cancel_reasons: dict[int, CancelReason] = {}
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

    async def start(self) -> None:
        """Pick up every job a previous process left unfinished."""
        self._stopping = False
        for job in await self.db.jobs.unfinished():
            if job.status == "queued":
                self.queue.push(job.id, job.guild_id)
            elif job.relay_id and job.format != "chat":
                log.info("job %s: resuming %s polling of %s", job.id, job.format, job.relay_id)
                self.queue.mark_running(job.id, job.guild_id)
                self._spawn(job)
            else:
                # A chat stream can't be re-attached, and a submit cut before the relay's
                # answer may or may not have been accepted: either way nothing will deliver.
                log.warning("job %s: cut by a restart while %s; refunding", job.id, job.status)
                await self._finish(job.id, "interrupted", error_code="interrupted", refund=True)
        await self._pump()

    async def stop(self) -> None:
        """Stop working without touching the jobs' rows, so the next start resumes them."""
        self._stopping = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

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
        self.queue.push(job.id, job.guild_id)
        self._idle.clear()
        await self._emit(JobUpdate("queued", job, self.queue.position(job.id)))
        await self._pump()
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

    async def remix(self, job_id: int, prompt: str, requester: Requester) -> Job:
        """A finished video, changed by a new prompt (the relay's official remix endpoint)."""
        source = await self.find(job_id, guild_id=requester.guild_id)
        if source.status != "succeeded" or not source.relay_id:
            raise JobError("remix_not_finished", job_id)
        if source.request.private:
            raise JobError("remix_private", job_id)
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
        if self.queue.remove(job_id):
            await self._cancelled(job_id, refund=True)
            await self._pump()
        elif (task := self._tasks.get(job_id)) is not None:
            if not task.cancelling():
                # Once: a second cancel (a double click) would interrupt the first one's
                # bookkeeping, and the fallback below would then refund a billed job.
                self._cancel_reasons[job_id] = reason
                task.cancel()
            # `wait`, not `gather`: if this caller is cancelled, the job's task is not.
            await asyncio.wait({task})
        job = await self._get(job_id)
        if not job.is_final:
            # Caught between leaving the line and its task starting: nothing reached the
            # relay yet, and the task will see the row is final and not submit.
            await self._cancelled(job_id, refund=True)
            job = await self._get(job_id)
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
        started: list[Job] = []
        while (slot := self.queue.pop_ready()) is not None:
            job = await self.db.jobs.get(slot.job_id)
            if job is None or job.is_final:
                self.queue.done(slot.job_id)
                continue
            started.append(job)
            self._spawn(job)
        if started:
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
        self.queue.done(job_id)
        if not self._stopping:
            pump = asyncio.create_task(self._pump())
            self._background.add(pump)
            pump.add_done_callback(self._background.discard)

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
                if done is not None:
                    await self._deliver(job.id, done)
                    if reason is None:
                        raise
                    return
                if reason is None:  # shutdown: leave the row as it is, the next start resumes it
                    raise
                # Nothing billed unless a relay has, or may have, the job.
                billed = accepted or watch.may_have_reached
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
        if not await self.db.jobs.mark_submitting(job.id):
            raise _AlreadyFinal  # cancelled while it was being started
        # The image bytes are read only now, for the relay; the job row names them by ref.
        request = await self.db.images.load(job.request)
        # A remix must go to the relay that made its source; anything else may fail over.
        pinned = job.relay_name if job.request.remix_of else None

        async def history(relay_name: str) -> float | None:
            return await self.typical_seconds(relay_name, request)

        return self.relay.generate(request, deadline=total, relay_name=pinned, history=history)

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
                await self.db.jobs.mark_running(job_id, relay_id, relay_name=relay_name, format=fmt)
                await self._emit(JobUpdate("progress", await self._get(job_id)))
            case Progress(percent=percent, phase=phase):
                await self.db.jobs.set_progress(job_id, percent, phase)
                await self._emit(JobUpdate("progress", await self._get(job_id)))
            case Finished(result=result):
                await self._deliver(job_id, result)

    async def _cancelled(self, job_id: int, *, refund: bool) -> None:
        """End a job as cancelled; its row says whether the units came back, so the job's
        message can tell the member."""
        await self._finish(
            job_id,
            "cancelled",
            error_code="cancelled",
            error_detail=CANCEL_REFUNDED if refund else CANCEL_CHARGED,
            refund=refund,
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
    ) -> None:
        settled = await self.db.jobs.finish(
            job_id,
            status,  # type: ignore[arg-type]
            result_url=result_url,
            error_code=error_code,
            error_message=error_message,
            error_detail=error_detail,
            refund=refund,
        )
        if settled:
            log.info("job %s: %s%s", job_id, status, " (refunded)" if refund else "")
            await self._emit(JobUpdate("finished", await self._get(job_id)))

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
