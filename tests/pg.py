"""A throwaway PostgreSQL server for the tests, started from the machine's own binaries.

    with PgServer.start() as server:          # or the session fixture `pg_server`
        url = server.create_database()        # a fresh, empty database: postgresql://…

`initdb` and `postgres` refuse to run as root, and CI and the development machines run
as root: then every server command runs as the `postgres` user through `runuser`, in a
temporary folder that user owns. The server listens on 127.0.0.1 on a free port (and
on a unix socket in that folder), trusts every local connection and never fsyncs; the
folder is removed when it stops. Binaries come from `PG_BIN` (only there, when it is
set), else the newest /usr/lib/postgresql/*/bin, else `pg_config --bindir`.

Without binaries `pg_unavailable()` says why; the fixtures then skip, except under
`CI=true`, where a missing PostgreSQL fails the test instead (CI must run them).
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

SERVER_OPTIONS = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    " -c max_connections=300 -c shared_buffers=32MB -c log_min_messages=warning"
)


def find_bindir() -> Path | None:
    """Where `initdb`, `pg_ctl` and `postgres` live, or None."""
    env = os.environ.get("PG_BIN")
    if env:  # when set, the only place looked at
        folder = Path(env)
        return (
            folder if all((folder / n).exists() for n in ("initdb", "pg_ctl", "postgres")) else None
        )
    candidates: list[Path] = []
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        versions = sorted(
            (p for p in root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
        )
        candidates += [p / "bin" for p in reversed(versions)]
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True
            ).stdout.strip()
            candidates.append(Path(out))
        except (OSError, subprocess.CalledProcessError):
            pass
    for folder in candidates:
        if all((folder / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def pg_unavailable() -> str | None:
    """Why no test server can be started here, or None if one can."""
    if find_bindir() is None:
        where = os.environ.get("PG_BIN") or "/usr/lib/postgresql/*/bin or pg_config --bindir"
        return f"PostgreSQL binaries not found in {where} (install postgresql or set PG_BIN)"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing (initdb refuses root)"
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PgServer:
    """A running server; `create_database()` hands out fresh databases."""

    bindir: Path
    folder: Path
    port: int
    _as_user: list[str] = field(default_factory=list)
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def datadir(self) -> Path:
        return self.folder / "data"

    @property
    def socket_dir(self) -> Path:
        return self.folder

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls) -> PgServer:
        reason = pg_unavailable()
        if reason:
            raise RuntimeError(reason)
        bindir = find_bindir()
        assert bindir is not None
        folder = Path(tempfile.mkdtemp(prefix="bot-pg-"))
        as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
            as_user = ["runuser", "-u", "postgres", "--"]
        server = cls(bindir, folder, _free_port(), as_user)
        try:
            server._run(
                "initdb", "-D", str(server.datadir), "-A", "trust", "-U", "postgres",
                "-E", "UTF8", "--locale=C", "--no-sync",
            )  # fmt: skip
            server._run(
                "pg_ctl", "-D", str(server.datadir), "-l", str(folder / "server.log"), "-w",
                "-t", "60", "-o",
                f"-p {server.port} -k {folder} -c listen_addresses=127.0.0.1 {SERVER_OPTIONS}",
                "start",
            )  # fmt: skip
        except BaseException:
            server._remove()
            raise
        return server

    def _run(self, tool: str, *args: str) -> str:
        command = [*self._as_user, str(self.bindir / tool), *args]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.folder)
        if done.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(
                f"{tool} failed ({done.returncode}): {done.stderr.strip()} {tail}".strip()
            )
        return done.stdout

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL through psql over the socket (no Python driver needed)."""
        return self._run(
            "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(self.socket_dir),
            "-p", str(self.port), "-U", "postgres", "-d", database, "-At", "-c", sql,
        )  # fmt: skip

    def create_database(self, template: str = "template0") -> str:
        """A new empty database (cheap: a copy of `template`); returns its URL."""
        with self._lock:
            name = f"test_{os.getpid()}_{next(self._counter)}"
        self.psql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            if (self.datadir / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop")
        finally:
            self._remove()

    def _remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PgServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
