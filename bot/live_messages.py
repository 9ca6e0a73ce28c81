"""One Discord message per job, kept current while the video renders, then the delivery.

Engine updates arrive far faster than Discord lets a message change, so each job has a
writer task that renders only the latest state: states that follow each other within
`COALESCE_SECONDS` are written once, and while a job renders its message changes about
every `min_interval` (aimed a little early, so that waiting for the bot-wide edit budget
doesn't stretch a gap past it). The final state is never held back by any of this. The
interaction token that lets the bot edit its reply expires after 15 minutes; before that,
progress moves to a message the bot owns in the channel, so every job ends visible.

A finished video is shown at once (result, link, buttons), skipping the progress pacing;
its file is then streamed to a temporary file, attached in a later edit, and removed.

Discord's limits differ by where the message lives: edits through an interaction token
count against that token's own webhook bucket (not the channel's, nor the bot's global
limit), while messages the bot owns share the channel's 5-edits-per-5-s bucket, which
`CHANNEL_EDITS_PER_SECOND` paces.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import discord

from bot.clock import Clock, Pacer, SystemClock
from bot.jobs.engine import JobUpdate
from bot.relay.errors import RelayError
from bot.store.jobs import Job
from bot.ui.embeds import job_embed
from bot.ui.i18n import t
from bot.ui.views import progress_view, result_view

if TYPE_CHECKING:
    from bot.app import VideoBot

log = logging.getLogger(__name__)

DISCORD_UPLOAD_LIMIT = 10 * 1024 * 1024
DISCORD_TOKEN_LIFETIME = 15 * 60
DELIVERY_RETRIES = (2.0, 10.0, 30.0)
ATTACH_HEADROOM = 5 * 60
"""How long an interaction token must still be trusted (at most a third of `token_ttl`)
for the file to follow the link in the same reply. With less left, the result moves to a
message the bot owns first: a download outliving the token would otherwise leave the
reply stuck at "attaching…" beside a second message carrying the file."""
CHANNEL_EDITS_PER_SECOND = 1.0
NO_MENTIONS = discord.AllowedMentions.none()
DOWNLOAD_PREFIX = "sora-"
COALESCE_SECONDS = 0.25
"""How long a writer lets a new state settle before showing it: queued, starting and
failed a few milliseconds apart become one edit showing the failure."""
AIM_EARLY = 0.1
"""Share of `min_interval` by which a render's next edit is aimed early, so that a short
wait for the bot-wide edit budget doesn't stretch the gap a member sees past it. (A fixed
share keeps jobs that started together on the staggered slots the budget gave them.)"""
NETWORK_ERRORS: tuple[type[Exception], ...] = (aiohttp.ClientError, OSError)
"""What discord.py raises when a request gets no HTTP answer at all (a dropped or refused
connection, a timeout): a passing failure, like a 5xx, not a reason to lose a job."""


@dataclass
class _Writer:
    """The latest state of one job's message and the task that writes it."""

    update: JobUpdate
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)  # cuts any pacing short
    task: asyncio.Task[None] | None = None
    last_edit: float = float("-inf")
    slot: float | None = None  # when its next edit may be made (booked in the budget)


class EditSlots:
    """The bot-wide edit budget as a calendar: slots `1 / rate` seconds apart, one edit each.

    A job books its next edit as soon as it made one, for when its cadence is due, and
    takes the latest free slot at or before that; only when none is left between now and
    then does it take the first free one after. Jobs that started together are so spread
    out ahead of their due time rather than queued behind it, and keep their places.
    """

    def __init__(self, rate: float, clock: Clock) -> None:
        self.rate = rate
        self.step = 1.0 / rate if rate > 0 else 0.0
        self.clock = clock
        self._taken: set[int] = set()

    def set_share(self, processes: float) -> None:
        """Several processes edit with the same bot token: keep `1 / processes` of the rate
        (slots booked at the old spacing are forgotten; each edit books again)."""
        self.step = max(1, processes) / self.rate if self.rate > 0 else 0.0
        self._taken.clear()

    def book(self, due: float) -> float:
        """Book a slot for an edit due at `due` (clock.monotonic()); return its time."""
        now = self.clock.monotonic()
        if not self.step:
            return max(now, due)
        first = math.ceil(now / self.step)
        if self._taken and min(self._taken) < first:
            self._taken = {k for k in self._taken if k >= first}
        want = max(first, math.floor(due / self.step)) if due > now else first
        slot = want
        while slot >= first and slot in self._taken:
            slot -= 1
        if slot < first:
            slot = want + 1
            while slot in self._taken:
                slot += 1
        self._taken.add(slot)
        return slot * self.step

    def release(self, at: float) -> None:
        """The edit booked for `at` is made (or not needed): its slot is free again."""
        if self.step:
            self._taken.discard(round(at / self.step))


