"""`python -m bot migrate` and `python -m bot copy-db`: an installation moves from SQLite
to PostgreSQL with nothing lost."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

from bot.clock import FakeClock
from bot.relay.models import ImageInput, VideoRequest
from bot.store import Database, Job, NewJob, QuotaExceededError
from bot.store.database import load_migrations
from bot.store.postgres import PgDatabase
from bot.store.postgres.database import load_pg_migrations
from bot.store.transfer import TransferError, copy_sqlite_to_postgres

from .conftest import new_job

ROOT = Path(__file__).resolve().parents[2]
GUILDS = (1, 2**62 + 7)
USERS = (10, 11, 2**62 + 9)


async def run_cli(cwd: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "DISCORD_", "DATA"))}
    full.update({"PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING", **env})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=cwd, env=full,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def fill(db: Database, clock: FakeClock) -> None:
    """A used installation: jobs in every status (delivered or not), remixes, images,
    grants, resets, refunds across days and months, role rules, characters, settings."""
    await db.quotas.set_limits(GUILDS[0], monthly=500, user_daily=40, admins_exempt=True)
    await db.quotas.set_role_rule(GUILDS[0], 555, multiplier=1.5)
    await db.quotas.set_role_rule(GUILDS[0], 556, exempt=True)
    await db.guilds.set(GUILDS[1], locale="zh-CN", relay_format="chat", notify_channel_id=2**62)
    await db.characters.add(
        GUILDS[0], "kitty", character_id="ch_1", username="cat.one",
        permalink="https://x/p", picture_url=None, created_by=USERS[0],
    )  # fmt: skip
    await db.characters.add(
        GUILDS[1], "Bob-2", character_id="ch_2", username="bob.two", permalink=None,
        picture_url="https://x/b.png", created_by=USERS[2],
    )  # fmt: skip
    await db.preferences.set_member(GUILDS[0], USERS[0], model="sora-2-pro", hd=False)
    await db.preferences.set_server(GUILDS[1], duration=15, private=True)
    await db.preferences.set_allowed_models(GUILDS[1], ["sora-2", "sora-2-pro"])
    image = os.urandom(70_000) + b"\x00\xff"
    endings = [
        ("succeeded", False), ("failed", True), ("cancelled", True), ("timed_out", True),
        ("interrupted", True), ("failed", False),
    ]  # fmt: skip
    jobs: list[Job] = []
    for n in range(24):
        guild = None if n % 7 == 6 else GUILDS[n % 2]
        user = USERS[n % 3]
        images = (ImageInput(data=image, content_type="image/png"),) if n % 5 == 0 else ()
        new = NewJob(
            guild_id=guild, channel_id=None if guild is None else 100 + n, user_id=user,
            request=VideoRequest.build(prompt=f"job {n} 猫 🎹", images=images),
            format=("task", "chat", "official")[n % 3], relay_name=("main", "backup")[n % 2],
            interaction_token=f"tok{n}" if n % 4 else None, locale=("en-US", "zh-CN")[n % 2],
            parent_job_id=jobs[-1].id if n % 6 == 5 else None,
        )  # fmt: skip
        try:
            jobs.append(await db.jobs.create(new, cost=n % 4, roles=(555,) if n % 2 else ()))
        except QuotaExceededError:
            continue
        clock.advance(3 * 3600 + 17.25)  # crosses days, and (below) a month
        if n == 12:
            await db.quotas.grant(GUILDS[0], 20, actor=USERS[1])
            await db.quotas.grant(GUILDS[0], 3, user_id=USERS[0], actor=USERS[1])
            await db.quotas.reset(GUILDS[1], actor=USERS[2])
            await db.quotas.reset(None, user_id=USERS[0], actor=USERS[0])
            clock.advance(20 * 86400)
    for n, job in enumerate(jobs):
        if n % 8 == 7:
            continue  # still queued
        await db.jobs.mark_submitting(job.id)
        if n % 8 == 6:
            continue  # still submitting
        await db.jobs.mark_running(job.id, f"task_{job.id}", relay_name="main", format="task")
        await db.jobs.set_progress(job.id, 42.5, "rendering")
        await db.jobs.set_message(job.id, channel_id=200, message_id=2**62 + job.id)
        if n % 8 == 5:
            continue  # still running
        clock.advance(61.5)
        status, refund = endings[n % len(endings)]
        await db.jobs.finish(
            job.id, status,  # type: ignore[arg-type]
            result_url="https://cdn/v.mp4" if status == "succeeded" else None,
            error_code=None if status == "succeeded" else "relay_unavailable",
            error_message=None if status == "succeeded" else "上游负载已饱和",
            error_detail="prompt" if status == "failed" else None, refund=refund,
        )  # fmt: skip
        if n % 3:
            await db.jobs.mark_shown(job.id)
            await db.jobs.mark_delivered(job.id)
    assert await db.quotas.audit() == []


async def snapshot(db: Database) -> dict[str, object]:
    """Everything the bot can read back through the store interface."""
    ids = range(1, 40)
    out: dict[str, object] = {
        "jobs": [await db.jobs.get(i) for i in ids],
        "unfinished": await db.jobs.unfinished(),
        "undelivered": await db.jobs.undelivered(),
        "audit": await db.quotas.audit(),
        "render": await db.jobs.render_seconds("main", model="sora-2", duration=10, hd=False),
        "images": await db.images.count(),
    }
    for guild in (*GUILDS, None):
        out[f"ledger {guild}"] = await db.quotas.ledger(guild, limit=1000)
        for user in USERS:
            out[f"status {guild} {user}"] = await db.quotas.status(guild, user, roles=(555,))
            out[f"recent {guild} {user}"] = await db.jobs.recent_for_user(guild, user, 50)
            out[f"summaries {guild} {user}"] = await db.jobs.summaries_for_user(guild, user)
    for guild in GUILDS:
        out[f"limits {guild}"] = await db.quotas.limits(guild)
        out[f"rules {guild}"] = await db.quotas.role_rules(guild)
        out[f"settings {guild}"] = await db.guilds.get(guild)
        out[f"characters {guild}"] = await db.characters.list(guild)
        out[f"prefs {guild}"] = [await db.preferences.get(guild, u) for u in USERS]
        out[f"active {guild}"] = await db.jobs.active_for_guild(guild)
    loaded = []
    for job in out["jobs"]:  # type: ignore[attr-defined]
        if job is not None and job.request.images:
            loaded.append(await db.images.load(job.request))
    out["loaded images"] = loaded
    return out


async def test_copy_db_moves_everything_and_the_ledger_matches(
    tmp_path: Path, pg_url: str, clock: FakeClock
) -> None:
    path = tmp_path / "bot.db"
    async with await Database.open(path, clock=clock, default_user_daily=30) as lite:
        await fill(lite, clock)
        kinds = {r[0] for r in await lite.fetchall("SELECT DISTINCT kind FROM quota_ledger")}
        statuses = {r[0] for r in await lite.fetchall("SELECT DISTINCT status FROM jobs")}
        # Deleted ids are never reused, by either backend, after the copy.
        gone = await lite.jobs.create(new_job(), cost=0)
        await lite.execute("DELETE FROM quota_ledger WHERE job_id = ?", (gone.id,))
        deleted = await lite.execute("DELETE FROM jobs WHERE id = ?", (gone.id,))
        before = await snapshot(lite)
    assert kinds == {"reserve", "commit", "refund", "grant", "reset"}
    assert statuses >= {"queued", "submitting", "running", "succeeded", "failed", "cancelled"}
    assert statuses >= {"timed_out", "interrupted"}
    assert deleted == 1

    code, out, err = await run_cli(
        tmp_path, {}, "copy-db", "--from", f"sqlite:{path}", "--to", pg_url
    )
    assert (code, err) == (0, ""), err
    assert out.startswith("copied ") and "every row reads back the same" in out
    assert len(out.strip().splitlines()) == 1

    async with await PgDatabase.open(pg_url, clock=clock, default_user_daily=30) as pg:
        after = await snapshot(pg)  # type: ignore[arg-type]
        assert after.keys() == before.keys()
        for key in before:
            assert after[key] == before[key], key
        assert before["audit"] == [] and len(before["ledger 1"]) >= 20  # type: ignore[arg-type]
        again = await pg.jobs.create(new_job(guild_id=GUILDS[1], user_id=USERS[1]), cost=0)
        assert again.id == gone.id + 1  # after the deleted one, as SQLite would number it

    # A second copy into the now filled database is refused, with one line...
    code, out, err = await run_cli(
        tmp_path, {}, "copy-db", "--from", f"sqlite:{path}", "--to", pg_url
    )
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "already holds data" in err and "--replace" in err
    # ...unless told to replace it: then it matches the source again (the new job is gone).
    code, out, err = await run_cli(
        tmp_path, {"DATABASE_URL": pg_url}, "copy-db", "--from", f"sqlite:{path}", "--replace"
    )
    assert code == 0, err
    async with await PgDatabase.open(pg_url, clock=clock, default_user_daily=30) as pg:
        assert await snapshot(pg) == before  # type: ignore[arg-type]


async def test_copy_db_refusals_are_one_line(tmp_path: Path, pg_url: str) -> None:
    missing = await run_cli(tmp_path, {}, "copy-db", "--from", "sqlite:nope.db", "--to", pg_url)
    no_target = await run_cli(tmp_path, {}, "copy-db", "--from", "sqlite:nope.db")
    async with await Database.open(tmp_path / "ok.db"):
        pass
    bad_target = await run_cli(
        tmp_path, {}, "copy-db", "--from", "sqlite:ok.db", "--to", "mysql://x/y"
    )
    closed = pg_url.rsplit(":", 1)[0] + ":1/db"
    unreachable = await run_cli(
        tmp_path, {}, "copy-db", "--from", "sqlite:ok.db", "--to",
        closed.replace("postgres@", "postgres:hunter2@"),
    )  # fmt: skip
    for (code, out, err), words in [
        (missing, "no SQLite database at nope.db"),
        (no_target, "--to postgresql://"),
        (bad_target, "--to must be a postgresql:// URL"),
        (unreachable, "Cannot reach postgresql://postgres:***@127.0.0.1:1/db"),
    ]:
        assert code != 0 and out == ""
        assert err.count("\n") == 1 and words in err, err
        assert "Traceback" not in err and "hunter2" not in err


async def test_a_bad_value_refuses_the_whole_copy(tmp_path: Path, pg_url: str) -> None:
    path = tmp_path / "bot.db"
    async with await Database.open(path) as lite:
        await lite.jobs.create(new_job(), cost=1)
        await lite.execute(
            "INSERT INTO guild_settings (guild_id, updated_at) VALUES (5, 'yesterday')"
        )
    with pytest.raises(TransferError, match=r"guild_settings\.updated_at holds 'yesterday'"):
        await copy_sqlite_to_postgres(path, pg_url)
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM jobs") == 0  # nothing half-copied
    finally:
        await conn.close()


async def test_migrate_applies_pending_migrations_and_says_from_and_to(
    tmp_path: Path, pg_url: str
) -> None:
    sqlite_first = await run_cli(tmp_path, {"DATABASE_PATH": "data/bot.db"}, "migrate")
    sqlite_again = await run_cli(tmp_path, {"DATABASE_PATH": "data/bot.db"}, "migrate")
    pg_first = await run_cli(tmp_path, {"DATABASE_URL": pg_url}, "migrate")
    pg_again = await run_cli(tmp_path, {"DATABASE_URL": pg_url}, "migrate")
    newest, pg_newest = len(load_migrations()), len(load_pg_migrations())
    assert sqlite_first == (0, f"data/bot.db: schema version 0 -> {newest}\n", "")
    assert sqlite_again[1] == f"data/bot.db: schema version {newest}, already the newest\n"
    assert pg_first[0] == 0 and pg_first[1].endswith(f": schema version 0 -> {pg_newest}\n")
    assert pg_again[1].endswith(f"schema version {pg_newest}, already the newest\n")
    # A newer schema than the code is refused, in one line, and left alone.
    conn = await asyncpg.connect(pg_url)
    await conn.execute("INSERT INTO schema_version (version) VALUES (99)")
    await conn.close()
    code, out, err = await run_cli(tmp_path, {"DATABASE_URL": pg_url}, "migrate")
    assert code == 2 and out == "" and err.count("\n") == 1 and "99" in err


def test_the_copy_keeps_job_rows_equal(clock: FakeClock) -> None:
    """A Job read back from either backend compares equal field by field (the copy test
    relies on it): created_at is an aware UTC datetime on both."""
    job = Job(
        id=1, guild_id=1, channel_id=None, user_id=2, message_id=None, interaction_token=None,
        locale="en-US", request=VideoRequest.build(prompt="x"), format="task",
        relay_name="main", relay_id=None, status="queued", progress=None, phase=None,
        result_url=None, error_code=None, error_message=None, cost=0,
        created_at=clock.now(), updated_at=clock.now(), started_at=None, finished_at=None,
        parent_job_id=None,
    )  # fmt: skip
    assert replace(job, created_at=clock.now().astimezone()) == job
