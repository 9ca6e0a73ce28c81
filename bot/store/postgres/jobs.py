"""Video jobs on PostgreSQL: the same rows and the same once-only settlement as
`bot.store.jobs`.

`create` checks and reserves the quota (locking the quota scopes) and inserts the job in
one transaction; `finish` makes the job final with an `UPDATE … WHERE status IN (active)`
that takes the job's row lock, so of two processes finishing one job, the second finds
it final and settles nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC
from typing import TYPE_CHECKING

from bot.relay.models import RelayFormat, VideoRequest
from bot.store._util import UNSET, Unset
from bot.store.images import detach
from bot.store.jobs import _ACTIVE_SQL, FINAL_STATUSES, Job, JobStatus, JobSummary, NewJob
from bot.store.postgres.database import rowcount, text
from bot.store.postgres.images import pg_store_for_job
from bot.store.postgres.preferences import pg_check_model_allowed
from bot.store.postgres.quotas import PgQuotaRepo, insert_ledger
from bot.store.quotas import Period

if TYPE_CHECKING:
    from bot.store.postgres.database import Connection, PgDatabase, Record


class PgJobRepo:
    def __init__(self, db: PgDatabase, quotas: PgQuotaRepo) -> None:
        self._db = db
        self._quotas = quotas

    async def create(
        self, new: NewJob, *, cost: int, roles: Sequence[int] = (), is_admin: bool = False
    ) -> Job:
        """Check quotas, reserve `cost` units and insert a `queued` job, all or nothing."""
        if cost < 0:
            raise ValueError("cost must be >= 0")
        now = self._db.clock.now().astimezone(UTC)
        at = Period.at(now)
        request, blobs = await detach(new.request)
        new = replace(new, request=request)
        request_json = request.model_dump_json()

        async def create(conn: Connection) -> int:
            await pg_check_model_allowed(conn, new.guild_id, request.model)
            await self._quotas._check(conn, new.guild_id, new.user_id, cost, roles, is_admin, at)
            job_id: int = await conn.fetchval(
                "INSERT INTO jobs (guild_id, channel_id, user_id, interaction_token, locale,"
                " request_json, format, relay_name, status, cost, created_at, updated_at,"
                " parent_job_id)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', $9, $10, $10, $11)"
                " RETURNING id",
                new.guild_id, new.channel_id, new.user_id, new.interaction_token, new.locale,
                request_json, new.format, new.relay_name, cost, now, new.parent_job_id,
            )  # fmt: skip
            await pg_store_for_job(conn, job_id, request, blobs, now)
            await insert_ledger(
                conn, guild_id=new.guild_id, user_id=new.user_id, job_id=job_id, ref_id=None,
                kind="reserve", units=cost, day=at.day, month=at.month, actor=None, when=now,
            )  # fmt: skip
            return job_id

        job_id = await self._db.run_transaction(create)
        return Job(
            id=job_id, guild_id=new.guild_id, channel_id=new.channel_id, user_id=new.user_id,
            message_id=None, interaction_token=new.interaction_token, locale=new.locale,
            request=new.request, format=new.format, relay_name=new.relay_name, relay_id=None,
            status="queued", progress=None, phase=None, result_url=None, error_code=None,
            error_message=None, cost=cost, created_at=now, updated_at=now, started_at=None,
            finished_at=None, parent_job_id=new.parent_job_id, delivered_at=None,
            error_detail=None,
        )  # fmt: skip

    async def get(self, job_id: int) -> Job | None:
        row = await self._db.pool.fetchrow("SELECT * FROM jobs WHERE id = $1", job_id)
        return None if row is None else pg_job(row)

    async def mark_submitting(self, job_id: int) -> bool:
        """False if the job is already final (e.g. cancelled meanwhile)."""
        return await self._update_active(job_id, "status = 'submitting'", ())

    async def mark_running(
        self,
        job_id: int,
        relay_id: str | None,
        *,
        relay_name: str | None = None,
        format: RelayFormat | None = None,
    ) -> bool:
        """Record the relay's id, which relay took the job and in which format (each kept
        if None is passed), and when rendering started."""
        return await self._update_active(
            job_id,
            "status = 'running', relay_id = COALESCE($3, relay_id),"
            " relay_name = COALESCE($4, relay_name), format = COALESCE($5, format),"
            " started_at = COALESCE(started_at, $2)",
            (text(relay_id), text(relay_name), format),
        )

    async def set_progress(self, job_id: int, percent: float | None, phase: str | None) -> bool:
        return await self._update_active(
            job_id, "progress = $3, phase = $4", (percent, text(phase))
        )

    async def set_message(
        self,
        job_id: int,
        *,
        channel_id: int | None = None,
        message_id: int | None,
        interaction_token: str | Unset | None = UNSET,
    ) -> None:
        """Where the job's progress message lives. Works on final jobs too."""
        sets = "channel_id = COALESCE($2, channel_id), message_id = $3, updated_at = $4"
        params: list[object] = [job_id, channel_id, message_id, self._db.clock.now()]
        if not isinstance(interaction_token, Unset):
            sets += ", interaction_token = $5"
            params.append(interaction_token)
        await self._db.pool.execute(f"UPDATE jobs SET {sets} WHERE id = $1", *params)

    async def finish(
        self,
        job_id: int,
        status: JobStatus,
        *,
        result_url: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        error_detail: str | None = None,
        refund: bool = False,
    ) -> bool:
        """Make the job final and settle its reservation; False if it already was final."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"{status!r} is not a final status")
        now = self._db.clock.now()

        async def finish(conn: Connection) -> bool:
            done = await conn.execute(
                "UPDATE jobs SET status = $2, result_url = $3, error_code = $4,"
                " error_message = $5, error_detail = $6, finished_at = $7, updated_at = $7"
                f" WHERE id = $1 AND status IN {_ACTIVE_SQL}",
                job_id, status, text(result_url), text(error_code), text(error_message),
                text(error_detail), now,
            )  # fmt: skip
            if rowcount(done) == 0:
                return False  # already final: settled by whoever finished it first
            reserve = await conn.fetchrow(
                "SELECT id, guild_id, user_id, units, day, month FROM quota_ledger"
                " WHERE job_id = $1 AND kind = 'reserve'",
                job_id,
            )
            if reserve is not None:
                # No scope locks: a commit changes no total, and a refund's UPDATEs lock
                # the rows themselves (guild, then member) and re-check `reset_id`.
                guild_id, user_id = reserve["guild_id"], reserve["user_id"]
                await insert_ledger(
                    conn, guild_id=guild_id, user_id=user_id, job_id=job_id,
                    ref_id=reserve["id"], kind="refund" if refund else "commit",
                    units=reserve["units"], day=reserve["day"], month=reserve["month"],
                    actor=None, when=now,
                )  # fmt: skip
            return True

        return await self._db.run_transaction(finish)

    async def unfinished(self) -> list[Job]:
        """Every job not yet final, oldest first: what a restart must resume or settle."""
        return await self._many(f"SELECT * FROM jobs WHERE status IN {_ACTIVE_SQL} ORDER BY id")

    async def undelivered(self) -> list[Job]:
        """Final jobs whose result no Discord message shows yet, oldest first."""
        return await self._many(
            "SELECT * FROM jobs WHERE delivered_at IS NULL"
            f" AND status NOT IN {_ACTIVE_SQL} ORDER BY id"
        )

    async def mark_delivered(self, job_id: int) -> bool:
        """Record that the final result was shown; False if the job is not final."""
        status = await self._db.pool.execute(
            "UPDATE jobs SET delivered_at = $2 WHERE id = $1 AND delivered_at IS NULL"
            f" AND status NOT IN {_ACTIVE_SQL}",
            job_id,
            self._db.clock.now(),
        )
        return rowcount(status) > 0

    async def mark_shown(self, job_id: int) -> bool:
        """Record that the finished result is on screen; False if it already was."""
        status = await self._db.pool.execute(
            "UPDATE jobs SET shown_at = $2 WHERE id = $1 AND shown_at IS NULL"
            f" AND status NOT IN {_ACTIVE_SQL}",
            job_id,
            self._db.clock.now(),
        )
        return rowcount(status) > 0

    async def recent_for_user(
        self, guild_id: int | None, user_id: int, limit: int = 10
    ) -> list[Job]:
        """Newest first, in this guild only (`guild_id` None: the user's DM jobs)."""
        return await self._many(
            "SELECT * FROM jobs WHERE guild_id IS NOT DISTINCT FROM $1 AND user_id = $2"
            " ORDER BY id DESC LIMIT $3",
            guild_id, user_id, limit,
        )  # fmt: skip

    async def summaries_for_user(
        self, guild_id: int | None, user_id: int, limit: int = 25
    ) -> list[JobSummary]:
        """`recent_for_user`, light: id, status and prompt only (for autocomplete)."""
        # The prompt is read in Python: PostgreSQL's JSON operators refuse a `\u0000`,
        # which a prompt may hold; rows are small (images live apart), so this is cheap.
        rows = await self._db.pool.fetch(
            "SELECT id, status, request_json FROM jobs"
            " WHERE guild_id IS NOT DISTINCT FROM $1 AND user_id = $2 ORDER BY id DESC LIMIT $3",
            guild_id, user_id, limit,
        )  # fmt: skip
        return [
            JobSummary(
                row["id"], row["status"], json.loads(row["request_json"]).get("prompt") or ""
            )
            for row in rows
        ]

    async def recent_for_guild(self, guild_id: int, limit: int = 20) -> list[Job]:
        """Newest first."""
        return await self._many(
            "SELECT * FROM jobs WHERE guild_id = $1 ORDER BY id DESC LIMIT $2", guild_id, limit
        )

    async def active_for_guild(self, guild_id: int) -> list[Job]:
        """Jobs not yet final in this guild, oldest first."""
        return await self._many(
            f"SELECT * FROM jobs WHERE guild_id = $1 AND status IN {_ACTIVE_SQL} ORDER BY id",
            guild_id,
        )

    async def render_seconds(
        self, relay_name: str, *, model: str, duration: int, hd: bool, limit: int = 20
    ) -> list[float]:
        """Seconds from acceptance to finish of the newest succeeded jobs like this one
        (same relay, model, duration and HD), newest first; the relay's last 500 only."""
        rows = await self._db.pool.fetch(
            "SELECT started_at, finished_at, request_json FROM jobs"
            " WHERE relay_name = $1 AND status = 'succeeded' ORDER BY id DESC LIMIT 500",
            relay_name,
        )
        seconds: list[float] = []
        for row in rows:
            if row["started_at"] is None or row["finished_at"] is None:
                continue
            request = json.loads(row["request_json"])  # see summaries_for_user
            if request.get("model") != model or request.get("duration") != duration:
                continue
            # Stored requests are resolved (`Catalogue.resolve`): `hd` is what was rendered.
            if bool(request.get("hd")) != hd:
                continue
            taken = (row["finished_at"] - row["started_at"]).total_seconds()
            if taken > 0:
                seconds.append(taken)
            if len(seconds) >= limit:
                break
        return seconds

    async def _many(self, sql: str, *params: object) -> list[Job]:
        return [pg_job(row) for row in await self._db.pool.fetch(sql, *params)]

    async def _update_active(self, job_id: int, sets: str, params: tuple[object, ...]) -> bool:
        """`sets` may use $1 (the job's id), $2 (now) and $3… (`params`)."""
        status = await self._db.pool.execute(
            f"UPDATE jobs SET {sets}, updated_at = $2 WHERE id = $1 AND status IN {_ACTIVE_SQL}",
            job_id,
            self._db.clock.now(),
            *params,
        )
        return rowcount(status) > 0


def pg_job(row: Record) -> Job:
    return Job(
        id=row["id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        user_id=row["user_id"],
        message_id=row["message_id"],
        interaction_token=row["interaction_token"],
        locale=row["locale"],
        request=VideoRequest.model_validate_json(row["request_json"]),
        format=row["format"],
        relay_name=row["relay_name"],
        relay_id=row["relay_id"],
        status=row["status"],
        progress=row["progress"],
        phase=row["phase"],
        result_url=row["result_url"],
        error_code=row["error_code"],
        error_message=row["error_message"],
        cost=row["cost"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        parent_job_id=row["parent_job_id"],
        delivered_at=row["delivered_at"],
        error_detail=row["error_detail"],
        shown_at=row["shown_at"],
    )
