"""Video jobs: one row per request, from `queued` to a final status.

A job's quota is reserved in the same `BEGIN IMMEDIATE` transaction that inserts it, and
settled (committed or refunded) in the same transaction that makes it final, so a job
is charged or refunded exactly once however many code paths race to finish it.

Both hot transactions (`create` and `finish`) are synchronous functions handed to
`Database.run_transaction`, so each costs one hop to the database thread, not one per
statement.

Leases: several processes may share the database, and the one running a job holds a
lease on its row (`claim`, `take_over`, `renew`, `release`). Writes that carry an `owner`
change the row only while that owner still holds the lease, so a process paused past
its lease can't overwrite the state written by the one that took the job over.
"""

from __future__ import annotations

import enum
import sqlite3
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Final, Literal, get_args

from bot.relay.models import RelayFormat, VideoRequest
from bot.store._util import UNSET, Unset, from_db, from_db_opt, to_db
from bot.store.images import detach, store_for_job
from bot.store.preferences import check_model_allowed
from bot.store.quotas import Period, QuotaRepo, _insert_ledger

if TYPE_CHECKING:
    from bot.store.database import Database

JobStatus = Literal[
    "queued", "submitting", "running", "succeeded", "failed", "cancelled", "timed_out",
    "interrupted",
]  # fmt: skip

ALL_STATUSES: Final[frozenset[JobStatus]] = frozenset(get_args(JobStatus))
ACTIVE_STATUSES: Final[frozenset[JobStatus]] = frozenset({"queued", "submitting", "running"})
FINAL_STATUSES: Final[frozenset[JobStatus]] = ALL_STATUSES - ACTIVE_STATUSES
"""`interrupted` is final: the render was lost (e.g. a chat stream cut by a restart)."""

_ACTIVE_SQL = "('queued', 'submitting', 'running')"  # must match ACTIVE_STATUSES


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    guild_id: int | None
    channel_id: int | None
    user_id: int
    message_id: int | None
    interaction_token: str | None = field(repr=False)
    locale: str
    request: VideoRequest = field(repr=False)
    format: RelayFormat
    relay_name: str
    relay_id: str | None
    status: JobStatus
    progress: float | None
    phase: str | None
    result_url: str | None  # a public link, or a path on the job's relay ("/v1/videos/…")
    error_code: str | None
    error_message: str | None
    cost: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    parent_job_id: int | None
    delivered_at: datetime | None = None
    # The moderation stage of a content-policy refusal; "refunded"/"charged" for a cancel.
    error_detail: str | None = None
    # When the finished result was first shown (its file may still be on its way).
    shown_at: datetime | None = None
    # The process running the job (see `JobRepo.claim`), until when, and a cancel asked
    # from another process that the owner has yet to act on ('user' or 'admin').
    lease_owner: str | None = None
    lease_expires: datetime | None = None
    cancel_requested: str | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass(frozen=True, slots=True)
class JobSummary:
    """What a picker shows for a job, read without decoding its request."""

    id: int
    status: JobStatus
    prompt: str


@dataclass(frozen=True, slots=True)
class Claimed:
    """What one claim did: the waiting jobs it leased, and the line as it left it."""

    jobs: list[Job]
    waiting: list[int]  # queued jobs nobody runs yet, oldest first
    running: int  # jobs counted against the global cap, the claimed ones included


@dataclass(frozen=True, slots=True)
class Renewed:
    """What a renewal found: the jobs the owner still holds (with any cancel asked from
    elsewhere) and how many processes share the database."""

    held: dict[int, str | None]
    processes: int


class _Held(enum.Enum):
    """`finish(holder=WAITING)`: only while the job waits in line and nobody runs it."""

    WAITING = "WAITING"


WAITING: Final = _Held.WAITING
#: Whose writes `finish` accepts: an owner id, `WAITING`, or None for anyone's.
Holder = str | _Held | None


@dataclass(frozen=True, slots=True)
class NewJob:
    guild_id: int | None
    channel_id: int | None
    user_id: int
    request: VideoRequest = field(repr=False)
    format: RelayFormat
    relay_name: str = "default"
    interaction_token: str | None = field(default=None, repr=False)
    locale: str = "en-US"
    parent_job_id: int | None = None


