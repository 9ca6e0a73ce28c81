"""Shared fixtures.

`pg_server` (session) is a throwaway PostgreSQL server (tests/pg.py) and `pg_url` a
fresh empty database on it for one test. Where PostgreSQL is not installed they skip
with the reason, except under `CI=true`, where that fails the test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.pg import PgServer, pg_unavailable


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    reason = pg_unavailable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL tests must run under CI=true: {reason}", pytrace=False)
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    server = PgServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh, empty database for this test: `postgresql://postgres@127.0.0.1:PORT/NAME`."""
    return pg_server.create_database()
