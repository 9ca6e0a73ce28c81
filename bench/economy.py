"""Issue 10, rows 1–3: what a render costs the relay and what the member sees meanwhile.

`jobs` renders of `render_seconds` each (10 × 60 s in the full run) start together in one
channel, per relay format, against the real `python -m bot` in its own process and the
loopback fakes in this one. Everything is real time (seconds are real seconds): the
fake relay flips a job to done exactly `render_seconds` after its submit, and both fakes
stamp what they see on the same `time.monotonic()`, so one run gives three figures:

- `reads`: status reads (task/official polls) each render cost, and every relay request;
  with callbacks configured (`PUBLIC_BASE_URL`, when this bot has it), the same for a
  run whose relay calls the bot back when a task ends;
- `result`: relay finished → the fake Discord received the message version that shows
  the video (its link, or the attached file), per job;
- `progress`: gaps between visible changes (a version whose content, embeds, buttons or
  attachments differ from the one before) of each job's message, from its first shown
  state to the result; and Discord's 429 answers with no fault injected (natural ones).

The three benchmarks share the renders: run together, the renders run once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import socket
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from bench.procs import RELAY_KEY, BotProcess, bot_env
from bench.report import Figure, percentile
from bot.clock import SystemClock
from bot.fakes.discord import LOADING, FakeDiscord, FakeInteraction, MessageVersion, RecordedMessage
from bot.fakes.relay import Behaviour, FakeRelay, Job
from bot.settings import Settings

READS_TARGET = 8.0  # status reads per 60 s render
CALLBACK_READS_TARGET = 2.0  # with callbacks: at most two reads (and one submit)
RESULT_P50 = 1.5  # s, relay finished → result visible
RESULT_P95 = 3.0
MAX_GAP = 5.0  # s, "at least one visible change every 5 s"
POLL_ENDPOINTS = frozenset({"task_poll", "official_poll"})
SUBMIT_ENDPOINTS = frozenset({"task_submit", "official_submit"})
WEBHOOK_SECRET = "bench-callback-secret-0123456789"


@dataclass(frozen=True, slots=True)
class JobTrace:
    """One render as the two fakes saw it (times on this process's monotonic clock)."""

    reads: int
    requests: int  # every relay request naming this job, plus its submit
    finished_at: float  # when the relay's task flipped to done
    visible_at: float | None  # first message version showing the video
    attached_at: float | None  # first message version with the file attached
    gaps: tuple[float, ...]  # between visible changes, first shown state → result
    changes: int


@dataclass(frozen=True, slots=True)
class RenderRun:
    """One run of `jobs` concurrent renders in one format."""

    label: str
    jobs: tuple[JobTrace, ...]
    rate_limited: int
    limited_routes: tuple[tuple[str, int], ...]
    relay_requests: tuple[tuple[str, int], ...]  # per endpoint, all jobs
    submitted: int
    skipped: str = ""  # why this run could not happen (e.g. no callbacks in this bot)


_runs: dict[tuple[str, int, float], RenderRun] = {}


def callbacks_missing() -> str:
    """Why a callback run can't be measured, or "" when this bot and fake relay support it."""
    if "public_base_url" not in Settings.model_fields:
        return "this bot has no PUBLIC_BASE_URL setting"
    if not hasattr(Behaviour(), "callbacks"):
        return "the fake relay does not call notify_hook"
    return ""


async def observe(label: str, jobs: int, render_seconds: float) -> RenderRun:
    """The run for `label` ("task", "official" or "task+callbacks"), made at most once."""
    key = (label, jobs, render_seconds)
    if key not in _runs:
        _runs[key] = await _render(label, jobs, render_seconds)
    return _runs[key]


async def _render(label: str, jobs: int, render_seconds: float) -> RenderRun:
    fmt, _, extra = label.partition("+")
    callbacks = extra == "callbacks"
    if callbacks and (why := callbacks_missing()):
        return RenderRun(label, (), 0, (), (), 0, skipped=why)
    with tempfile.TemporaryDirectory(prefix="bench-economy-") as scratch:
        workdir = Path(scratch)
        async with (
            FakeDiscord(heartbeat_interval_ms=41250, callback_deadline=30.0) as discord,
            FakeRelay(api_key=RELAY_KEY, clock=SystemClock()) as relay,
        ):
            behaviour = Behaviour(render_seconds=render_seconds)
            settings: dict[str, object] = {
                "relay_format": fmt,
                "max_concurrent_jobs": jobs,
                "max_concurrent_jobs_per_guild": jobs,
            }
            if callbacks:
                port = _free_port()
                settings |= {
                    "public_base_url": f"http://127.0.0.1:{port}",
                    "relay_webhook_port": port,
                    "relay_webhook_secret": WEBHOOK_SECRET,
                }
                behaviour = _with_callbacks(behaviour)
            relay.behaviour = behaviour
            env = bot_env(discord, relay, workdir, **settings)
            async with BotProcess(env, workdir):
                prompts = [f"economy {label} #{n}." for n in range(jobs)]
                sent = await asyncio.gather(
                    *(discord.run_slash("video", {"prompt": p}) for p in prompts)
                )
                pairs = list(zip(prompts, sent, strict=True))
                limit = time.monotonic() + render_seconds * 2 + 60
                while time.monotonic() < limit:
                    if len(relay.jobs) >= jobs and all(_visible_at(p, i, relay) for p, i in pairs):
                        break
                    await asyncio.sleep(0.05)
                # The file may follow the link in a later edit.
                with contextlib.suppress(TimeoutError):
                    await discord.changes.wait_for(
                        lambda: all(_attached_at(i) for i in sent), max(limit - time.monotonic(), 1)
                    )
                # the last edits and "ready" pings, and their 429s
                await asyncio.sleep(min(3.0, render_seconds / 4))
            return _run_of(label, pairs, relay, discord, render_seconds)


def _with_callbacks(behaviour: Behaviour) -> Behaviour:
    """The fake relay calls each task's `notify_hook` when it ends (if it knows how)."""
    return replace(behaviour, callbacks=True)  # type: ignore[call-arg]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_of(
    label: str,
    pairs: list[tuple[str, FakeInteraction]],
    relay: FakeRelay,
    discord: FakeDiscord,
    render_seconds: float,
) -> RenderRun:
    traces = []
    for prompt, interaction in pairs:
        job = _relay_job(prompt, relay)
        if job is None:
            continue
        requests = [r for r in relay.requests if job.id in r.path]
        reads = sum(1 for r in requests if r.endpoint in POLL_ENDPOINTS)
        visible = _visible_at(prompt, interaction, relay)
        gaps, changes = _gaps(_job_message(interaction), visible)
        traces.append(
            JobTrace(
                reads=reads,
                requests=len(requests) + 1,
                finished_at=job.started + render_seconds,
                visible_at=visible,
                attached_at=_attached_at(interaction),
                gaps=gaps,
                changes=changes,
            )
        )
    limited = Counter(r.route for r in discord.requests if r.status == 429)
    return RenderRun(
        label,
        tuple(traces),
        discord.rate_limited_count,
        tuple(sorted(limited.items())),
        tuple(sorted(Counter(r.endpoint for r in relay.requests).items())),
        sum(1 for r in relay.requests if r.endpoint in SUBMIT_ENDPOINTS),
    )


