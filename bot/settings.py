"""Configuration from the environment and `.env`, read once by `bot.__main__`.

Settings are grouped the way they are used (Discord, relay, jobs, quotas) so each
part of the bot receives only what it needs. Secrets are `SecretStr`: they never
appear in a repr or a log line, and `get_secret_value()` is called only where the
secret is put on the wire.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import pydantic_settings
from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

if TYPE_CHECKING:
    from bot.catalogue import Catalogue

RelayFormat = Literal["chat", "task", "official"]
ChatStyle = Literal["suffix", "prefix"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the variable."""


def _check_url(value: str) -> str:
    value = value.strip()
    if value and not value.startswith(("http://", "https://", "ws://", "wss://")):
        raise ValueError("must start with http:// or https:// (ws:// or wss:// for the gateway)")
    return value.rstrip("/")


class RelayConfig(BaseModel):
    """One relay in `RELAYS` (a JSON list), tried in order."""

    name: str = Field(min_length=1, max_length=32, pattern=r"^[\w.-]+$")
    base_url: str = Field(min_length=1)
    api_key: SecretStr
    format: RelayFormat = "task"
    chat_style: ChatStyle = "suffix"
    chat_model: str = "sora_video2"
    # Chat format: seconds a stream may stay silent; None = `RELAY_STREAM_IDLE_SECONDS`.
    stream_idle_seconds: float | None = Field(default=None, gt=0)
    # Requests a minute this relay allows the key; None = `RELAY_REQUESTS_PER_MINUTE`.
    requests_per_minute: int | None = Field(default=None, ge=1)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)