class JobRepo:
    def __init__(self, db: Database, quotas: QuotaRepo) -> None:
        self._db = db
        self._quotas = quotas

    async def create(
        self, new: NewJob, *, cost: int, roles: Sequence[int] = (), is_admin: bool = False
    ) -> Job:
        """Check quotas, reserve `cost` units and insert a `queued` job, all or nothing.

        Uploaded images are kept beside the row (`bot.store.images`) and the stored
        request names them by `ref`; the returned job carries that request, not the bytes.
        Raises `QuotaExceededError`, `ModelNotAllowedError` when the server's admins don't
        allow the model, or `ImagesGoneError` when a rerun's images were cleaned up
        (nothing is written then).
        """
        if cost < 0:
            raise ValueError("cost must be >= 0")
        # Everything but the SQL is worked out here, off the database thread.
        at = Period.at(self._db.clock.now())
        request, blobs = await detach(new.request)
        new = replace(new, request=request)
        request_json = request.model_dump_json()

        def create(conn: sqlite3.Connection) -> int:
            check_model_allowed(conn, new.guild_id, request.model)
            self._quotas._check(conn, new.guild_id, new.user_id, cost, roles, is_admin, at)
            job_id = _insert_job(conn, new, request_json, cost, at.stamp)
            store_for_job(conn, job_id, request, blobs, at.stamp)
            _insert_ledger(
                conn, guild_id=new.guild_id, user_id=new.user_id, job_id=job_id, ref_id=None,
                kind="reserve", units=cost, day=at.day, month=at.month, actor=None,
                stamp=at.stamp,
            )  # fmt: skip
            return job_id

        job_id = await self._db.run_transaction(create)
        return _new_job(job_id, new, cost, at.stamp)

    async def get(self, job_id: int) -> Job | None:
        row = await self._db.run(partial(_get_row, job_id=job_id))
        return None if row is None else _job(row)

    async def mark_submitting(
        self, job_id: int, *, owner: str | None = None, lease_seconds: float | None = None
    ) -> bool:
        """Move a waiting job to 'submitting': the one write that lets a relay submit
        happen, so it changes the row only from 'queued' and, with `owner`, only while
        that owner holds an unexpired lease (renewed to `lease_seconds` from now if
        given, for the submit's round trip). False otherwise: the job ended, another
        process took it, or the lease ran out (anyone may claim it then), and nothing
        may be sent. A job is submitted at most once, whoever claims it after."""
        now = self._db.clock.now()
        sets, where = "status = 'submitting', updated_at = ?", "id = ? AND status = 'queued'"
        params: list[object] = [to_db(now)]
        args: list[object] = [job_id]
        if owner is not None:
            where += " AND lease_owner = ? AND lease_expires > ?"
            args += [owner, to_db(now)]
            if lease_seconds is not None:
                sets += ", lease_expires = ?"
                params.append(to_db(now + timedelta(seconds=lease_seconds)))
        changed = await self._db.execute(f"UPDATE jobs SET {sets} WHERE {where}", (*params, *args))
        return changed > 0

    async def let_go(self, job_id: int, owner: str) -> bool:
        """Drop `owner`'s lapsed claim on a job still waiting, so any process (this one
        included) may claim it again."""
        changed = await self._db.execute(
            "UPDATE jobs SET lease_owner = NULL, lease_expires = NULL"
            " WHERE id = ? AND status = 'queued' AND lease_owner = ?",
            (job_id, owner),
        )
        return changed > 0

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
            "status = 'running', relay_id = COALESCE(?, relay_id),"
            " relay_name = COALESCE(?, relay_name), format = COALESCE(?, format),"
            " started_at = COALESCE(started_at, ?)",
            (relay_id, relay_name, format, to_db(self._db.clock.now())),
            owner,
        )

    async def set_progress(
        self, job_id: int, percent: float | None, phase: str | None, *, owner: str | None = None
    ) -> bool:
        return await self._update_active(job_id, "progress = ?, phase = ?", (percent, phase), owner)

    async def set_message(
        self,
        job_id: int,
        *,
        channel_id: int | None = None,
        message_id: int | None,
        interaction_token: str | Unset | None = UNSET,
    ) -> None:
        """Where the job's progress message lives. Works on final jobs too.

        `channel_id` None keeps the stored channel; `interaction_token` left out keeps
        the stored token and None clears it (tokens expire after 15 minutes).
        """
        sets = "channel_id = COALESCE(?, channel_id), message_id = ?, updated_at = ?"
        params: list[object] = [channel_id, message_id, to_db(self._db.clock.now())]
        if not isinstance(interaction_token, Unset):
            sets += ", interaction_token = ?"
            params.append(interaction_token)
        await self._db.execute(f"UPDATE jobs SET {sets} WHERE id = ?", (*params, job_id))

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
        """Make the job final and settle its reservation: `commit`, or `refund` if asked.

        Idempotent: returns False and changes nothing if the job is already final. With
        `holder` an owner id, only while that owner holds the job's lease; with `WAITING`,
        only while the job waits in line and no process runs it.
        """
        if status not in FINAL_STATUSES:
            raise ValueError(f"{status!r} is not a final status")
        now = self._db.clock.now()
        stamp = to_db(now)
        if holder is WAITING:
            held_sql = " AND status = 'queued' AND (lease_owner IS NULL OR lease_expires <= ?)"
            held: tuple[object, ...] = (stamp,)
        elif holder is not None:
            held_sql, held = " AND lease_owner = ?", (holder,)
        else:
            held_sql, held = "", ()

        def finish(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE jobs SET status = ?, result_url = ?, error_code = ?, error_message = ?,"
                " error_detail = ?, finished_at = ?, updated_at = ?, cancel_requested = NULL"
                f" WHERE id = ? AND status IN {_ACTIVE_SQL}{held_sql}",
                (
                    status, result_url, error_code, error_message, error_detail, stamp, stamp,
                    job_id, *held,
                ),
            )  # fmt: skip
            if cursor.rowcount == 0:
                return False  # already final: settled by whoever finished it first
            _settle_reservation(conn, job_id, refund=refund, stamp=stamp)
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
        return (
            await self._db.execute(
                "UPDATE jobs SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL"
                f" AND status NOT IN {_ACTIVE_SQL}",
                (to_db(self._db.clock.now()), job_id),
            )
            > 0
        )

    async def mark_shown(self, job_id: int) -> bool:
        """Record that the finished result is on screen, before its file is attached;
        False if it already was (so whatever follows the first showing happens once)."""
        return (
            await self._db.execute(
                "UPDATE jobs SET shown_at = ? WHERE id = ? AND shown_at IS NULL"
                f" AND status NOT IN {_ACTIVE_SQL}",
                (to_db(self._db.clock.now()), job_id),
            )
            > 0
        )

    async def recent_for_user(
        self, guild_id: int | None, user_id: int, limit: int = 10
    ) -> list[Job]:
        """Newest first, in this guild only (`guild_id` None: the user's DM jobs)."""
        return await self._many(
            "SELECT * FROM jobs WHERE guild_id IS ? AND user_id = ? ORDER BY id DESC LIMIT ?",
            (guild_id, user_id, limit),
        )

    async def summaries_for_user(
        self, guild_id: int | None, user_id: int, limit: int = 25
    ) -> list[JobSummary]:
        """`recent_for_user`, light: id, status and prompt only, for autocomplete, which
        runs on every keystroke and must not decode requests."""
        rows = await self._db.fetchall(
            "SELECT id, status, json_extract(request_json, '$.prompt') AS prompt FROM jobs"
            " WHERE guild_id IS ? AND user_id = ? ORDER BY id DESC LIMIT ?",
            (guild_id, user_id, limit),
        )
        return [JobSummary(row["id"], row["status"], row["prompt"] or "") for row in rows]

    async def recent_for_guild(self, guild_id: int, limit: int = 20) -> list[Job]:
        """Newest first."""
        return await self._many(
            "SELECT * FROM jobs WHERE guild_id = ? ORDER BY id DESC LIMIT ?", (guild_id, limit)
        )

    async def active_for_guild(self, guild_id: int) -> list[Job]:
        """Jobs not yet final in this guild, oldest first."""
        return await self._many(
            f"SELECT * FROM jobs WHERE guild_id = ? AND status IN {_ACTIVE_SQL} ORDER BY id",
            (guild_id,),
        )

    async def render_seconds(
        self, relay_name: str, *, model: str, duration: int, hd: bool, limit: int = 20
    ) -> list[float]:
        """Seconds from acceptance to finish of the newest succeeded jobs like this one
        (same relay, model, duration and HD), newest first: the history that seeds when a
        job's status is read. Looks at the relay's last 500 successes only (indexed)."""
        rows = await self._db.fetchall(
            "SELECT started_at, finished_at, json_extract(request_json, '$.hd') AS hd"
            " FROM (SELECT started_at, finished_at, request_json FROM jobs"
            "       WHERE relay_name = ? AND status = 'succeeded' ORDER BY id DESC LIMIT 500)"
            " WHERE started_at IS NOT NULL AND finished_at IS NOT NULL"
            " AND json_extract(request_json, '$.model') = ?"
            " AND json_extract(request_json, '$.duration') = ?",
            (relay_name, model, duration),
        )
        seconds: list[float] = []
        for row in rows:
            # Stored requests are resolved (`Catalogue.resolve`): `hd` is what was rendered.
            if bool(row["hd"]) != hd:
                continue
            taken = (from_db(row["finished_at"]) - from_db(row["started_at"])).total_seconds()
            if taken > 0:
                seconds.append(taken)
            if len(seconds) >= limit:
                break
        return seconds

    async def _many(self, sql: str, params: tuple[object, ...] = ()) -> list[Job]:
        return [_job(row) for row in await self._db.fetchall(sql, params)]

    async def _update_active(
        self, job_id: int, sets: str, params: tuple[object, ...], owner: str | None = None
    ) -> bool:
        held = "" if owner is None else " AND lease_owner = ?"
        changed = await self._db.execute(
            f"UPDATE jobs SET {sets}, updated_at = ? WHERE id = ? AND status IN {_ACTIVE_SQL}"
            + held,
            (*params, to_db(self._db.clock.now()), job_id, *(() if owner is None else (owner,))),
        )
        return changed > 0

    # -- leases: which process runs which job ------------------------------------------

    async def claim(
        self, owner: str, *, lease_seconds: float, max_running: int, max_per_guild: int
    ) -> Claimed:
        """Lease waiting jobs to `owner`, oldest first, while the caps allow, in one write
        transaction (SQLite's `BEGIN IMMEDIATE` makes it the only claimer at that moment).

        The caps count every job at a relay (submitting or running, whoever runs it, a
        dead process's included until it is taken over) and every waiting job some live
        process has claimed. A guild at its cap keeps its place while later jobs of other
        guilds start."""
        now = self._db.clock.now()
        now_s, until = to_db(now), to_db(now + timedelta(seconds=lease_seconds))

        def claim(conn: sqlite3.Connection) -> Claimed:
            busy: Counter[int | None] = Counter()
            for row in conn.execute(
                "SELECT guild_id, COUNT(*) FROM jobs"
                f" WHERE status IN {_ACTIVE_SQL} AND (status != 'queued' OR"
                " (lease_owner IS NOT NULL AND (lease_owner = ? OR lease_expires > ?)))"
                " GROUP BY guild_id",
                (owner, now_s),
            ):
                busy[row[0]] = row[1]
            running = sum(busy.values())
            take: list[int] = []
            waiting: list[int] = []
            for job_id, guild_id in conn.execute(
                "SELECT id, guild_id FROM jobs WHERE status = 'queued' AND (lease_owner IS NULL"
                " OR (lease_owner != ? AND lease_expires <= ?)) ORDER BY id",
                (owner, now_s),
            ):
                if running < max_running and (guild_id is None or busy[guild_id] < max_per_guild):
                    take.append(job_id)
                    busy[guild_id] += 1
                    running += 1
                else:
                    waiting.append(job_id)
            if not take:
                return Claimed([], waiting, running)
            marks = ", ".join("?" * len(take))
            rows = conn.execute(
                f"UPDATE jobs SET lease_owner = ?, lease_expires = ? WHERE id IN ({marks})"
                " RETURNING *",
                (owner, until, *take),
            ).fetchall()
            return Claimed(sorted(map(_job, rows), key=lambda j: j.id), waiting, running)

        return await self._db.run_transaction(claim)

    async def take_over(self, owner: str, *, lease_seconds: float) -> list[Job]:
        """Lease to `owner` every job at a relay (submitting or running) whose lease has
        expired or that no process holds (rows from before leases), oldest first."""
        now = self._db.clock.now()
        now_s, until = to_db(now), to_db(now + timedelta(seconds=lease_seconds))

        def take(conn: sqlite3.Connection) -> list[Job]:
            rows = conn.execute(
                "UPDATE jobs SET lease_owner = ?, lease_expires = ?"
                " WHERE status IN ('submitting', 'running') AND (lease_owner IS NULL"
                " OR (lease_owner != ? AND lease_expires <= ?)) RETURNING *",
                (owner, until, owner, now_s),
            ).fetchall()
            return sorted(map(_job, rows), key=lambda j: j.id)

        return await self._db.run_transaction(take)

    async def renew(self, owner: str, *, lease_seconds: float, host: str, pid: int) -> Renewed:
        """Extend every lease `owner` still holds and record that it is alive. A job it
        ran that is missing from `held` was taken over (or ended)."""
        now = self._db.clock.now()
        now_s, until = to_db(now), to_db(now + timedelta(seconds=lease_seconds))
        alive_since = to_db(now - timedelta(seconds=lease_seconds))

        def renew(conn: sqlite3.Connection) -> Renewed:
            rows = conn.execute(
                "UPDATE jobs SET lease_expires = ?"
                f" WHERE lease_owner = ? AND status IN {_ACTIVE_SQL}"
                " RETURNING id, cancel_requested",
                (until, owner),
            ).fetchall()
            _seen(conn, owner, host, pid, now_s)
            live = conn.execute(
                "SELECT COUNT(*) FROM processes WHERE seen_at > ? OR owner = ?",
                (alive_since, owner),
            ).fetchone()[0]
            return Renewed({row[0]: row[1] for row in rows}, max(int(live), 1))

        return await self._db.run_transaction(renew)

    async def register(
        self, owner: str, *, host: str, pid: int, is_dead: Callable[[str, int], bool]
    ) -> int:
        """Record a starting process, and expire at once the leases of earlier processes
        on this host that `is_dead(owner, pid)` says are gone (a restart after a crash
        need not wait the lease out). Returns how many such processes were found."""
        now = self._db.clock.now()
        now_s = to_db(now)
        stale = to_db(now - timedelta(days=1))

        def register(conn: sqlite3.Connection) -> int:
            conn.execute("DELETE FROM processes WHERE seen_at < ?", (stale,))
            dead = [
                row[0]
                for row in conn.execute(
                    "SELECT owner, pid FROM processes WHERE host = ? AND owner != ?",
                    (host, owner),
                )
                if is_dead(row[0], row[1])
            ]
            for gone in dead:
                conn.execute(
                    "UPDATE jobs SET lease_owner = NULL, lease_expires = NULL"
                    f" WHERE lease_owner = ? AND status IN {_ACTIVE_SQL}",
                    (gone,),
                )
                conn.execute("DELETE FROM processes WHERE owner = ?", (gone,))
            conn.execute(
                "INSERT INTO processes (owner, host, pid, started_at, seen_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (owner) DO NOTHING",
                (owner, host, pid, now_s, now_s),
            )
            return len(dead)

        return await self._db.run_transaction(register)

    async def release(self, owner: str) -> int:
        """A clean shutdown: `owner` lets go of its jobs, so another process (or this
        installation's next run) takes them over without waiting; returns how many."""

        def release(conn: sqlite3.Connection) -> int:
            changed = conn.execute(
                "UPDATE jobs SET lease_owner = NULL, lease_expires = NULL"
                f" WHERE lease_owner = ? AND status IN {_ACTIVE_SQL}",
                (owner,),
            ).rowcount
            conn.execute("DELETE FROM processes WHERE owner = ?", (owner,))
            return int(changed)

        return await self._db.run_transaction(release)

    async def request_cancel(self, job_id: int, reason: str) -> bool:
        """Ask the process running the job to cancel it (`reason`: 'user' or 'admin'); an
        admin's ask replaces a member's. False if the job is already final."""
        return (
            await self._db.execute(
                "UPDATE jobs SET cancel_requested = CASE WHEN cancel_requested = 'admin'"
                " THEN 'admin' ELSE ? END"
                f" WHERE id = ? AND status IN {_ACTIVE_SQL}",
                (reason, job_id),
            )
            > 0
        )

    async def cancel_requests(self, owner: str) -> dict[int, str]:
        """Cancels asked from elsewhere for jobs `owner` holds: job id -> reason."""
        rows = await self._db.fetchall(
            "SELECT id, cancel_requested FROM jobs WHERE lease_owner = ?"
            f" AND status IN {_ACTIVE_SQL} AND cancel_requested IS NOT NULL",
            (owner,),
        )
        return {row[0]: row[1] for row in rows}


