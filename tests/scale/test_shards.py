"""Shards: the settings and flags that split the gateway between processes, and the fake
Discord's side of it (guild placement, IDENTIFY's shard, `/gateway/bot`)."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from bot.__main__ import EXIT_USAGE, build_parser, main
from bot.fakes.discord import FakeDiscord, SteerableClock
from bot.settings import Settings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def settings_from(tmp_path: Path, text: str, **flags: object) -> Settings:
    env = tmp_path / "test.env"
    env.write_text(text)
    return load_settings(env, **flags)


def test_shard_ids_are_a_plain_list_out_of_a_count(tmp_path: Path) -> None:
    loaded = settings_from(tmp_path, "SHARD_IDS=2, 3\nSHARD_COUNT=4\n")
    assert loaded.shard_ids == (2, 3) and loaded.shard_count == 4
    assert loaded.shard_share == 0.5
    alone = settings_from(tmp_path, "")
    assert alone.shard_ids == () and alone.shard_count is None and alone.shard_share == 1.0
    # All shards of a fixed count in this one process: the whole budget.
    assert settings_from(tmp_path, "SHARD_COUNT=3\n").shard_share == 1.0


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("SHARD_IDS=0,1\n", "SHARD_IDS needs SHARD_COUNT"),
        ("SHARD_IDS=0,2\nSHARD_COUNT=2\n", "SHARD_IDS must be below SHARD_COUNT (2)"),
        ("SHARD_IDS=1,1\nSHARD_COUNT=2\n", "SHARD_IDS names a shard twice"),
        ("SHARD_IDS=one\nSHARD_COUNT=2\n", "SHARD_IDS is invalid"),
        ("SHARD_COUNT=0\n", "SHARD_COUNT is invalid"),
    ],
)
def test_a_bad_shard_setting_is_one_line_naming_it(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(SettingsError) as info:
        settings_from(tmp_path, text)
    assert str(info.value).startswith(says) and "\n" not in str(info.value)


def test_flags_win_over_the_environment(tmp_path: Path) -> None:
    args = build_parser().parse_args(["--shard-ids", "1", "--shard-count", "2"])
    assert (args.command, args.shard_ids, args.shard_count) == (None, "1", 2)
    args = build_parser().parse_args(["run", "--shard-ids", "0,1", "--shard-count", "4"])
    assert (args.command, args.shard_ids, args.shard_count) == ("run", "0,1", 4)
    args = build_parser().parse_args(["--shard-count", "4", "run", "--shard-ids", "3"])
    assert (args.shard_ids, args.shard_count) == ("3", 4)
    loaded = settings_from(tmp_path, "SHARD_IDS=0\nSHARD_COUNT=2\n", shard_ids="1")
    assert loaded.shard_ids == (1,) and loaded.shard_count == 2


def test_a_bad_shard_flag_stops_the_bot_with_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "token")
    assert main(["--shard-ids", "2", "--shard-count", "2"]) == EXIT_USAGE
    assert capsys.readouterr().err == "SHARD_IDS must be below SHARD_COUNT (2)\n"


async def test_the_fake_places_guilds_on_the_shard_asked_for() -> None:
    fake = FakeDiscord(shards=3, default_guild=False)
    placed = [fake.add_guild(f"g{n}", shard=n % 3) for n in range(7)]
    assert [fake.shard_of(g.id) for g in placed] == [n % 3 for n in range(7)]
    assert [g.id for g in placed] == sorted(g.id for g in placed)  # still increasing
    assert all((g.id >> 22) % 3 == n % 3 for n, g in enumerate(placed))
    with pytest.raises(ValueError, match="shard 3"):
        fake.add_guild("nowhere", shard=3)


async def test_gateway_bot_says_the_shard_count_and_identify_checks_the_shard() -> None:
    async with FakeDiscord(shards=2, clock=SteerableClock()) as fake:
        headers = {"Authorization": f"Bot {fake.token}"}
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{fake.url}/api/v10/gateway/bot", headers=headers) as got:
                assert (await got.json())["shards"] == 2
            async with session.ws_connect(fake.gateway_url) as ws:
                hello = await ws.receive_json()
                assert hello["op"] == 10
                identify = {"token": fake.token, "shard": [2, 2], "intents": 1, "properties": {}}
                await ws.send_str(json.dumps({"op": 2, "d": identify}))
                closed = await ws.receive()
                assert closed.type is aiohttp.WSMsgType.CLOSE and closed.data == 4010
