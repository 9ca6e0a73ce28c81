"""Reference images, kept beside the jobs and out of their rows.

A job's request names each uploaded image by `ref` (the SHA-256 of its bytes); the bytes
live once in `images`, and `job_images` says which jobs use them. Reading a job therefore
never decodes megabytes: only `load`, called just before the relay is asked to render,
fetches the bytes. Images that no job younger than the retention period (nor any job still
waiting or rendering) uses are removed by `cleanup`; a rerun of an older job then fails
with `ImagesGoneError` before anything is charged.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING

from bot.relay.models import ImageInput, VideoRequest
from bot.store._util import to_db

if TYPE_CHECKING:
    from bot.store.database import Database

_ACTIVE_SQL = "('queued', 'submitting', 'running')"  # must match store.jobs.ACTIVE_STATUSES
_HASH_OFF_LOOP_BYTES = 1 << 20  # hashing more than this in the event loop would stall it


class ImagesGoneError(LookupError):
    """A request names images the store no longer keeps (cleaned up after retention)."""

    def __init__(self, refs: list[str]) -> None:
        super().__init__(f"{len(refs)} reference image(s) no longer kept")
        self.refs = refs


@dataclass(frozen=True, slots=True)
class Blob:
    """An image's bytes on their way into the store."""

    data: bytes
    mime: str


async def detach(request: VideoRequest) -> tuple[VideoRequest, dict[str, Blob]]:
    """The request with every inline image replaced by its `ref`, and the bytes by ref.

    Hashing runs off the event loop when the images are large.
    """
    inline = [image for image in request.images if image.data is not None]
    if not inline:
        return request, {}
    datas = [image.data for image in inline if image.data is not None]
    if sum(map(len, datas)) > _HASH_OFF_LOOP_BYTES:
        digests = await asyncio.to_thread(_digests, datas)
    else:
        digests = _digests(datas)
    blobs: dict[str, Blob] = {}
    refs = iter(digests)
    images: list[ImageInput] = []
    for image in request.images:
        if image.data is None:
            images.append(image)
            continue
        ref = next(refs)
        blobs[ref] = Blob(image.data, image.content_type)
        images.append(ImageInput(ref=ref, content_type=image.content_type, filename=image.filename))
    return request.model_copy(update={"images": tuple(images)}), blobs


def _digests(datas: list[bytes]) -> list[str]:
    return [hashlib.sha256(data).hexdigest() for data in datas]


class ImageRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def load(self, request: VideoRequest) -> VideoRequest:
        """The request with its referenced images' bytes back in, ready for the relay.

        Raises `ImagesGoneError` when any of them was cleaned up.
        """
        refs = [image.ref for image in request.images if image.ref is not None]
        if not refs:
            return request
        found = await self._db.run(partial(_fetch, refs=refs))
        missing = [ref for ref in refs if ref not in found]
        if missing:
            raise ImagesGoneError(missing)
        images = tuple(
            image
            if image.ref is None
            else ImageInput(
                data=found[image.ref], content_type=image.content_type, filename=image.filename
            )
            for image in request.images
        )
        return request.model_copy(update={"images": images})

    async def cleanup(self, retention_days: float) -> int:
        """Remove images no job younger than `retention_days` (nor any unfinished job)
        uses; returns how many were removed."""
        cutoff = to_db(self._db.clock.now() - timedelta(days=retention_days))
        return await self._db.run_transaction(partial(_cleanup, cutoff=cutoff))

    async def count(self) -> int:
        row = await self._db.fetchone("SELECT COUNT(*) FROM images")
        return int(row[0]) if row else 0


# -- synchronous: run on the database thread -----------------------------------------


def store_for_job(
    conn: sqlite3.Connection,
    job_id: int,
    request: VideoRequest,
    blobs: Mapping[str, Blob],
    stamp: str,
) -> None:
    """Inside the job's insert transaction: keep new images, touch re-used ones, and link
    them to the job. Raises `ImagesGoneError` (rolling the job back) when a re-used image
    is no longer kept."""
    missing: list[str] = []
    for position, image in enumerate(request.images):
        ref = image.ref
        if ref is None:
            continue
        blob = blobs.get(ref)
        if blob is not None:
            conn.execute(
                "INSERT INTO images (sha256, mime, size, created_at, last_used, data)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (sha256) DO UPDATE SET last_used = excluded.last_used",
                (ref, blob.mime, len(blob.data), stamp, stamp, blob.data),
            )
        elif (
            conn.execute("UPDATE images SET last_used = ? WHERE sha256 = ?", (stamp, ref)).rowcount
            == 0
        ):
            missing.append(ref)
            continue
        conn.execute(
            "INSERT INTO job_images (job_id, position, sha256) VALUES (?, ?, ?)",
            (job_id, position, ref),
        )
    if missing:
        raise ImagesGoneError(missing)


def _fetch(conn: sqlite3.Connection, refs: list[str]) -> dict[str, bytes]:
    marks = ", ".join("?" * len(refs))
    rows = conn.execute(f"SELECT sha256, data FROM images WHERE sha256 IN ({marks})", refs)
    return {row[0]: bytes(row[1]) for row in rows}


def _cleanup(conn: sqlite3.Connection, cutoff: str) -> int:
    return conn.execute(
        "DELETE FROM images WHERE last_used < :cutoff AND NOT EXISTS ("
        " SELECT 1 FROM job_images AS ji JOIN jobs AS j ON j.id = ji.job_id"
        " WHERE ji.sha256 = images.sha256"
        f" AND (j.created_at >= :cutoff OR j.status IN {_ACTIVE_SQL}))",
        {"cutoff": cutoff},
    ).rowcount