class LiveMessages:
    """Renders engine updates into Discord messages; the only place that edits them."""

    def __init__(
        self,
        bot: VideoBot,
        *,
        min_interval: float = 5.0,
        token_ttl: float = 14 * 60,
        max_download_bytes: int = DISCORD_UPLOAD_LIMIT,
        edits_per_second: float = 5.0,
        clock: Clock | None = None,
        download_dir: Path | None = None,
        owner: str | None = None,
    ) -> None:
        self.bot = bot
        #: This process's lease owner id: a job another process holds is that one's to show.
        self.owner = owner
        self.min_interval = min_interval
        self.token_ttl = token_ttl
        self.max_download_bytes = max_download_bytes
        self.clock = clock or SystemClock()
        # Videos are streamed here before upload (memory must not grow with their size).
        self.download_dir = download_dir
        if download_dir is not None:
            _sweep(download_dir)
        # Progress edits of all jobs share one budget: Discord allows a bot about 50
        # requests a second in all, and a thousand renders must not spend them.
        self._slots = EditSlots(edits_per_second, self.clock)
        self._writers: dict[int, _Writer] = {}
        self._closing = False
        self._born = self.clock.now()
        self._channel_refused: set[int] = set()  # jobs whose channel won't take our posts
        self._unattachable: set[int] = set()  # jobs whose command failed to post a message
        # Discord's edit bucket is 5 per 5 s per channel; stay well inside it.
        self._channel_pace: dict[int, Pacer] = {}
        self._share: float = 1  # bot processes sharing the token (see `set_share`)

    @property
    def edit_rate(self) -> float:
        """Progress edits a second this process allows itself (its share of the budget)."""
        return self._slots.rate / self._share if self._slots.rate > 0 else 0.0

    def set_share(self, processes: float) -> None:
        """Without a shared REST proxy, each of `processes` bot processes keeps its share
        of the edit budgets, so that together they stay within Discord's limits."""
        self._share = max(1, processes)
        self._slots.set_share(self._share)
        for pace in self._channel_pace.values():
            pace.interval = self._share / CHANNEL_EDITS_PER_SECOND

    # -- engine side ----------------------------------------------------------------

    async def on_update(self, update: JobUpdate) -> None:
        """Engine listener: remember the newest state and make sure a writer will show it."""
        if self._closing:
            return
        writer = self._writers.get(update.job.id)
        if writer is None:
            writer = self._writers[update.job.id] = _Writer(update)
        elif _newer(update, writer.update):
            writer.update = update
        if writer.update.kind == "finished":
            writer.finished.set()
        writer.wake.set()
        if writer.task is None or writer.task.done():
            writer.task = asyncio.create_task(
                self._write_loop(update.job.id, writer), name=f"live-{update.job.id}"
            )

    async def attach(
        self, job_id: int, *, channel_id: int | None, message_id: int, interaction_token: str | None
    ) -> None:
        """The cog posted the job's first message; record it and render what's pending."""
        await self.bot.db.jobs.set_message(
            job_id,
            channel_id=channel_id,
            message_id=message_id,
            interaction_token=interaction_token,
        )
        job = await self.bot.db.jobs.get(job_id)
        if job is not None:
            update = JobUpdate("finished" if job.is_final else "progress", job)
            writer = self._writers.setdefault(job_id, _Writer(update))
            # The post was the message's first change: the next one keeps the cadence, so
            # states close behind it (starting, then failed) are written once, latest first.
            writer.last_edit = self.clock.monotonic()
            await self.on_update(update)

    async def detach(self, job_id: int) -> None:
        """The command could not post the job's first message: show the job in its channel
        instead of waiting for a message that will never come."""
        self._unattachable.add(job_id)
        job = await self.bot.db.jobs.get(job_id)
        if job is not None:
            await self.on_update(JobUpdate("finished" if job.is_final else "progress", job))

    async def redeliver_pending(self) -> None:
        """After a restart: deliver jobs that finished while no message showed it."""
        for job in await self.bot.db.jobs.undelivered():
            await self.on_update(JobUpdate("finished", job))

    async def close(self) -> None:
        self._closing = True
        tasks = [w.task for w in self._writers.values() if w.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- writing --------------------------------------------------------------------

    def _awaiting_attach(self, job: Job) -> bool:
        """A job made in this process gets its message from the command that made it.

        Jobs from before a restart whose message was never posted go to the channel.
        """
        return (
            job.message_id is None
            and job.created_at >= self._born
            and job.id not in self._unattachable
        )

    async def _write_loop(self, job_id: int, writer: _Writer) -> None:
        try:
            while True:
                if writer.slot is None:
                    await writer.wake.wait()  # a new state (nothing is ticking yet)
                    if writer.last_edit == float("-inf"):
                        await self._unless_final(writer, COALESCE_SECONDS)
                    writer.slot = self._slots.book(writer.last_edit + self._gap())
                # Wait for this edit's slot in the budget, at the cadence; states that come
                # meanwhile replace each other, and a finished one is shown at once.
                await self._unless_final(writer, writer.slot - self.clock.monotonic())
                if writer.slot > self.clock.monotonic():  # cut short: the slot stays unused
                    self._slots.release(writer.slot)
                writer.slot = None
                writer.wake.clear()
                update = writer.update
                job = await self.bot.db.jobs.get(job_id) or update.job
                if self._awaiting_attach(job):
                    continue  # the command is still posting the first message; attach() wakes us
                if update.kind != "finished" and self._held_elsewhere(job):
                    # Asked here, claimed by another process: its writer shows the job and
                    # delivers it; this one's edits would double them (or undo a final one).
                    self._writers.pop(job_id, None)
                    return
                if update.kind == "finished" or job.is_final:
                    if job.delivered_at is None:
                        await self._deliver_with_retries(job)
                    self._writers.pop(job_id, None)
                    return
                await self._show_progress(job, self._position(job, update))
                writer.last_edit = self.clock.monotonic()
                if self.min_interval > 0:  # keep moving (elapsed, estimate) while it renders
                    writer.slot = self._slots.book(writer.last_edit + self._gap())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %s: could not update its message", job_id)
            self._writers.pop(job_id, None)

    async def _deliver_with_retries(self, job: Job) -> None:
        """The member paid for this message: a passing Discord failure must not lose it.
        After the retries, a fresh message in the channel is the last resort."""
        for delay in DELIVERY_RETRIES:
            try:
                job = await self.bot.db.jobs.get(job.id) or job  # shown, or moved, meanwhile?
                await self._deliver(job)
                return
            except discord.HTTPException as exc:
                log.warning("job %s: delivery failed (HTTP %s); retrying", job.id, exc.status)
                await self.clock.sleep(delay)
            except NETWORK_ERRORS as exc:
                log.warning("job %s: delivery failed (%s); retrying", job.id, exc)
                await self.clock.sleep(delay)
        self._unattachable.add(job.id)
        await self._move_to_channel(
            job,
            {
                "embed": job_embed(
                    job, locale=job.locale, now=self.clock.now(), costs=self.bot.costs
                )
            },
        )
        await self.bot.db.jobs.mark_shown(job.id)
        await self.bot.db.jobs.mark_delivered(job.id)

    def _position(self, job: Job, update: JobUpdate) -> int | None:
        """A waiting job's place as this process's engine last read the line (every second,
        from the database): with several processes, the announcement that woke this writer
        may be one another process's claims have made stale since."""
        if job.status != "queued":
            return None
        current = self.bot.engine.queue_position(job.id)
        return current if current is not None else update.queue_position

    def _held_elsewhere(self, job: Job) -> bool:
        """Another process runs the job and can edit its message (its ids are in the row;
        a job whose message this process could not post is still this one's to show)."""
        return (
            self.owner is not None
            and job.lease_owner not in (None, self.owner)
            and job.message_id is not None
        )

    def _gap(self) -> float:
        """Time from one progress edit to the next: `min_interval`, aimed a little early."""
        return max(0.0, self.min_interval * (1 - AIM_EARLY))

    async def _unless_final(self, writer: _Writer, seconds: float) -> None:
        """Sleep `seconds`, or less if the job's final state arrives: that is never paced."""
        if seconds > 0 and not writer.finished.is_set():
            await self._until(writer.finished, seconds)

    async def _until(self, event: asyncio.Event, seconds: float) -> None:
        """Wait until `event` is set or `seconds` have passed on the bot's clock."""
        woken = asyncio.ensure_future(event.wait())
        tick = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await asyncio.wait({woken, tick}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            tick.cancel()

    async def _show_progress(self, job: Job, queue_position: int | None) -> None:
        embed = job_embed(
            job,
            locale=job.locale,
            now=self.clock.now(),
            queue_position=queue_position,
            costs=self.bot.costs,
        )
        await self._edit_or_post(job, embed=embed, view=progress_view(job, job.locale))

    async def _deliver(self, job: Job) -> None:
        """The link first, the file later: the finished result (link and buttons, or
        "finished, attaching…" for a video with no public link) is shown before anything
        is downloaded; the file follows in a later edit. `shown_at` makes the first step
        happen once across restarts, `delivered_at` marks the end."""
        embed = job_embed(job, locale=job.locale, now=self.clock.now(), costs=self.bot.costs)
        view = (
            result_view(job, job.locale, self.bot.catalogue) if job.status == "succeeded" else None
        )
        to_attach = job.status == "succeeded" and bool(job.result_url)
        if job.shown_at is None:
            shown: dict[str, Any] = {"embed": embed, "view": view}
            if to_attach:
                shown["content"] = t("live.attaching", job.locale)
            headroom = min(ATTACH_HEADROOM, self.token_ttl / 3)
            if to_attach and self._token_expires_within(job, headroom):
                await self._move_to_channel(job, {**shown, "allowed_mentions": NO_MENTIONS})
            else:
                await self._edit_or_post(job, **shown)
            if await self.bot.db.jobs.mark_shown(job.id):
                await self._mention_owner(job)
            job = await self.bot.db.jobs.get(job.id) or job  # the message may have moved
        if to_attach:
            await self._attach(job, embed=embed, view=view)
        await self.bot.db.jobs.mark_delivered(job.id)

    async def _attach(self, job: Job, **shown: Any) -> None:
        """Stream the video to a temporary file and upload it from there (memory does not
        grow with its size); the file is removed however this ends. A video that doesn't
        fit keeps its link, or says why when it has none."""
        assert job.result_url is not None
        limit = min(self.max_download_bytes, self._upload_limit(job))
        linkless = _relay_path(job)
        fd, name = tempfile.mkstemp(
            prefix=f"{DOWNLOAD_PREFIX}{job.id}-", suffix=".part", dir=self.download_dir
        )
        try:
            note: str | None = None  # why a video without a public link is not attached
            with os.fdopen(fd, "wb") as sink:
                try:
                    # A relay path is fetched from the relay that made the job, with its key.
                    fits = await self.bot.relay.fetch_into(
                        job.result_url, sink, max_bytes=limit, relay_name=job.relay_name
                    )
                except RelayError as exc:
                    log.info("job %s: video not attached (%s)", job.id, exc.code)
                    fits, note = False, t("live.fetch_failed_no_link", job.locale)
            if not fits and note is None:
                log.info("job %s: video over %s bytes; not attached", job.id, limit)
                note = t("live.too_big_no_link", job.locale)
            if fits:
                video = discord.File(name, filename=f"sora-{job.id}.mp4")  # opened from disk
                try:
                    await self._edit_or_post(job, **shown, files=[video], content=None)
                    return
                except discord.HTTPException as exc:
                    if exc.status != 413:
                        raise
                    note = t("live.too_big_no_link", job.locale)  # too big after all
                finally:
                    video.close()
            # The link stays (the "attaching" line goes), or the sentence when there is none.
            await self._edit_or_post(job, **shown, content=note if linkless else None)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(name)

    def _upload_limit(self, job: Job) -> int:
        guild = self.bot.get_guild(job.guild_id) if job.guild_id else None
        return guild.filesize_limit if guild is not None else DISCORD_UPLOAD_LIMIT

    async def _mention_owner(self, job: Job) -> None:
        """Long renders end in a message edit, which pings nobody; say it's ready."""
        if job.status != "succeeded" or job.channel_id is None:
            return
        elapsed = (self.clock.now() - job.created_at).total_seconds()
        if elapsed < 60:
            return
        channel = self.bot.get_partial_messageable(job.channel_id)
        try:
            await channel.send(
                t("ready_ping", job.locale, user=f"<@{job.user_id}>", id=job.id),
                allowed_mentions=discord.AllowedMentions(users=[discord.Object(job.user_id)]),
            )
        except discord.HTTPException:
            log.info("job %s: could not ping its owner", job.id)

    # -- where the message lives ----------------------------------------------------

    def _token_age(self, job: Job) -> float:
        return (self.clock.now() - job.created_at).total_seconds()

    def _token_fresh(self, job: Job) -> bool:
        """Trusted for progress edits (`token_ttl` keeps a margin before Discord's limit).

        When the channel refused our post, the token is used up to Discord's own limit.
        """
        limit = DISCORD_TOKEN_LIFETIME if job.id in self._channel_refused else self.token_ttl
        return bool(job.interaction_token) and self._token_age(job) < limit

    def _token_expires_within(self, job: Job, seconds: float) -> bool:
        """The reply is edited through its token, which stops being trusted within `seconds`."""
        return (
            job.message_id is not None
            and job.interaction_token is not None
            and self._token_age(job) + seconds >= self.token_ttl
        )

    async def _edit_or_post(self, job: Job, **content: Any) -> None:
        """Edit the job's message through the interaction while its token lives, then through
        a channel message the bot owns; a deleted message is replaced by a new one."""
        content.setdefault("allowed_mentions", NO_MENTIONS)
        if job.message_id is not None and self._token_fresh(job):
            webhook = discord.Webhook.partial(
                self.bot.application_id or 0, job.interaction_token or "", client=self.bot
            )
            try:
                await webhook.edit_message(job.message_id, **_webhook_args(content))
                return
            except discord.NotFound:
                log.info("job %s: interaction message gone; posting in the channel", job.id)
            except discord.HTTPException as exc:
                if exc.code != 50027:  # invalid webhook token: expired early
                    raise
        if job.interaction_token is None and job.message_id is not None and job.channel_id:
            message = self.bot.get_partial_messageable(job.channel_id).get_partial_message(
                job.message_id
            )
            pace = self._channel_pace.setdefault(
                job.channel_id, Pacer(CHANNEL_EDITS_PER_SECOND / self._share, self.clock)
            )
            await pace.wait()
            try:
                await message.edit(**_message_args(content))
                return
            except discord.NotFound:
                log.info("job %s: message deleted; posting a new one", job.id)
        await self._move_to_channel(job, content)

    async def _move_to_channel(self, job: Job, content: dict[str, Any]) -> None:
        if job.channel_id is None:
            log.warning("job %s: no channel to show it in", job.id)
            return
        channel = self.bot.get_partial_messageable(job.channel_id)
        try:
            message = await channel.send(**_send_args(content))
        except discord.Forbidden:
            log.warning("job %s: no permission to post in channel %s", job.id, job.channel_id)
            if job.id not in self._channel_refused and job.message_id is not None:
                # Keep the reply current for as long as Discord takes its token.
                self._channel_refused.add(job.id)
                if self._token_fresh(job):
                    await self._edit_or_post(job, **content)
            return
        old_token, old_message = job.interaction_token, job.message_id
        await self.bot.db.jobs.set_message(
            job.id, channel_id=job.channel_id, message_id=message.id, interaction_token=None
        )
        if old_token and old_message and self._token_age(job) < DISCORD_TOKEN_LIFETIME:
            await _quietly(
                discord.Webhook.partial(
                    self.bot.application_id or 0, old_token, client=self.bot
                ).edit_message,
                old_message,
                content=t("moved_below", job.locale, id=job.id),
                embed=None,
                view=None,
            )


def _sweep(folder: Path) -> None:
    """Remove downloads a killed process left behind (nothing else can hold them)."""
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in folder.glob(f"{DOWNLOAD_PREFIX}*.part"):
        leftover.unlink(missing_ok=True)


def _relay_path(job: Job) -> bool:
    """The relay serves this video only as a file behind its key: no link to fall back on."""
    url = job.result_url
    return url is not None and url.startswith("/")


def _newer(candidate: JobUpdate, current: JobUpdate) -> bool:
    """A finished update is never replaced by a late progress one."""
    return current.kind != "finished"


def _webhook_args(content: dict[str, Any]) -> dict[str, Any]:
    args = dict(content)
    files = args.pop("files", None)
    if files:
        args["attachments"] = files
    return args


def _message_args(content: dict[str, Any]) -> dict[str, Any]:
    return _webhook_args(content)


def _send_args(content: dict[str, Any]) -> dict[str, Any]:
    args = dict(content)
    if args.get("view") is None:
        args.pop("view", None)
    if not args.get("files"):
        args.pop("files", None)
    return args


async def _quietly(call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    try:
        await call(*args, **kwargs)
    except discord.HTTPException:
        pass
