"""Video jobs on PostgreSQL: the same rows and the same once-only settlement as
`bot.store.jobs`.

`create` checks and reserves the quota (locking the quota scopes) and inserts the job in
one transaction; `finish` makes the job final with an `UPDATE … WHERE status IN (active)`
that takes the job's row lock, so of two processes finishing one job, the second finds
it final and settles nothing.

Leases (see `bot.store.jobs`): a claim takes a transaction-scoped advisory lock, so the
caps are counted and filled by one claimer at a time across every process, then locks
the rows it takes with `FOR UPDATE SKIP LOCKED` (a row being finished elsewhere, a
cancel, is skipped rather than waited for). A takeover is one `UPDATE … WHERE the lease
expired`: of two processes taking over at once, the second finds the lease live again.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, timedelta
from typing import TYPE_CHECKING

from bot.relay.models import RelayFormat, VideoRequest
from bot.store._util import UNSET, Unset
from bot.store.images import detach
from bot.store.jobs import (
    _ACTIVE_SQL,
    FINAL_STATUSES,
    WAITING,
    Claimed,
    Holder,
    Job,
    JobStatus,
    JobSummary,
    NewJob,
    Renewed,
)
from bot.store.postgres.database import rowcount, text
from bot.store.postgres.images import pg_store_for_job
from bot.store.postgres.preferences import pg_check_model_allowed
from bot.store.postgres.quotas import PgQuotaRepo, insert_ledger
from bot.store.quotas import Period

if TYPE_CHECKING:
    from bot.store.postgres.database import Connection, PgDatabase, Record

#: The advisory lock every claim takes ("sora" in ASCII): one claimer at a time.
CLAIM_LOCK = 0x736F7261


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

    async def mark_submitting(
        self, job_id: int, *, owner: str | None = None, lease_seconds: float | None = None
    ) -> bool:
        """See `bot.store.jobs.JobRepo.mark_submitting`: only from 'queued', and with
        `owner` only under its unexpired lease; one conditional write."""
        now = self._db.clock.now()
        sets = "status = 'submitting', updated_at = $2"
        where = "id = $1 AND status = 'queued'"
        args: list[object] = [job_id, now]
        if owner is not None:
            where += " AND lease_owner = $3 AND lease_expires > $2"
            args.append(owner)
            if lease_seconds is not None:
                sets += ", lease_expires = $4"
                args.append(now + timedelta(seconds=lease_seconds))
        status = await self._db.pool.execute(f"UPDATE jobs SET {sets} WHERE {where}", *args)
        return rowcount(status) > 0

    async def let_go(self, job_id: int, owner: str) -> bool:
        """See `bot.store.jobs.JobRepo.let_go`."""
        status = await self._db.pool.execute(
            "UPDATE jobs SET lease_owner = NULL, lease_expires = NULL"
            " WHERE id = $1 AND status = 'queued' AND lease_owner = $2",
            job_id,
            owner,
        )
        return rowcount(status) > 0

    async def mark_running(
        self,
        job_id: int,
        relay_id: str | None,
        *,
        relay_name: str | None = None,
        format: RelayFormat | None = None,
        owner: str | None = None,
    ) -> bool:
        """Record the relay's id, which relay took the job and in which format (each kept
        if None is passed), and when rendering started."""
        return await self._update_active(
            job_id,
            "status = 'running', relay_id = COALESCE($3, relay_id),"
            " relay_name = COALESCE($4, relay_name), format = COALESCE($5, format),"
            " started_at = COALESCE(started_at, $2)",
            (text(relay_id), text(relay_name), format),
            owner,
        )

    async def set_progress(
        self, job_id: int, percent: float | None, phase: str | None, *, owner: str | None = None
    ) -> bool:
        return await self._update_active(
            job_id, "progress = $3, phase = $4", (percent, text(phase)), owner
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
        holder: Holder = None,
    ) -> bool:
        """Make the job final and settle its reservation; False if it already was final.
        `holder`: as `JobRepo.finish` (an owner id, `WAITING`, or None for anyone)."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"{status!r} is not a final status")
        now = self._db.clock.now()
        if holder is WAITING:
            held_sql = " AND status = 'queued' AND (lease_owner IS NULL OR lease_expires <= $7)"
            held: tuple[object, ...] = ()
        elif holder is not None:
            held_sql, held = " AND lease_owner = $8", (holder,)
        else:
            held_sql, held = "", ()

        async def finish(conn: Connection) -> bool:
            done = await conn.execute(
                "UPDATE jobs SET status = $2, result_url = $3, error_code = $4,"
                " error_message = $5, error_detail = $6, finished_at = $7, updated_at = $7,"
                f" cancel_requested = NULL WHERE id = $1 AND status IN {_ACTIVE_SQL}{held_sql}",
                job_id, status, text(result_url), text(error_code), text(error_message),
                text(error_detail), now, *held,
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

    async def _update_active(
        self, job_id: int, sets: str, params: tuple[object, ...], owner: str | None = None
    ) -> bool:
        """`sets` may use $1 (the job's id), $2 (now) and $3… (`params`); with `owner`,
        only while it holds the job's lease."""
        held = "" if owner is None else f" AND lease_owner = ${len(params) + 3}"
        status = await self._db.pool.execute(
            f"UPDATE jobs SET {sets}, updated_at = $2 WHERE id = $1 AND status IN {_ACTIVE_SQL}"
            + held,
            job_id,
            self._db.clock.now(),
            *params,
            *(() if owner is None else (owner,)),
        )
        return rowcount(status) > 0

    # -- leases (see `bot.store.jobs.JobRepo`) -------------------------------------------

    async def claim(
        self, owner: str, *, lease_seconds: float, max_running: int, max_per_guild: int
    ) -> Claimed:
        """Lease waiting jobs to `owner`, oldest first, while the caps allow."""
        now = self._db.clock.now()
        until = now + timedelta(seconds=lease_seconds)

        async def claim(conn: Connection) -> Claimed:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", CLAIM_LOCK)
            busy: Counter[int | None] = Counter()
            for row in await conn.fetch(
                "SELECT guild_id, COUNT(*) AS n FROM jobs"
                f" WHERE status IN {_ACTIVE_SQL} AND (status <> 'queued' OR"
                " (lease_owner IS NOT NULL AND (lease_owner = $1 OR lease_expires > $2)))"
                " GROUP BY guild_id",
                owner,
                now,
            ):
                busy[row["guild_id"]] = row["n"]
            running = sum(busy.values())
            take: list[int] = []
            waiting: list[int] = []
            for row in await conn.fetch(
                "SELECT id, guild_id FROM jobs WHERE status = 'queued' AND (lease_owner IS NULL"
                " OR (lease_owner <> $1 AND lease_expires <= $2)) ORDER BY id",
                owner,
                now,
            ):
                guild_id = row["guild_id"]
                if running < max_running and (guild_id is None or busy[guild_id] < max_per_guild):
                    take.append(row["id"])
                    busy[guild_id] += 1
                    running += 1
                else:
                    waiting.append(row["id"])
            if not take:
                return Claimed([], waiting, running)
            locked = [
                row["id"]
                for row in await conn.fetch(
                    "SELECT id FROM jobs WHERE id = ANY($1::bigint[]) AND status = 'queued'"
                    " FOR UPDATE SKIP LOCKED",
                    take,
                )
            ]
            rows = await conn.fetch(
                "UPDATE jobs SET lease_owner = $1, lease_expires = $2"
                " WHERE id = ANY($3::bigint[]) RETURNING *",
                owner,
                until,
                locked,
            )
            running -= len(take) - len(rows)
            return Claimed(sorted(map(pg_job, rows), key=lambda j: j.id), waiting, running)

        return await self._db.run_transaction(claim)

    async def take_over(self, owner: str, *, lease_seconds: float) -> list[Job]:
        """Lease to `owner` every job at a relay whose lease expired or nobody holds."""
        now = self._db.clock.now()
        rows = await self._db.pool.fetch(
            "UPDATE jobs SET lease_owner = $1, lease_expires = $2"
            " WHERE status IN ('submitting', 'running') AND (lease_owner IS NULL"
            " OR (lease_owner <> $1 AND lease_expires <= $3)) RETURNING *",
            owner,
            now + timedelta(seconds=lease_seconds),
            now,
        )
        return sorted(map(pg_job, rows), key=lambda j: j.id)

    async def renew(self, owner: str, *, lease_seconds: float, host: str, pid: int) -> Renewed:
        """Extend every lease `owner` still holds and record that it is alive."""
        now = self._db.clock.now()

        async def renew(conn: Connection) -> Renewed:
            rows = await conn.fetch(
                "UPDATE jobs SET lease_expires = $1"
                f" WHERE lease_owner = $2 AND status IN {_ACTIVE_SQL}"
                " RETURNING id, cancel_requested",
                now + timedelta(seconds=lease_seconds),
                owner,
            )
            await conn.execute(
                "INSERT INTO processes (owner, host, pid, started_at, seen_at)"
                " VALUES ($1, $2, $3, $4, $4)"
                " ON CONFLICT (owner) DO UPDATE SET seen_at = excluded.seen_at",
                owner, host, pid, now,
            )  # fmt: skip
            live = await conn.fetchval(
                "SELECT COUNT(*) FROM processes WHERE seen_at > $1 OR owner = $2",
                now - timedelta(seconds=lease_seconds),
                owner,
            )
            return Renewed({row["id"]: row["cancel_requested"] for row in rows}, max(live, 1))

        return await self._db.run_transaction(renew)

    async def register(
        self, owner: str, *, host: str, pid: int, is_dead: Callable[[str, int], bool]
    ) -> int:
        """Record a starting process and free the jobs of dead earlier runs on this host."""
        now = self._db.clock.now()

        async def register(conn: Connection) -> int:
            await conn.execute("DELETE FROM processes WHERE seen_at < $1", now - timedelta(days=1))
            dead = [
                row["owner"]
                for row in await conn.fetch(
                    "SELECT owner, pid FROM processes WHERE host = $1 AND owner <> $2",
                    host,
                    owner,
                )
                if is_dead(row["owner"], row["pid"])
            ]
            if dead:
                await conn.execute(
                    "UPDATE jobs SET lease_owner = NULL, lease_expires = NULL"
                    f" WHERE lease_owner = ANY($1::text[]) AND status IN {_ACTIVE_SQL}",
                    dead,
                )
                await conn.execute("DELETE FROM processes WHERE owner = ANY($1::text[])", dead)
            await conn.execute(
                "INSERT INTO processes (owner, host, pid, started_at, seen_at)"
                " VALUES ($1, $2, $3, $4, $4) ON CONFLICT (owner) DO NOTHING",
                owner, host, pid, now,
            )  # fmt: skip
            return len(dead)

        return await self._db.run_transaction(register)

    async def release(self, owner: str) -> int:
        """A clean shutdown: `owner` lets go of its jobs; returns how many."""

        async def release(conn: Connection) -> int:
            status = await conn.execute(
                "UPDATE jobs SET lease_owner = NULL, lease_expires = NULL"
                f" WHERE lease_owner = $1 AND status IN {_ACTIVE_SQL}",
                owner,
            )
            await conn.execute("DELETE FROM processes WHERE owner = $1", owner)
            return rowcount(status)

        return await self._db.run_transaction(release)

    async def request_cancel(self, job_id: int, reason: str) -> bool:
        """Ask the process running the job to cancel it; an admin's ask is kept."""
        status = await self._db.pool.execute(
            "UPDATE jobs SET cancel_requested = CASE WHEN cancel_requested = 'admin'"
            f" THEN 'admin' ELSE $2 END WHERE id = $1 AND status IN {_ACTIVE_SQL}",
            job_id,
            reason,
        )
        return rowcount(status) > 0

    async def cancel_requests(self, owner: str) -> dict[int, str]:
        """Cancels asked from elsewhere for jobs `owner` holds: job id -> reason."""
        rows = await self._db.pool.fetch(
            "SELECT id, cancel_requested FROM jobs WHERE lease_owner = $1"
            f" AND status IN {_ACTIVE_SQL} AND cancel_requested IS NOT NULL",
            owner,
        )
        return {row["id"]: row["cancel_requested"] for row in rows}


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
        lease_owner=row["lease_owner"],
        lease_expires=row["lease_expires"],
        cancel_requested=row["cancel_requested"],
    )
