"""Settings: one line per problem, secrets hidden, and the docs list every variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def test_env_example_loads_as_the_defaults(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text((ROOT / ".env.example").read_text())
    loaded = load_settings(env)
    assert loaded == Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize("document", [".env.example", "README.md"])
def test_every_variable_is_documented(document: str) -> None:
    text = (ROOT / document).read_text()
    missing = [name.upper() for name in Settings.model_fields if name.upper() not in text]
    assert missing == []


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("MAX_CONCURRENT_JOBS=zero", "MAX_CONCURRENT_JOBS"),
        ("RELAYS=not json", "RELAYS"),
        ('RELAYS=[{"name": "a"}]', "RELAYS"),
        ("RELAY_FORMAT=video", "RELAY_FORMAT"),
        ("RELAY_BASE_URL=relay.example", "RELAY_BASE_URL"),
        ("PUBLIC_BASE_URL=bot.example/hooks", "PUBLIC_BASE_URL"),
        ("COST_TABLE=10=1,15=2,25=4,sora-2-pro=x", "COST_TABLE"),
        ("COST_TABLE=10=1,15=2,25=4,sora-2-pro=0", "COST_TABLE"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(tmp_path: Path, line: str, named: str) -> None:
    env = tmp_path / ".env"
    env.write_text(line + "\n")
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    assert str(info.value).startswith(named) and "\n" not in str(info.value)


def test_secrets_stay_out_of_reprs(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(
        "DISCORD_TOKEN=discord-token-value\nRELAY_API_KEY=sk-relay-key-value\n"
        'RELAYS=[{"name":"b","base_url":"https://b.example","api_key":"sk-second-key"}]\n'
    )
    loaded = load_settings(env)
    shown = repr(loaded) + str(loaded) + repr(loaded.relay_configs())
    assert not re.search(r"discord-token-value|sk-relay-key-value|sk-second-key", shown)


def test_a_bad_cost_table_stops_loading_with_the_entry(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("COST_TABLE=10=1,15=2,25=4,hd=2,sora-2-pro=lots\n")
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    assert str(info.value) == "COST_TABLE is invalid: entry 'sora-2-pro=lots' is not a number"


async def test_public_base_url_gives_each_relay_its_callback_url() -> None:
    from bot.relay.pool import RelayPool

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        relays=[
            {"name": "main", "base_url": "https://a.example", "api_key": "sk-a"},
            {"name": "backup", "base_url": "https://b.example", "api_key": "sk-b"},
        ],
        relay_webhook_port=8085,
        relay_webhook_secret="s3cret",
        public_base_url="https://bot.example/",
    )
    pool = RelayPool.from_settings(settings)
    hooks = [member.client.hook for member in pool.members]
    assert [hook.url for hook in hooks if hook] == [
        "https://bot.example/relay-callback/s3cret/main",
        "https://bot.example/relay-callback/s3cret/backup",
    ]
    assert all(hook is not None and hook.callbacks is pool.callbacks for hook in hooks)
    quiet = RelayPool.from_settings(settings.model_copy(update={"public_base_url": ""}))
    assert all(member.client.hook is None for member in quiet.members)
    await pool.aclose()
    await quiet.aclose()