def _relay_job(prompt: str, relay: FakeRelay) -> Job | None:
    return next((j for j in relay.jobs.values() if prompt in j.prompt), None)


def _shows_video(version: MessageVersion, link: str) -> bool:
    if any(name.endswith(".mp4") for name in version.attachment_names):
        return True
    seen = version.content + json.dumps([version.embeds, version.components])
    return link in seen


def _visible_at(prompt: str, interaction: FakeInteraction, relay: FakeRelay) -> float | None:
    """When the fake Discord first received a version of the job's messages with the video."""
    job = _relay_job(prompt, relay)
    if job is None:
        return None
    link = relay.video_url(job.id).split("?")[0]
    times = [v.at for m in interaction.messages for v in m.history if _shows_video(v, link)]
    return min(times, default=None)


def _attached_at(interaction: FakeInteraction) -> float | None:
    """When the fake Discord first received a version with the video file attached."""
    times = [
        v.at
        for m in interaction.messages
        for v in m.history
        if any(name.endswith(".mp4") for name in v.attachment_names)
    ]
    return min(times, default=None)


def _job_message(interaction: FakeInteraction) -> RecordedMessage | None:
    """The message that carried the job's progress: the one with the most versions."""
    return max(interaction.messages, key=lambda m: len(m.history), default=None)


def _gaps(message: RecordedMessage | None, until: float | None) -> tuple[tuple[float, ...], int]:
    """Gaps between visible changes, from the first shown state to the result (or the end)."""
    if message is None:
        return (), 0
    shown = [v for v in message.history if not v.flags & LOADING]
    changes: list[float] = []
    previous: tuple[object, ...] | None = None
    for version in shown:
        looks = (version.content, version.embeds, version.components, version.attachment_names)
        if looks != previous:
            changes.append(version.at)
            previous = looks
        if until is not None and version.at >= until:
            break
    return tuple(b - a for a, b in itertools.pairwise(changes)), len(changes)


