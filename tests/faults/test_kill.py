"""The bot process killed with SIGKILL mid-job: the real `python -m bot` as a subprocess
against the loopback fakes, then a fresh process on the same database."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
from collections import Counter
from pathlib import Path

from bot.fakes.discord import FakeDiscord, FakeInteraction, RecordedMessage
from bot.fakes.processes import BotProcess, bot_env
from bot.fakes.relay import FakeRelay

from .conftest import (
    CHARGED_ONCE,
    RELAY_KEY,
    LeakScan,
    deliveries,
    final_message,
    title,
)


def rendering(inter: FakeInteraction) -> bool:
    return inter.original is not None and title(inter.original).startswith("🎬")


def ledger(db: Path, job_id: int) -> Counter[str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT kind FROM quota_ledger WHERE job_id = ?", (job_id,))
        return Counter(kind for (kind,) in rows)


async def test_bot_killed_with_sigkill_mid_job_delivers_once_and_charges_once(
    fake_discord: FakeDiscord,
    relay: FakeRelay,
    tmp_path: Path,
    no_secret_leaks: LeakScan,
) -> None:
    """SIGKILL while the relay renders: the next process resumes polling the same relay task,
    edits the same reply to the result once, and the ledger holds one reserve and one commit."""
    relay.behaviour.retry_after_hint = 0.05  # the relay asks for quick polls (real time)
    held = asyncio.Event()
    relay.fail_next("poll", status=None, wait=held, times=10_000)
    db = tmp_path / "bot.db"
    # Only what the bot needs, at DEBUG: the leak scan reads everything it logs.
    env = bot_env(
        fake_discord,
        relay,
        RELAY_KEY,
        database_path=db,
        progress_edit_interval=0,
        log_level="DEBUG",
    )
    processes: list[BotProcess] = []

    async def launch(name: str, *args: str) -> BotProcess:
        process = await BotProcess.start(name, env, tmp_path, *args)
        processes.append(process)
        return process

    try:
        sync = await launch("sync", "sync")
        assert await sync.wait(15) == 0, sync.stderr
        assert "synced" in sync.stdout and fake_discord.find_command("video") is not None

        first = await launch("first run")
        await first.wait_for_line("ready as")
        inter = await fake_discord.run_slash("video", {"prompt": "a ship in a storm"})
        await inter.wait_until(rendering, timeout=10)  # the relay has it; the bot polls
        assert await first.kill() == -signal.SIGKILL
        held.set()

        second = await launch("second run")
        await second.wait_for_line("ready as")
        message: RecordedMessage = await final_message(fake_discord, 1, timeout=15)
        assert message is inter.original and title(message).startswith("✅")
        assert message.attachments
        assert deliveries(fake_discord, 1) == [message]
        assert relay.submits_for("a ship in a storm") == 1
        assert await second.stop() in (0, 130), second.stderr
        assert "Traceback" not in second.stderr, second.stderr
    finally:
        for process in processes:
            await process.stop(signal.SIGKILL, timeout=5)
            no_secret_leaks.add(f"{process.name} stderr", process.stderr)
            no_secret_leaks.add(f"{process.name} stdout", process.stdout)
    assert ledger(db, 1) == CHARGED_ONCE
