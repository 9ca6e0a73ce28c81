"""The one store interface both backends implement, and `open_store` that picks one.

The bot (engine, cogs, app) types its storage as `Store` and never learns which backend
it talks to: SQLite (`bot.store.database.Database`, one process, one file) or
PostgreSQL (`bot.store.postgres.PgDatabase`, several processes). Each backend has its
own repositories because their SQL runs differently (sqlite3 functions on one thread,
asyncpg coroutines on a pool); the rules they share (quota arithmetic, alias rewriting,
image references, the row types) live once in the SQLite modules and are imported by
the PostgreSQL ones. The store tests run the same assertions against both.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol

from bot.clock import Clock
from bot.relay.models import RelayFormat, VideoRequest
from bot.store._util import Unset
from bot.store.characters import CharacterAlias
from bot.store.guilds import GuildSettings
from bot.store.jobs import Claimed, Holder, Job, JobStatus, JobSummary, NewJob, Renewed
from bot.store.preferences import Defaults, Preferences
from bot.store.quotas import GuildLimits, LedgerEntry, QuotaDrift, QuotaStatus, RoleRule


class JobStore(Protocol):
    async def create(
        self, new: NewJob, *, cost: int, roles: Sequence[int] = (), is_admin: bool = False
    ) -> Job: ...
    async def get(self, job_id: int) -> Job | None: ...
    async def mark_submitting(
        self, job_id: int, *, owner: str | None = None, lease_seconds: float | None = None
    ) -> bool: ...
    async def let_go(self, job_id: int, owner: str) -> bool: ...
    async def mark_running(
        self,
        job_id: int,
        relay_id: str | None,
        *,
        relay_name: str | None = None,
        format: RelayFormat | None = None,
        owner: str | None = None,
    ) -> bool: ...
    async def set_progress(
        self, job_id: int, percent: float | None, phase: str | None, *, owner: str | None = None
    ) -> bool: ...
    async def set_message(
        self,
        job_id: int,
        *,
        channel_id: int | None = None,
        message_id: int | None,
        interaction_token: str | Unset | None = ...,
    ) -> None: ...
    async def finish(
        self,
        job_id: int,
        status: JobStatus,
        *,
        result_url: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        error_detail: str | None = None,
        refund: bool = False,
        holder: Holder = None,
    ) -> bool: ...
    async def unfinished(self) -> list[Job]: ...
    async def undelivered(self) -> list[Job]: ...
    async def mark_delivered(self, job_id: int) -> bool: ...
    async def mark_shown(self, job_id: int) -> bool: ...
    async def recent_for_user(
        self, guild_id: int | None, user_id: int, limit: int = 10
    ) -> list[Job]: ...
    async def summaries_for_user(
        self, guild_id: int | None, user_id: int, limit: int = 25
    ) -> list[JobSummary]: ...
    async def recent_for_guild(self, guild_id: int, limit: int = 20) -> list[Job]: ...
    async def active_for_guild(self, guild_id: int) -> list[Job]: ...
    async def render_seconds(
        self, relay_name: str, *, model: str, duration: int, hd: bool, limit: int = 20
    ) -> list[float]: ...
    # Leases: which process runs which job (see `bot.store.jobs`).
    async def claim(
        self, owner: str, *, lease_seconds: float, max_running: int, max_per_guild: int
    ) -> Claimed: ...
    async def take_over(self, owner: str, *, lease_seconds: float) -> builtins.list[Job]: ...
    async def renew(self, owner: str, *, lease_seconds: float, host: str, pid: int) -> Renewed: ...
    async def register(
        self, owner: str, *, host: str, pid: int, is_dead: Callable[[str, int], bool]
    ) -> int: ...
    async def release(self, owner: str) -> int: ...
    async def request_cancel(self, job_id: int, reason: str) -> bool: ...
    async def cancel_requests(self, owner: str) -> dict[int, str]: ...


class QuotaStore(Protocol):
    default_guild_monthly: int | None
    default_user_daily: int | None

    async def status(
        self,
        guild_id: int | None,
        user_id: int,
        roles: Sequence[int] = (),
        *,
        is_admin: bool = False,
    ) -> QuotaStatus: ...
    async def limits(self, guild_id: int) -> GuildLimits: ...
    async def role_rules(self, guild_id: int) -> list[RoleRule]: ...
    async def ledger(
        self, guild_id: int | None, *, user_id: int | None = None, limit: int = 50
    ) -> list[LedgerEntry]: ...
    async def audit(self) -> list[QuotaDrift]: ...
    async def set_limits(
        self,
        guild_id: int,
        *,
        monthly: int | Unset | None = ...,
        user_daily: int | Unset | None = ...,
        admins_exempt: bool | Unset = ...,
    ) -> None: ...
    async def set_role_rule(
        self, guild_id: int, role_id: int, *, multiplier: float | None = None, exempt: bool = False
    ) -> None: ...
    async def clear_role_rule(self, guild_id: int, role_id: int) -> bool: ...
    async def grant(
        self, guild_id: int | None, units: int, *, user_id: int | None = None, actor: int
    ) -> None: ...
    async def reset(
        self, guild_id: int | None, *, user_id: int | None = None, actor: int
    ) -> None: ...


class CharacterStore(Protocol):
    async def add(
        self,
        guild_id: int,
        alias: str,
        *,
        character_id: str,
        username: str,
        permalink: str | None,
        picture_url: str | None,
        created_by: int,
    ) -> CharacterAlias: ...
    async def get(self, guild_id: int, alias: str) -> CharacterAlias | None: ...
    async def list(self, guild_id: int) -> list[CharacterAlias]: ...
    async def delete(self, guild_id: int, alias: str) -> bool: ...
    async def search(
        self, guild_id: int, prefix: str, limit: int = 25
    ) -> builtins.list[CharacterAlias]: ...
    async def rewrite_prompt(self, guild_id: int | None, prompt: str) -> str: ...


class GuildStore(Protocol):
    async def get(self, guild_id: int) -> GuildSettings: ...
    async def set(
        self,
        guild_id: int,
        *,
        locale: str | Unset | None = ...,
        relay_format: RelayFormat | Unset | None = ...,
        notify_channel_id: int | Unset | None = ...,
    ) -> GuildSettings: ...


class ImageStore(Protocol):
    async def load(self, request: VideoRequest) -> VideoRequest: ...
    async def cleanup(self, retention_days: float) -> int: ...
    async def count(self) -> int: ...


class PreferenceStore(Protocol):
    async def get(self, guild_id: int, user_id: int) -> Preferences: ...
    async def member(self, guild_id: int, user_id: int) -> Defaults: ...
    async def server(self, guild_id: int) -> Defaults: ...
    async def allowed_models(self, guild_id: int) -> frozenset[str] | None: ...
    async def guilds_with_settings(self) -> set[int]: ...
    async def set_member(
        self,
        guild_id: int,
        user_id: int,
        *,
        model: str | Unset | None = ...,
        orientation: str | Unset | None = ...,
        duration: int | Unset | None = ...,
        hd: bool | Unset | None = ...,
        private: bool | Unset | None = ...,
    ) -> Defaults: ...
    async def set_server(
        self,
        guild_id: int,
        *,
        model: str | Unset | None = ...,
        orientation: str | Unset | None = ...,
        duration: int | Unset | None = ...,
        hd: bool | Unset | None = ...,
        private: bool | Unset | None = ...,
    ) -> Defaults: ...
    async def reset_member(self, guild_id: int, user_id: int) -> None: ...
    async def reset_server(self, guild_id: int) -> None: ...
    async def set_allowed_models(
        self, guild_id: int, models: Iterable[str] | None
    ) -> frozenset[str] | None: ...


class Store(Protocol):
    """What the bot uses of its storage, whichever the backend."""

    @property
    def backend(self) -> str: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def jobs(self) -> JobStore: ...
    @property
    def quotas(self) -> QuotaStore: ...
    @property
    def characters(self) -> CharacterStore: ...
    @property
    def guilds(self) -> GuildStore: ...
    @property
    def images(self) -> ImageStore: ...
    @property
    def preferences(self) -> PreferenceStore: ...

    async def close(self) -> None: ...
    async def __aenter__(self) -> Store: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


async def open_store(
    url: str | None,
    path: str | Path,
    *,
    clock: Clock | None = None,
    default_guild_monthly: int | None = 200,
    default_user_daily: int | None = 24,
    pool_size: int = 10,
) -> Store:
    """PostgreSQL when `url` is a `postgresql://` URL, else SQLite at `path`; migrated."""
    if url:
        from bot.store.postgres import PgDatabase, is_postgres_url

        if not is_postgres_url(url):
            raise ValueError("DATABASE_URL must start with postgresql:// (or be empty for SQLite)")
        return await PgDatabase.open(
            url,
            clock=clock,
            default_guild_monthly=default_guild_monthly,
            default_user_daily=default_user_daily,
            pool_size=pool_size,
        )
    from bot.store.database import Database

    return await Database.open(
        path,
        clock=clock,
        default_guild_monthly=default_guild_monthly,
        default_user_daily=default_user_daily,
    )
