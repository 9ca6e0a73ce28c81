"""Reference images through the engine: bytes reach the relay, job rows keep only refs,
and a rerun whose images were cleaned up is refused before anything is charged."""

from __future__ import annotations

import asyncio
import base64
import os
from collections import Counter

import pytest

from bot.clock import FakeClock
from bot.fakes.relay import FakeRelay
from bot.jobs.engine import JobError, Requester
from bot.relay.models import ImageInput

from .conftest import new_job
from .test_engine import ledger_kinds


def sent_images(relay: FakeRelay, prompt: str) -> list[list[bytes]]:
    return [
        [base64.b64decode(sent.split(",")[-1]) for sent in request.json.get("images", [])]
        for request in relay.requests_to("task_submit")
        if prompt in request.json.get("prompt", "")
    ]


async def test_the_relay_gets_the_bytes_and_a_rerun_sends_them_again(
    open_engine, relay: FakeRelay
) -> None:
    images = [os.urandom(200_000), os.urandom(100_000)]
    engine, seen = await open_engine()
    await engine.start()
    job = await engine.submit(
        new_job(
            "a heist", images=tuple(ImageInput(data=d, content_type="image/png") for d in images)
        )
    )
    await seen.wait_for(lambda _: job.id in seen.finished())
    again = await engine.rerun(job.id, Requester(guild_id=1, user_id=12))
    await seen.wait_for(lambda _: again.id in seen.finished())

    assert sent_images(relay, "a heist") == [images, images]
    rows = await engine.db.fetchall("SELECT length(request_json) FROM jobs")
    assert all(row[0] < 2000 for row in rows)
    assert all(update.job.request.images[0].data is None for update in seen.updates)
    assert (await engine.db.jobs.get(again.id)).status == "succeeded"  # type: ignore[union-attr]


async def test_a_rerun_after_cleanup_is_refused_and_not_charged(
    open_engine, relay: FakeRelay, clock: FakeClock
) -> None:
    engine, seen = await open_engine()
    await engine.start()
    job = await engine.submit(new_job("an old heist", images=(ImageInput(data=os.urandom(5000)),)))
    await seen.wait_for(lambda _: job.id in seen.finished())
    clock.advance(31 * 86400)
    assert await engine.db.images.cleanup(30) == 1
    before = await engine.db.quotas.status(1, 12)

    with pytest.raises(JobError) as info:
        await engine.rerun(job.id, Requester(guild_id=1, user_id=12))
    assert info.value.code == "images_gone"
    assert (await engine.db.quotas.status(1, 12)).user_used == before.user_used == 0
    assert len(await engine.db.jobs.recent_for_user(1, 12)) == 0
    assert relay.submits_for("an old heist") == 1


async def test_a_queued_job_whose_images_vanished_fails_refunded_without_a_submit(
    open_engine, relay: FakeRelay
) -> None:
    held = asyncio.Event()
    relay.fail_next("task_poll", status=None, wait=held, times=1000)
    engine, seen = await open_engine(max_running=1)
    await engine.start()
    ahead = await engine.submit(new_job("ahead"))
    job = await engine.submit(new_job("a lost image", images=(ImageInput(data=os.urandom(5000)),)))
    await engine.db.execute("DELETE FROM images")  # e.g. removed by hand meanwhile
    held.set()
    await seen.wait_for(lambda _: {ahead.id, job.id} <= seen.finished().keys())

    row = await engine.db.jobs.get(job.id)
    assert row is not None and (row.status, row.error_code) == ("failed", "images_gone")
    assert await ledger_kinds(engine, job.id) == Counter(reserve=1, refund=1)
    assert relay.submits_for("a lost image") == 0