class Settings(BaseSettings):
    """Every variable the bot reads. `.env.example` documents each with its default."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        env_ignore_empty=True,  # `NAME=` in .env means "the default", as .env.example shows
    )

    # Discord
    discord_token: SecretStr | None = None
    discord_api_base: str = ""
    discord_gateway_url: str = ""
    interaction_token_ttl: float = Field(default=14 * 60, gt=0)
    progress_edit_interval: float = Field(default=5.0, ge=0)
    progress_edits_per_second: float = Field(default=3.0, gt=0)
    # Sharding: how many shards the bot has in all, and which of them this process runs
    # ("0,1"); empty = discord.py decides (every shard in this one process).
    shard_count: int | None = Field(default=None, ge=1)
    shard_ids: Annotated[tuple[int, ...], NoDecode] = ()

    # Relay
    relay_base_url: str = ""
    relay_api_key: SecretStr | None = None
    relay_format: RelayFormat = "task"
    relay_chat_style: ChatStyle = "suffix"
    relay_chat_model: str = "sora_video2"
    relay_timeout: float = Field(default=30.0, gt=0)
    relay_stream_idle_seconds: float = Field(default=600.0, gt=0)
    relay_polls_per_second: float = Field(default=4.0, gt=0)
    relay_requests_per_minute: int | None = Field(default=None, ge=1)
    relays: list[RelayConfig] = Field(default_factory=list)
    relay_failure_threshold: int = Field(default=3, ge=1)
    relay_cooldown_seconds: float = Field(default=60.0, ge=0)
    relay_models_refresh_seconds: float = Field(default=600.0, gt=0)
    relay_webhook_port: int | None = Field(default=None, ge=0, le=65535)
    relay_webhook_host: str = "127.0.0.1"
    relay_webhook_secret: SecretStr | None = None
    public_base_url: str = ""
    operator_channel_id: int | None = None

    # Storage and logs
    database_path: Path = Path("data/bot.db")
    # postgresql://user:password@host:port/dbname selects PostgreSQL; empty keeps SQLite.
    database_url: SecretStr | None = None
    database_pool_size: int = Field(default=10, ge=1, le=1000)
    log_level: LogLevel = "INFO"

    # Jobs
    max_concurrent_jobs: int = Field(default=8, ge=1)
    max_concurrent_jobs_per_guild: int = Field(default=3, ge=1)
    job_deadline_minutes: float = Field(default=20.0, gt=0)
    job_lease_seconds: float = Field(default=30.0, ge=3)
    process_name: str = ""
    max_image_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    max_download_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    image_retention_days: float = Field(default=30.0, gt=0)

    # Quotas (cost units)
    quota_guild_monthly: int = Field(default=200, ge=0)
    quota_user_daily: int = Field(default=24, ge=0)
    # Empty: the model catalogue prices every video (see bot/jobs/costs.py)
    cost_table: str = ""

    # Models (bot/catalogue.py): None = the shipped catalogue only
    models_file: Path | None = None

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _shard_list(cls, value: object) -> object:
        """`SHARD_IDS=0,1` (a plain list, as operators write it, not JSON)."""
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            if not all(part.isdigit() for part in parts):
                raise ValueError("must be shard numbers separated by commas, e.g. 0,1")
            return tuple(int(part) for part in parts)
        return value

    @model_validator(mode="after")
    def _shards_fit(self) -> Settings:
        """Each process names its shards out of one total, so no guild is served twice."""
        if not self.shard_ids:
            return self
        if self.shard_count is None:
            raise ValueError("SHARD_IDS needs SHARD_COUNT (the total over every process)")
        if len(set(self.shard_ids)) != len(self.shard_ids):
            raise ValueError("SHARD_IDS names a shard twice")
        if max(self.shard_ids) >= self.shard_count:
            raise ValueError(f"SHARD_IDS must be below SHARD_COUNT ({self.shard_count})")
        return self

    @property
    def shard_share(self) -> float:
        """The part of the bot this process runs: its shards out of all of them (1 if alone).

        Discord limits the bot token, not the process: per-process budgets such as
        `PROGRESS_EDITS_PER_SECOND` are multiplied by this, so the processes together
        stay within the whole.
        """
        if not self.shard_ids or self.shard_count is None:
            return 1.0
        return len(self.shard_ids) / self.shard_count

    @field_validator("cost_table")
    @classmethod
    def _cost_table(cls, value: str) -> str:
        """A bad price stops start-up here, with one line, not at the first /video."""
        from bot.jobs.costs import CostTable, CostTableError  # not a leaf: imported late

        if not value.strip():
            return ""
        try:
            CostTable.parse(value)
        except CostTableError as exc:
            raise ValueError(str(exc).removeprefix("COST_TABLE ")) from None
        return value

    @field_validator("models_file")
    @classmethod
    def _models_file(cls, value: Path | None) -> Path | None:
        """A bad catalogue stops start-up here, with one line naming the entry and field."""
        from bot.catalogue import CatalogueError, load_catalogue  # not a leaf: imported late

        try:
            load_catalogue(value)
        except CatalogueError as exc:
            raise ValueError(str(exc).removeprefix("MODELS_FILE ")) from None
        return value

    def catalogue(self) -> Catalogue:
        """The model catalogue: the shipped defaults changed by `MODELS_FILE`."""
        from bot.catalogue import load_catalogue

        return load_catalogue(self.models_file)

    @field_validator("relay_base_url", "discord_api_base", "discord_gateway_url", "public_base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("postgresql://", "postgres://")
        ):
            raise ValueError("must start with postgresql:// (leave it empty for SQLite)")
        return value

    @field_validator("relays")
    @classmethod
    def _unique_names(cls, value: list[RelayConfig]) -> list[RelayConfig]:
        names = [relay.name for relay in value]
        if len(set(names)) != len(names):
            raise ValueError("relay names must be unique")
        return value

    def relay_configs(self) -> list[RelayConfig]:
        """`RELAYS` when set; otherwise the single relay of the `RELAY_*` variables."""
        if self.relays:
            return self.relays
        self.require("relay_base_url", "relay_api_key")
        assert self.relay_api_key is not None
        return [
            RelayConfig(
                name="default",
                base_url=self.relay_base_url,
                api_key=self.relay_api_key,
                format=self.relay_format,
                chat_style=self.relay_chat_style,
                chat_model=self.relay_chat_model,
            )
        ]

    def require(self, *names: str) -> None:
        """Fail with one line naming the first of `names` that is unset."""
        for name in names:
            value = getattr(self, name)
            if (
                value is None
                or value == ""
                or (isinstance(value, SecretStr) and not value.get_secret_value())
            ):
                raise SettingsError(f"{name.upper()} is not set (see .env.example)")


def load_settings(env_file: str | Path | None = ".env", **overrides: object) -> Settings:
    """Read the settings, turning pydantic's report into one line per the first bad variable.

    `overrides` (command-line flags) win over the environment and `.env`.
    """
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg, arg-type]
    except pydantic_settings.SettingsError as exc:  # a JSON value that isn't JSON
        found = re.search(r'field "(\w+)"', str(exc))
        field = found[1].upper() if found else "a setting"
        raise SettingsError(f"{field} is not valid JSON") from None
    except ValidationError as exc:
        error = exc.errors()[0]
        if not error["loc"]:  # a rule across variables: its message names them
            raise SettingsError(str(error["msg"]).removeprefix("Value error, ")) from None
        name = str(error["loc"][0]).upper() if error["loc"] else "settings"
        message = str(error["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"{name} is invalid: {message}") from None


def database_password(settings: Settings) -> SecretStr | None:
    """The password inside `DATABASE_URL`, so the logs can redact it."""
    if settings.database_url is None:
        return None
    from urllib.parse import urlsplit

    password = urlsplit(settings.database_url.get_secret_value()).password
    return SecretStr(password) if password else None
