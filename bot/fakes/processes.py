"""Real `python -m bot` processes against the loopback fakes, for tests and benchmarks.

Several processes (shards of one bot) run as an operator would run them: configured
only through environment variables, reaching the fakes over loopback. Their stderr is
read line by line as it comes, so a test waits for an event ("ready as") instead of
sleeping, and can `kill()` one with SIGKILL at a moment it chose.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import FakeRelay

REPO = Path(__file__).resolve().parents[2]


def bot_env(
    discord: FakeDiscord,
    relay: FakeRelay,
    relay_key: str,
    *,
    api_base: str | None = None,
    **settings: object,
) -> dict[str, str]:
    """Only what the bot needs, nothing inherited from the developer's `.env` or shell.

    `api_base` replaces the fake's REST base (a proxy in front of it); `settings` are
    more variables, by their lower-case names (`shard_ids="0"`, `database_path=...`).
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
        "DISCORD_TOKEN": discord.token or "",
        "DISCORD_API_BASE": api_base or f"{discord.url}/api/v10",
        "DISCORD_GATEWAY_URL": discord.gateway_url,
        "RELAY_BASE_URL": relay.url,
        "RELAY_API_KEY": relay_key,
        "RELAY_FORMAT": "task",
        "LOG_LEVEL": "INFO",
    }
    env.update({name.upper(): str(value) for name, value in settings.items()})
    return env


class BotProcess:
    """One `python -m bot ...` subprocess; its stderr lines are kept as they arrive."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process) -> None:
        self.name = name
        self.proc = proc
        self.lines: list[str] = []
        self.stdout = ""
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read(), name=f"{name}-stderr")

    @classmethod
    async def start(cls, name: str, env: dict[str, str], cwd: Path, *args: str) -> BotProcess:
        """Start `python -m bot ARGS` in `cwd` (a scratch folder: no stray `.env`)."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            *args,
            env=env,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(name, proc)

    @property
    def pid(self) -> int:
        return self.proc.pid

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

    def count(self, text: str) -> int:
        """How many stderr lines so far contain `text`."""
        return sum(text in line for line in self.lines)

    async def wait_for_line(
        self,
        text: str,
        timeout: float = 20,  # noqa: ASYNC109
        *,
        times: int = 1,
    ) -> str:
        """Until `times` stderr lines contain `text`; returns the last of them. Fails with
        the output so far if they never come (or the process ends first)."""

        def seen() -> bool:
            return self.count(text) >= times or self._reader.done()

        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(seen)
        except TimeoutError:
            raise AssertionError(f"{self.name}: no {text!r} in:\n{self.stderr[-4000:]}") from None
        found = [line for line in self.lines if text in line]
        assert len(found) >= times, f"{self.name} exited:\n{self.stderr[-4000:]}"
        return found[-1]

    async def ready(self, timeout: float = 30) -> str:  # noqa: ASYNC109
        """Until the bot logged that its shards are connected (`ready as ...`)."""
        return await self.wait_for_line("ready as", timeout)

    async def wait(self, timeout: float = 10) -> int:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            code = await self.proc.wait()
            await self._reader
        return code

    async def kill(self) -> int:
        """SIGKILL: no clean-up of any kind, as when the machine or the OOM killer ends it."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        return await self.wait(10)

    async def stop(self, sig: signal.Signals = signal.SIGINT, timeout: float = 15) -> int:  # noqa: ASYNC109
        """Send `sig` (Ctrl-C: a clean shutdown); kill if it does not end within `timeout`."""
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        try:
            return await self.wait(timeout)
        except TimeoutError:
            if self.proc.returncode is None:
                self.proc.kill()
            return await self.wait(5)