# --------------------------------------------------------------------------- figures


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else math.nan


async def reads(jobs: int = 10, render_seconds: float = 60.0) -> list[Figure]:
    """Row 1: status reads per render, task and official; then with callbacks."""
    name = "reads"
    figures: list[Figure] = []
    for label in ("task", "official"):
        run = await observe(label, jobs, render_seconds)
        counts = [float(t.reads) for t in run.jobs]
        figures += [
            Figure(name, f"{label}: status reads per render, mean", _mean(counts)),
            Figure(
                name,
                f"{label}: status reads per render, max",
                max(counts, default=math.nan),
                "",
                "<=",
                READS_TARGET,
                note=f"{len(run.jobs)} renders of {render_seconds:g} s at once",
            ),
            Figure(
                name,
                f"{label}: relay requests per render, all",
                _mean([float(t.requests) for t in run.jobs]),
                note=", ".join(f"{k} {v}" for k, v in run.relay_requests),
            ),
        ]
    run = await observe("task+callbacks", jobs, render_seconds)
    if run.skipped:
        figures.append(
            Figure(
                name,
                "task+callbacks: status reads per render, max",
                math.nan,
                note=f"not measured: {run.skipped} (target <= 2 reads + 1 submit)",
            )
        )
        return figures
    counts = [float(t.reads) for t in run.jobs]
    figures += [
        Figure(name, "task+callbacks: status reads per render, mean", _mean(counts)),
        Figure(
            name,
            "task+callbacks: status reads per render, max",
            max(counts, default=math.nan),
            "",
            "<=",
            CALLBACK_READS_TARGET,
        ),
        Figure(
            name,
            "task+callbacks: submits per render",
            run.submitted / max(len(run.jobs), 1),
            "",
            "==",
            1,
        ),
    ]
    return figures


async def result(jobs: int = 10, render_seconds: float = 60.0) -> list[Figure]:
    """Row 2: relay finished → result visible in Discord, per format (real seconds)."""
    name = "result"
    figures: list[Figure] = []
    for label in ("task", "official", "task+callbacks"):
        run = await observe(label, jobs, render_seconds)
        if run.skipped:
            figures.append(
                Figure(
                    name,
                    f"{label}: finished → visible",
                    math.nan,
                    note=f"not measured: {run.skipped}",
                )
            )
            continue
        delays = [t.visible_at - t.finished_at for t in run.jobs if t.visible_at is not None]
        shown = f"{len(delays)}/{len(run.jobs)} shown"
        files = [t.attached_at - t.finished_at for t in run.jobs if t.attached_at is not None]
        figures += [
            Figure(
                name,
                f"{label}: finished → visible, p50",
                percentile(delays, 50),
                "s",
                "<",
                RESULT_P50,
                note=shown,
            ),
            Figure(
                name,
                f"{label}: finished → visible, p95",
                percentile(delays, 95),
                "s",
                "<",
                RESULT_P95,
            ),
            Figure(name, f"{label}: finished → visible, max", max(delays, default=math.nan), "s"),
            Figure(
                name,
                f"{label}: finished → file attached, p50",
                percentile(files, 50),
                "s",
                note=f"{len(files)}/{len(run.jobs)} attached",
            ),
        ]
    return figures


async def progress(jobs: int = 10, render_seconds: float = 60.0) -> list[Figure]:
    """Row 3: the progress message keeps moving, within Discord's limits (real seconds)."""
    name = "progress"
    figures: list[Figure] = []
    for label in ("task", "official"):
        run = await observe(label, jobs, render_seconds)
        worst = [max(t.gaps) for t in run.jobs if t.gaps]
        every = [g for t in run.jobs for g in t.gaps]
        routes = ", ".join(f"{route} {n}" for route, n in run.limited_routes) or "none"
        figures += [
            Figure(
                name,
                f"{label}: visible change every, mean",
                _mean(every),
                "s",
                note=f"{_mean([float(t.changes) for t in run.jobs]):.1f} changes per message",
            ),
            Figure(
                name,
                f"{label}: longest gap between visible changes",
                max(worst, default=math.nan),
                "s",
                "<=",
                MAX_GAP,
                note=f"worst of {len(worst)} messages in one channel",
            ),
            Figure(name, f"{label}: Discord 429s", run.rate_limited, "", "==", 0, note=routes),
        ]
    return figures
