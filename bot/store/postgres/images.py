"""Reference images on PostgreSQL (BYTEA), kept beside the jobs as in `bot.store.images`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.relay.models import ImageInput, VideoRequest
from bot.store.images import _ACTIVE_SQL, Blob, ImagesGoneError
from bot.store.postgres.database import rowcount

if TYPE_CHECKING:
    from bot.store.postgres.database import Connection, PgDatabase


class PgImageRepo:
    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    async def load(self, request: VideoRequest) -> VideoRequest:
        """The request with its referenced images' bytes back in, ready for the relay.

        Raises `ImagesGoneError` when any of them was cleaned up.
        """
        refs = [image.ref for image in request.images if image.ref is not None]
        if not refs:
            return request
        rows = await self._db.pool.fetch(
            "SELECT sha256, data FROM images WHERE sha256 = ANY($1::text[])", refs
        )
        found = {row[0]: bytes(row[1]) for row in rows}
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
        cutoff = self._db.clock.now() - timedelta(days=retention_days)
        status = await self._db.pool.execute(
            "DELETE FROM images WHERE last_used < $1 AND NOT EXISTS ("
            " SELECT 1 FROM job_images AS ji JOIN jobs AS j ON j.id = ji.job_id"
            " WHERE ji.sha256 = images.sha256"
            f" AND (j.created_at >= $1 OR j.status IN {_ACTIVE_SQL}))",
            cutoff,
        )
        return rowcount(status)

    async def count(self) -> int:
        return int(await self._db.pool.fetchval("SELECT COUNT(*) FROM images"))


async def pg_store_for_job(
    conn: Connection,
    job_id: int,
    request: VideoRequest,
    blobs: Mapping[str, Blob],
    now: datetime,
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
            await conn.execute(
                "INSERT INTO images (sha256, mime, size, created_at, last_used, data)"
                " VALUES ($1, $2, $3, $4, $4, $5)"
                " ON CONFLICT (sha256) DO UPDATE SET last_used = excluded.last_used",
                ref, blob.mime, len(blob.data), now, blob.data,
            )  # fmt: skip
        elif (
            rowcount(
                await conn.execute("UPDATE images SET last_used = $1 WHERE sha256 = $2", now, ref)
            )
            == 0
        ):
            missing.append(ref)
            continue
        await conn.execute(
            "INSERT INTO job_images (job_id, position, sha256) VALUES ($1, $2, $3)",
            job_id, position, ref,
        )  # fmt: skip
    if missing:
        raise ImagesGoneError(missing)
