"""Jobs: round trip, lifecycle, settlement exactly once, history queries."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime

import pytest

from bot.clock import FakeClock
from bot.relay.models import ImageInput, Shot, VideoRequest
from bot.store import FINAL_STATUSES, Database, Job, NewJob

from .conftest import new_job

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4  # not valid UTF-8 on purpose


async def _ledger_kinds(db: Database, job_id: int) -> list[tuple[str, int]]:
    rows = await db.fetchall(
        "SELECT kind, units FROM quota_ledger WHERE job_id = ? ORDER BY id", (job_id,)
    )
    return [(row[0], row[1]) for row in rows]


def test_binary_image_bytes_survive_json() -> None:
    request = VideoRequest.build(
        prompt="x", images=(ImageInput(data=PNG, content_type="image/png"),)
    )
    again = VideoRequest.model_validate_json(request.model_dump_json())
    assert again == request
    assert again.images[0].data == PNG


async def test_round_trip_with_images_and_storyboard(db: Database, clock: FakeClock) -> None:
    request = VideoRequest.build(
        prompt="a heist",
        orientation="landscape",
        duration=15,
        model="sora-2-pro",
        hd=True,
        images=(
            ImageInput(data=PNG, content_type="image/png", filename="ref.png"),
            ImageInput(url="https://example.com/a.jpg"),
        ),
        storyboard=(Shot(duration=7.5, scene="the vault"), Shot(duration=7.5, scene="escape")),
    )
    new = NewJob(
        guild_id=1, channel_id=2, user_id=3, request=request, format="official",
        relay_name="backup", interaction_token="tok", locale="fr", parent_job_id=None,
    )  # fmt: skip
    created = await db.jobs.create(new, cost=4)
    loaded = await db.jobs.get(created.id)
    assert loaded == created
    # The row names the uploaded image by its SHA-256; the bytes come back only on load.
    assert loaded.request.images[0].data is None
    assert loaded.request.images[0].ref == hashlib.sha256(PNG).hexdigest()
    assert await db.images.load(loaded.request) == request
    assert (loaded.guild_id, loaded.channel_id, loaded.user_id) == (1, 2, 3)
    assert (loaded.format, loaded.relay_name, loaded.locale) == ("official", "backup", "fr")
    assert loaded.interaction_token == "tok" and "tok" not in repr(loaded)
    assert (loaded.status, loaded.cost, loaded.is_final) == ("queued", 4, False)
    assert loaded.created_at == clock.now() and loaded.created_at.tzinfo is not None
    assert loaded.started_at is None and loaded.finished_at is None
    assert await db.jobs.get(9999) is None


async def test_lifecycle_and_timestamps(db: Database, clock: FakeClock) -> None:
    job = await db.jobs.create(new_job(), cost=1)
    clock.advance(5)
    assert await db.jobs.mark_submitting(job.id)
    clock.advance(5)
    assert await db.jobs.mark_running(job.id, "task_123")
    started = clock.now()
    clock.advance(5)
    await db.jobs.set_progress(job.id, 42.5, "rendering")
    await db.jobs.mark_running(job.id, None)  # a resumed poll keeps id and start time
    await db.jobs.set_message(job.id, channel_id=7, message_id=8, interaction_token="t2")
    got = await db.jobs.get(job.id)
    assert got is not None
    assert (got.status, got.relay_id, got.progress, got.phase) == (
        "running", "task_123", 42.5, "rendering",
    )  # fmt: skip
    assert (got.channel_id, got.message_id, got.interaction_token) == (7, 8, "t2")
    assert got.started_at == started and got.updated_at == clock.now()

    await db.jobs.set_message(job.id, message_id=9)  # channel and token kept
    got = await db.jobs.get(job.id)
    assert got is not None and (got.channel_id, got.message_id, got.interaction_token) == (
        7, 9, "t2",
    )  # fmt: skip
    await db.jobs.set_message(job.id, message_id=9, interaction_token=None)
    got = await db.jobs.get(job.id)
    assert got is not None and got.interaction_token is None

    clock.advance(60)
    assert await db.jobs.finish(job.id, "succeeded", result_url="https://cdn/v.mp4")
    got = await db.jobs.get(job.id)
    assert got is not None and got.is_final
    assert (got.status, got.result_url, got.finished_at) == (
        "succeeded", "https://cdn/v.mp4", clock.now(),
    )  # fmt: skip
    # A final job no longer moves.
    assert not await db.jobs.mark_running(job.id, "other")
    assert not await db.jobs.set_progress(job.id, 1, "queued")
    assert (await db.jobs.get(job.id)).status == "succeeded"  # type: ignore[union-attr]


async def test_finish_commit_keeps_usage_refund_returns_it(db: Database) -> None:
    kept = await db.jobs.create(new_job(), cost=3)
    refunded = await db.jobs.create(new_job(), cost=2)
    assert (await db.quotas.status(1, 10)).user_used == 5
    assert await db.jobs.finish(kept.id, "succeeded", result_url="u")
    assert await db.jobs.finish(
        refunded.id, "failed", error_code="relay_unavailable", error_message="down", refund=True
    )
    status = await db.quotas.status(1, 10)
    assert (status.user_used, status.guild_used) == (3, 3)
    assert await _ledger_kinds(db, kept.id) == [("reserve", 3), ("commit", 3)]
    assert await _ledger_kinds(db, refunded.id) == [("reserve", 2), ("refund", 2)]
    failed = await db.jobs.get(refunded.id)
    assert failed is not None
    assert (failed.error_code, failed.error_message) == ("relay_unavailable", "down")


async def test_finish_twice_settles_once(db: Database) -> None:
    job = await db.jobs.create(new_job(), cost=2)
    assert await db.jobs.finish(job.id, "failed", refund=True)
    assert not await db.jobs.finish(job.id, "failed", refund=True)
    assert not await db.jobs.finish(job.id, "succeeded")
    assert await _ledger_kinds(db, job.id) == [("reserve", 2), ("refund", 2)]
    assert (await db.jobs.get(job.id)).status == "failed"  # type: ignore[union-attr]


async def test_racing_finishers_settle_exactly_once(db: Database) -> None:
    jobs = [await db.jobs.create(new_job(), cost=1) for _ in range(5)]
    results = await asyncio.gather(
        *(db.jobs.finish(j.id, "cancelled", refund=True) for j in jobs),
        *(db.jobs.finish(j.id, "succeeded") for j in jobs),
        *(db.jobs.finish(j.id, "timed_out", refund=True) for j in jobs),
    )
    assert sum(results) == 5
    for job in jobs:
        kinds = [kind for kind, _ in await _ledger_kinds(db, job.id)]
        assert kinds[0] == "reserve" and len(kinds) == 2
    # The ledger explains each status: refunded jobs no longer count.
    statuses = {j.id: (await db.jobs.get(j.id)).status for j in jobs}  # type: ignore[union-attr]
    charged = sum(1 for s in statuses.values() if s == "succeeded")
    assert (await db.quotas.status(1, 10)).user_used == charged


async def test_finish_rejects_active_status(db: Database) -> None:
    job = await db.jobs.create(new_job(), cost=1)
    with pytest.raises(ValueError, match="not a final status"):
        await db.jobs.finish(job.id, "running")


def test_final_statuses() -> None:
    assert FINAL_STATUSES == {
        "succeeded", "failed", "cancelled", "timed_out", "interrupted",
    }  # fmt: skip


async def test_unfinished_and_history_ordering(db: Database, clock: FakeClock) -> None:
    a = await db.jobs.create(new_job(guild_id=1, user_id=10, prompt="a"), cost=1)
    clock.advance(1)
    b = await db.jobs.create(new_job(guild_id=1, user_id=11, prompt="b"), cost=1)
    clock.advance(1)
    c = await db.jobs.create(new_job(guild_id=2, user_id=10, prompt="c"), cost=1)
    clock.advance(1)
    d = await db.jobs.create(new_job(guild_id=None, user_id=10, prompt="d"), cost=1)
    clock.advance(1)
    e = await db.jobs.create(new_job(guild_id=1, user_id=10, prompt="e"), cost=1)
    await db.jobs.mark_running(b.id, "r")
    await db.jobs.finish(a.id, "succeeded")

    def ids(jobs: list[Job]) -> list[int]:
        return [j.id for j in jobs]

    assert ids(await db.jobs.unfinished()) == [b.id, c.id, d.id, e.id]
    assert ids(await db.jobs.recent_for_user(1, 10)) == [e.id, a.id]
    assert ids(await db.jobs.recent_for_user(1, 10, limit=1)) == [e.id]
    assert ids(await db.jobs.recent_for_user(None, 10)) == [d.id]
    assert ids(await db.jobs.recent_for_guild(1)) == [e.id, b.id, a.id]
    assert ids(await db.jobs.recent_for_guild(1, limit=2)) == [e.id, b.id]
    assert ids(await db.jobs.active_for_guild(1)) == [b.id, e.id]
    assert ids(await db.jobs.active_for_guild(3)) == []


async def test_parent_job_and_aware_times(db: Database) -> None:
    parent = await db.jobs.create(new_job(), cost=1)
    child = await db.jobs.create(new_job(parent_job_id=parent.id), cost=1)
    assert child.parent_job_id == parent.id
    assert child.created_at.tzinfo is not None
    assert child.created_at.utcoffset() == datetime(2026, 1, 1, tzinfo=UTC).utcoffset()


async def test_create_rejects_negative_cost(db: Database) -> None:
    with pytest.raises(ValueError):
        await db.jobs.create(new_job(), cost=-1)


async def test_undelivered_until_marked(db: Database, clock: FakeClock) -> None:
    a = await db.jobs.create(new_job(), cost=1)
    b = await db.jobs.create(new_job(), cost=1)
    assert await db.jobs.undelivered() == []  # active jobs are not "undelivered"
    assert not await db.jobs.mark_delivered(a.id)
    await db.jobs.finish(b.id, "failed", refund=True)
    await db.jobs.finish(a.id, "succeeded", result_url="u")
    assert [j.id for j in await db.jobs.undelivered()] == [a.id, b.id]
    clock.advance(3)
    assert await db.jobs.mark_delivered(a.id)
    assert not await db.jobs.mark_delivered(a.id)
    assert [j.id for j in await db.jobs.undelivered()] == [b.id]
    got = await db.jobs.get(a.id)
    assert got is not None and got.delivered_at == clock.now()


async def test_shown_once_and_before_delivered(db: Database, clock: FakeClock) -> None:
    """The result shown (link first) is recorded once; the job stays undelivered until
    its file is attached, so a restart finishes the delivery without showing it again."""
    job = await db.jobs.create(new_job(), cost=1)
    assert not await db.jobs.mark_shown(job.id)  # nothing to show while it renders
    await db.jobs.finish(job.id, "succeeded", result_url="u")
    clock.advance(2)
    assert await db.jobs.mark_shown(job.id)
    assert not await db.jobs.mark_shown(job.id)
    (pending,) = await db.jobs.undelivered()
    assert pending.shown_at == clock.now() and pending.delivered_at is None
    clock.advance(1)
    assert await db.jobs.mark_delivered(job.id)
    got = await db.jobs.get(job.id)
    assert got is not None and got.shown_at is not None and got.delivered_at == clock.now()
    assert got.shown_at < got.delivered_at
