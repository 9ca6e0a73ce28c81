"""The PostgreSQL test fixture itself: without PostgreSQL its tests are skipped with the
reason, except under CI=true, where they fail (CI must run them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
A_PG_TEST = "tests/store/test_postgres.py::test_data_survives_reopen"


def run_pytest(**env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("CI", "PG_BIN")}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", A_PG_TEST],
        cwd=ROOT, env=full, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_without_postgresql_the_tests_are_skipped_with_the_reason(tmp_path: Path) -> None:
    done = run_pytest(PG_BIN=str(tmp_path))
    assert done.returncode == 0, done.stdout
    assert "1 skipped" in done.stdout
    assert f"PostgreSQL binaries not found in {tmp_path}" in done.stdout  # shown by -rs


def test_without_postgresql_under_ci_the_tests_fail(tmp_path: Path) -> None:
    done = run_pytest(PG_BIN=str(tmp_path), CI="true")
    assert done.returncode == 1, done.stdout
    assert "skipped" not in done.stdout and "1 error" in done.stdout
    assert "PostgreSQL tests must run under CI=true" in done.stdout