# -- synchronous: run on the database thread through Database.run(_transaction) --------


def _insert_job(
    conn: sqlite3.Connection, new: NewJob, request_json: str, cost: int, stamp: str
) -> int:
    """Insert a `queued` job; returns its id."""
    cursor = conn.execute(
        "INSERT INTO jobs (guild_id, channel_id, user_id, interaction_token, locale,"
        " request_json, format, relay_name, status, cost, created_at, updated_at,"
        " parent_job_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
        (
            new.guild_id, new.channel_id, new.user_id, new.interaction_token, new.locale,
            request_json, new.format, new.relay_name, cost, stamp, stamp, new.parent_job_id,
        ),
    )  # fmt: skip
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _settle_reservation(conn: sqlite3.Connection, job_id: int, *, refund: bool, stamp: str) -> None:
    """Write the `commit` (or `refund`) row for the job's reservation, if it has one."""
    reserve = conn.execute(
        "SELECT id, guild_id, user_id, units, day, month FROM quota_ledger"
        " WHERE job_id = ? AND kind = 'reserve'",
        (job_id,),
    ).fetchone()
    if reserve is None:
        return
    _insert_ledger(
        conn, guild_id=reserve["guild_id"], user_id=reserve["user_id"], job_id=job_id,
        ref_id=reserve["id"], kind="refund" if refund else "commit", units=reserve["units"],
        day=reserve["day"], month=reserve["month"], actor=None, stamp=stamp,
    )  # fmt: skip


