"""Two OS processes on one store: 500 reservations against a budget of 100 leave exactly
100, and each job is settled once. PostgreSQL is made for this; SQLite manages it too
(WAL, `BEGIN IMMEDIATE` and a busy timeout), one writer at a time."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from bot.store import UNLIMITED, open_store

from .conftest import BACKENDS

ROOT = Path(__file__).resolve().parents[2]


# Run in a separate interpreter: open the store, say "ready", wait for "go", reserve
# 250 jobs at once, say how many went through, wait for "go", finish every queued job
# of the database (both processes race for all of them), say how many it finished.
_WORKER = textwrap.dedent(
    """
    import asyncio, json, sys
    from bot.store import QuotaExceededError
    from bot.store import UNLIMITED, open_store
    from tests.store.conftest import new_job

    async def main(where, base):
        url = where if where.startswith("postgresql://") else None
        db = await open_store(url, where, pool_size=20)
        print("ready", flush=True)
        sys.stdin.readline()
        results = await asyncio.gather(
            *(db.jobs.create(new_job(user_id=base + i), cost=1) for i in range(250)),
            return_exceptions=True,
        )
        ok = sum(1 for r in results if not isinstance(r, BaseException))
        refused = sum(1 for r in results if isinstance(r, QuotaExceededError))
        print(json.dumps({"ok": ok, "refused": refused}), flush=True)
        sys.stdin.readline()
        queued = [job.id for job in await db.jobs.unfinished()]
        finished = await asyncio.gather(
            *(db.jobs.finish(i, "failed" if i % 2 else "succeeded", refund=bool(i % 2))
              for i in queued)
        )
        print(json.dumps({"finished": sum(finished)}), flush=True)
        await db.close()

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    """
)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_500_reservations_from_two_processes_leave_exactly_the_budget(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    where = (
        request.getfixturevalue("pg_url") if backend == "postgresql" else str(tmp_path / "bot.db")
    )
    url = where if backend == "postgresql" else None
    async with await open_store(url, where) as db:
        await db.quotas.set_limits(1, monthly=100, user_daily=UNLIMITED)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _WORKER,
            where,
            str(base),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
            cwd=ROOT,
        )
        for base in (1000, 2000)
    ]
    try:

        async def each(line_wanted: str | None = None) -> list[str]:
            lines = []
            for proc in procs:
                assert proc.stdout is not None
                line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().strip()
                assert line, "a worker died"
                if line_wanted is not None:
                    assert line == line_wanted
                lines.append(line)
            return lines

        def go() -> None:
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write(b"go\n")

        await each("ready")
        go()
        counts = [json.loads(line) for line in await each()]
        assert sum(c["ok"] for c in counts) == 100
        assert sum(c["refused"] for c in counts) == 400
        if backend == "postgresql":  # both really competed, row lock by row lock
            assert all(c["ok"] > 0 for c in counts), counts
        # (On SQLite one process's group commit may take the whole budget in one write
        # transaction; the other's then read its committed totals and are refused.)
        go()
        finished = [json.loads(line)["finished"] for line in await each()]
        assert sum(finished) == 100  # each job finished once, by one process
        for proc in procs:
            assert await asyncio.wait_for(proc.wait(), 60) == 0
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    async with await open_store(url, where) as db:  # the workers' clock: the real one
        kinds = {
            row[0]: (row[1], row[2])
            for row in await db.fetchall(
                "SELECT kind, count(*), sum(units) FROM quota_ledger GROUP BY kind"
            )
        }
        assert kinds["reserve"] == (100, 100)
        assert kinds["commit"][0] + kinds["refund"][0] == 100
        one_each = await db.fetchone(
            "SELECT count(*) FROM (SELECT job_id FROM quota_ledger"
            " WHERE kind IN ('commit', 'refund') GROUP BY job_id HAVING count(*) > 1) AS twice"
        )
        assert one_each is not None and one_each[0] == 0
        assert await db.quotas.audit() == []
        status = await db.quotas.status(1, 5)
        assert status.guild_used == 100 - kinds["refund"][1]
