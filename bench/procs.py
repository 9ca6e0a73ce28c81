"""The bot as its own process (`python -m bot`), so its CPU and memory are its own.

The fakes stay in the benchmark's process; the bot reaches them through the same
variables an operator would set (`DISCORD_API_BASE`, `DISCORD_GATEWAY_URL`,
`RELAY_BASE_URL`), and `/proc/PID` tells what it costs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import FakeRelay

REPO = Path(__file__).resolve().parent.parent
RELAY_KEY = "sk-bench-relay-0123456789abcdef"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ProcSample:
    """CPU seconds used so far, resident memory now and at its peak (bytes)."""

    at: float
    cpu_seconds: float
    rss: int
    peak_rss: int


def sample(pid: int) -> ProcSample:
    """Read utime+stime and VmRSS/VmHWM of `pid` (Linux /proc)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may contain spaces
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    rss = peak = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
        elif line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
    return ProcSample(time.monotonic(), cpu, rss, peak)


def bot_env(
    discord: FakeDiscord, relay: FakeRelay, workdir: Path, **settings: object
) -> dict[str, str]:
    """Environment for `python -m bot` against the fakes; `settings` are more variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "RELAY"))}
    env.update(
        PYTHONPATH=str(REPO),
        PYTHONUNBUFFERED="1",
        DISCORD_TOKEN=discord.token or "",
        DISCORD_API_BASE=f"{discord.url}/api/v10",
        DISCORD_GATEWAY_URL=discord.gateway_url,
        RELAY_BASE_URL=relay.url,
        RELAY_API_KEY=RELAY_KEY,
        RELAY_FORMAT="task",
        DATABASE_PATH=str(workdir / "bot.db"),
        LOG_LEVEL="INFO",
        QUOTA_GUILD_MONTHLY="100000000",
        QUOTA_USER_DAILY="100000000",
    )
    env.update({name.upper(): str(value) for name, value in settings.items()})
    return env


class BotProcess:
    """`async with BotProcess(env, workdir) as bot:` starts the bot and waits for READY."""

    def __init__(self, env: dict[str, str], workdir: Path, *, ready_timeout: float = 30.0):
        self.env = env
        self.workdir = workdir
        self.ready_timeout = ready_timeout
        self.log_path = workdir / "bot.log"
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def sample(self) -> ProcSample:
        return sample(self.pid)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def __aenter__(self) -> BotProcess:
        log = self.log_path.open("wb")
        try:
            # cwd is the scratch folder: no stray `.env` is read.
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "run",
                cwd=self.workdir,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        finally:
            log.close()
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise
        return self

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        assert self.proc is not None
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                raise RuntimeError(f"the bot exited early:\n{self.log_tail()}")
            if "ready as" in self.log_path.read_text(errors="replace"):
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"the bot was not ready in {self.ready_timeout:g} s:\n{self.log_tail()}")

    async def stop(self) -> None:
        """Ctrl-C (a clean shutdown), then a kill if it hangs; only our own child."""
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
