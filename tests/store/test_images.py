"""Reference images live beside the jobs, not in their rows (issue 9, point 10)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.relay.models import ImageInput, VideoRequest
from bot.store import Database, NewJob
from bot.store.database import connect, migrate
from bot.store.images import ImagesGoneError

from .conftest import new_job

STAMP = "2026-03-15T11:00:00.000000+00:00"
MB = 1024 * 1024


def with_images(*datas: bytes, prompt: str = "a heist") -> NewJob:
    images = tuple(
        ImageInput(data=data, content_type="image/png", filename=f"ref{n}.png")
        for n, data in enumerate(datas)
    )
    return NewJob(
        guild_id=1,
        channel_id=2,
        user_id=10,
        request=VideoRequest.build(prompt=prompt, images=images),
        format="task",
    )


async def row_sizes(db: Database) -> list[int]:
    rows = await db.fetchall("SELECT length(request_json) FROM jobs ORDER BY id")
    return [row[0] for row in rows]


async def test_a_job_row_keeps_references_not_bytes(db: Database) -> None:
    big = [os.urandom(MB), os.urandom(MB)]
    first = await db.jobs.create(with_images(big[0], big[1], big[0]), cost=1)
    second = await db.jobs.create(with_images(big[1]), cost=1)

    assert all(size < 2000 for size in await row_sizes(db))
    assert [image.ref for image in first.request.images] == [
        hashlib.sha256(data).hexdigest() for data in (big[0], big[1], big[0])
    ]
    assert all(image.data is None for image in first.request.images)
    assert await db.images.count() == 2  # one copy per distinct image
    links = await db.fetchall("SELECT job_id, position FROM job_images ORDER BY job_id, position")
    assert [tuple(r) for r in links] == [
        (first.id, 0),
        (first.id, 1),
        (first.id, 2),
        (second.id, 0),
    ]
    loaded = await db.images.load((await db.jobs.get(first.id)).request)  # type: ignore[union-attr]
    assert [image.data for image in loaded.images] == [big[0], big[1], big[0]]


async def test_lists_autocomplete_and_progress_reads_never_touch_image_bytes(
    sqlite_db: Database,
) -> None:
    for n in range(3):
        await sqlite_db.jobs.create(
            with_images(os.urandom(MB), os.urandom(MB), os.urandom(MB), prompt=f"job {n}"),
            cost=1,
        )
    statements: list[str] = []
    await sqlite_db.run(lambda conn: conn.set_trace_callback(statements.append))
    try:
        summaries = await sqlite_db.jobs.summaries_for_user(1, 10, limit=25)
        recent = await sqlite_db.jobs.recent_for_user(1, 10, limit=25)
        job = await sqlite_db.jobs.get(recent[0].id)
        await sqlite_db.jobs.set_progress(recent[0].id, 50.0, "rendering")
    finally:
        await sqlite_db.run(lambda conn: conn.set_trace_callback(None))
    assert [(s.id, s.status, s.prompt) for s in summaries] == [
        (3, "queued", "job 2"),
        (2, "queued", "job 1"),
        (1, "queued", "job 0"),
    ]
    assert job is not None and len(job.request.images) == 3
    assert statements and not [sql for sql in statements if "images" in sql]
    assert "request_json" not in statements[0].replace("json_extract(request_json", "")
    assert max(await row_sizes(sqlite_db)) < 2000  # what recent_for_user and get decode


async def test_cleanup_keeps_what_a_young_or_unfinished_job_needs(
    db: Database, clock: FakeClock
) -> None:
    old, shared, waiting = (os.urandom(1000) for _ in range(3))
    done = await db.jobs.create(with_images(old, shared), cost=1)
    await db.jobs.finish(done.id, "succeeded", result_url="https://x/v.mp4")
    queued = await db.jobs.create(with_images(waiting), cost=1)
    assert await db.images.cleanup(30) == 0  # all young
    clock.advance(31 * 86400)
    young = await db.jobs.create(with_images(shared), cost=1)
    clock.advance(1)
    removed = await db.images.cleanup(30)

    assert removed == 1  # `old`: only a finished job older than 30 days used it
    with pytest.raises(ImagesGoneError):
        await db.images.load(done.request)
    assert (await db.images.load(young.request)).images[0].data == shared
    assert (await db.images.load(queued.request)).images[0].data == waiting  # still waiting
    # A rerun of the old job can't be created: nothing is written, nothing reserved.
    before = await db.quotas.status(1, 10)
    again = NewJob(guild_id=1, channel_id=2, user_id=10, request=done.request, format="task")
    with pytest.raises(ImagesGoneError):
        await db.jobs.create(again, cost=1)
    assert (await db.quotas.status(1, 10)).user_used == before.user_used
    assert len(await db.jobs.recent_for_user(1, 10, limit=10)) == 3


async def test_migration_moves_inline_images_out_of_existing_rows(
    db_path: Path, clock: FakeClock
) -> None:
    """A database at schema 5 with base64 images inside request_json, as the bot wrote it."""
    first, second = os.urandom(300_000), os.urandom(5000)
    requests = [
        VideoRequest.build(
            prompt="two images",
            images=(
                ImageInput(data=first, content_type="image/jpeg", filename="a.jpg"),
                ImageInput(url="https://example.com/b.png"),
                ImageInput(data=second, content_type="image/png", filename="c.png"),
            ),
        ),
        VideoRequest.build(prompt="same image again", images=(ImageInput(data=first),)),
        VideoRequest.build(prompt="no images"),
    ]
    conn = await connect(db_path)
    assert await migrate(conn, target=5) == 5
    for request in requests:
        stored = request.model_dump_json()  # the old row format: bytes inline as base64
        assert json.loads(stored)["images"] == [] or "data" in json.loads(stored)["images"][0]
        await conn.execute(
            "INSERT INTO jobs (guild_id, channel_id, user_id, locale, request_json, format,"
            " relay_name, status, cost, created_at, updated_at)"
            " VALUES (1, 2, 10, 'en-US', ?, 'task', 'default', 'succeeded', 1, ?, ?)",
            (stored, STAMP, STAMP),
        )
    await conn.close()

    async with await Database.open(db_path, clock=clock) as db:
        sizes = await row_sizes(db)
        assert all(size < 1000 for size in sizes), sizes
        jobs = [await db.jobs.get(n) for n in (1, 2, 3)]
        assert all(job is not None for job in jobs)
        one, two, three = (job.request for job in jobs if job is not None)
        sha = {data: hashlib.sha256(data).hexdigest() for data in (first, second)}
        assert [(i.ref, i.url, i.content_type, i.filename) for i in one.images] == [
            (sha[first], None, "image/jpeg", "a.jpg"),
            (None, "https://example.com/b.png", "image/png", "image.png"),
            (sha[second], None, "image/png", "c.png"),
        ]
        assert [i.ref for i in two.images] == [sha[first]] and three.images == ()
        assert await db.images.load(one) == requests[0]
        assert await db.images.load(two) == requests[1]
        rows = await db.fetchall("SELECT sha256, mime, size FROM images ORDER BY size")
        assert [tuple(r) for r in rows] == [
            (sha[second], "image/png", 5000),
            (sha[first], "image/jpeg", 300_000),
        ]
        links = await db.fetchall("SELECT * FROM job_images ORDER BY job_id, position")
        assert [tuple(r) for r in links] == [
            (1, 0, sha[first]),
            (1, 2, sha[second]),
            (2, 0, sha[first]),
        ]


async def test_new_jobs_work_on_a_database_opened_after_the_migration(
    db: Database,
) -> None:
    job = await db.jobs.create(new_job(), cost=1)
    assert job.request.images == () and await db.images.count() == 0