def _seen(conn: sqlite3.Connection, owner: str, host: str, pid: int, stamp: str) -> None:
    conn.execute(
        "INSERT INTO processes (owner, host, pid, started_at, seen_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (owner) DO UPDATE SET seen_at = excluded.seen_at",
        (owner, host, pid, stamp, stamp),
    )


def _get_row(conn: sqlite3.Connection, job_id: int) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return row


def _new_job(job_id: int, new: NewJob, cost: int, stamp: str) -> Job:
    """The row `_insert_job` just wrote, as `_job` would read it back (without re-reading)."""
    created = from_db(stamp)
    return Job(
        id=job_id, guild_id=new.guild_id, channel_id=new.channel_id, user_id=new.user_id,
        message_id=None, interaction_token=new.interaction_token, locale=new.locale,
        request=new.request, format=new.format, relay_name=new.relay_name, relay_id=None,
        status="queued", progress=None, phase=None, result_url=None, error_code=None,
        error_message=None, cost=cost, created_at=created, updated_at=created, started_at=None,
        finished_at=None, parent_job_id=new.parent_job_id, delivered_at=None, error_detail=None,
    )  # fmt: skip


def _job(row: sqlite3.Row) -> Job:
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
        created_at=from_db(row["created_at"]),
        updated_at=from_db(row["updated_at"]),
        started_at=from_db_opt(row["started_at"]),
        finished_at=from_db_opt(row["finished_at"]),
        parent_job_id=row["parent_job_id"],
        delivered_at=from_db_opt(row["delivered_at"]),
        error_detail=row["error_detail"],
        shown_at=from_db_opt(row["shown_at"]),
        lease_owner=row["lease_owner"],
        lease_expires=from_db_opt(row["lease_expires"]),
        cancel_requested=row["cancel_requested"],
    )
