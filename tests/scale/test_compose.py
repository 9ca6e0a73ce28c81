"""`compose.yaml`: the documented deployment (PostgreSQL 15 + two bot processes) parses and
is consistent with the bot: every variable it sets is a setting, the shards cover the
bot once, every process uses the same PostgreSQL, and the commands it runs exist.
(`docker compose config` is not available where the tests run.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.__main__ import build_parser
from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def bots(services: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items() if "SHARD_IDS" in s.get("environment", {})}


def test_compose_runs_postgresql_15_with_a_healthcheck_and_a_volume() -> None:
    services = compose()["services"]
    db = services["db"]
    assert db["image"] == "postgres:15"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert any(volume.endswith(":/var/lib/postgresql/data") for volume in db["volumes"])
    assert set(compose()["volumes"]) >= {v.split(":")[0] for v in db["volumes"]}


def test_the_bot_processes_split_the_shards_and_share_one_database() -> None:
    services = compose()["services"]
    processes = bots(services)
    assert len(processes) == 2
    counts = {int(s["environment"]["SHARD_COUNT"]) for s in processes.values()}
    assert counts == {2}
    shards = sorted(
        int(shard)
        for s in processes.values()
        for shard in str(s["environment"]["SHARD_IDS"]).split(",")
    )
    assert shards == [0, 1]  # every shard, once
    urls = {s["environment"]["DATABASE_URL"] for s in processes.values()}
    assert len(urls) == 1 and next(iter(urls)).startswith("postgresql://sora:")
    assert "@db:5432/" in next(iter(urls))
    for service in processes.values():
        assert service["build"] == "." and service["env_file"] == ".env"
        assert service["depends_on"]["db"]["condition"] == "service_healthy"
        assert service.get("command") is None  # the image's `python -m bot`: run


def test_every_variable_compose_sets_is_a_setting_and_every_command_exists() -> None:
    services = compose()["services"]
    known = {name.upper() for name in Settings.model_fields}
    for name, service in services.items():
        if name == "db":
            continue
        unknown = set(service.get("environment", {})) - known
        assert unknown == set(), f"{name} sets {unknown}, which the bot does not read"
        command = service.get("command")
        if command is not None:
            assert command[:3] == ["python", "-m", "bot"]
            build_parser().parse_args(command[3:])  # exits on an unknown command
    assert services["sync"]["profiles"] == ["sync"]  # run by hand, not at every `up`
    assert (ROOT / "Dockerfile").exists()
