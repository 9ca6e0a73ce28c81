"""The bot process killed with SIGKILL mid-job: the real `python -m bot` as a subprocess
against the loopback fakes, then a fresh process on the same database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from collections import Counter
from pathlib import Path

from bot.fakes.discord import FakeDiscord, FakeInteraction, RecordedMessage
from bot.fakes.relay import FakeRelay

from .conftest import (
    CHARGED_ONCE,
    DISCORD_TOKEN,
    RELAY_KEY,
    LeakScan,
    deliveries,
    final_message,
    title,
)

REPO = Path(__file__).resolve().parents[2]


class BotProcess:
    """One `python -m bot ...` subprocess; stderr is read as it comes, for events and leaks."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process) -> None:
        self.name = name
        self.proc = proc
        self.lines: list[str] = []
        self.stdout = ""
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, name: str, args: list[str], env: dict[str, str], cwd: Path) -> BotProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            *args,
            env=env,
            cwd=cwd,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(name, proc)

    async def _read(self) -> None:
        assert self.proc.stderr is not None and self.proc.stdout is not None
        out = asyncio.create_task(self.proc.stdout.read())
        async for raw in self.proc.stderr:
            async with self._changed:
                self.lines.append(raw.decode("utf-8", "replace"))
                self._changed.notify_all()
        self.stdout = (await out).decode("utf-8", "replace")
        async with self._changed:
            self._changed.notify_all()

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    async def wait_for_line(self, text: str, timeout: float = 15) -> None:
        """Until a stderr line contains `text`; fails with the output so far if it never does."""

        def seen() -> bool:
            return any(text in line for line in self.lines) or self._reader.done()

        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(seen)
        except TimeoutError:
            raise AssertionError(f"{self.name}: no {text!r} in:\n{self.stderr[-3000:]}") from None
        assert any(text in line for line in self.lines), f"{self.name} exited:\n{self.stderr}"

    async def wait(self, timeout: float = 10) -> int:
        async with asyncio.timeout(timeout):
            code = await self.proc.wait()
            await self._reader
        return code

    async def stop(self, sig: signal.Signals = signal.SIGINT, timeout: float = 10) -> int:
        """Send `sig`; kill if it does not end within `timeout`."""
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        try:
            return await self.wait(timeout)
        except TimeoutError:
            self.proc.kill()
            return await self.wait(5)


def bot_env(fake: FakeDiscord, relay: FakeRelay, db: Path) -> dict[str, str]:
    """Only what the bot needs: nothing inherited from the developer's environment."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
        "DISCORD_TOKEN": DISCORD_TOKEN,
        "DISCORD_API_BASE": f"{fake.url}/api/v10",
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "RELAY_BASE_URL": relay.url,
        "RELAY_API_KEY": RELAY_KEY,
        "RELAY_FORMAT": "task",
        "DATABASE_PATH": str(db),
        "PROGRESS_EDIT_INTERVAL": "0",
        "LOG_LEVEL": "DEBUG",
    }


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
    env = bot_env(fake_discord, relay, db)
    processes: list[BotProcess] = []

    async def launch(name: str, *args: str) -> BotProcess:
        process = await BotProcess.start(name, list(args), env, tmp_path)
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
        first.proc.send_signal(signal.SIGKILL)
        assert await first.wait(5) == -signal.SIGKILL
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
