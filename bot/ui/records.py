"""The shapes the UI reads, as Protocols: embeds and views duck-type the store's records.

`bot.store.jobs.Job` satisfies `JobLike`, `bot.store.quotas.QuotaStatus` satisfies
`QuotaStatusLike`, `bot.store.characters.CharacterAlias` satisfies `CharacterAliasLike`.
Only the status Literal comes from the store; a test can hand the UI a plain dataclass
and the store can grow fields freely.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from bot.relay.models import VideoRequest
from bot.store.jobs import JobStatus

__all__ = [
    "CharacterAliasLike",
    "JobLike",
    "JobStatus",
    "QuotaStatusLike",
    "RelayHealthLike",
]


class JobLike(Protocol):
    """The fields of `bot.store.jobs.Job` that the embeds and views use."""

    @property
    def id(self) -> int: ...
    @property
    def user_id(self) -> int: ...
    @property
    def request(self) -> VideoRequest: ...
    @property
    def relay_id(self) -> str | None: ...
    @property
    def status(self) -> JobStatus: ...
    @property
    def progress(self) -> float | None: ...
    @property
    def phase(self) -> str | None: ...
    @property
    def result_url(self) -> str | None: ...
    @property
    def error_code(self) -> str | None: ...
    @property
    def error_message(self) -> str | None: ...
    @property
    def error_detail(self) -> str | None: ...
    @property
    def cost(self) -> int: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def finished_at(self) -> datetime | None: ...


class QuotaStatusLike(Protocol):
    """Where a member stands (`bot.store.quotas.QuotaStatus`); a None limit means unlimited."""

    @property
    def guild_used(self) -> int: ...
    @property
    def guild_limit(self) -> int | None: ...
    @property
    def guild_resets_at(self) -> datetime: ...
    @property
    def user_used(self) -> int: ...
    @property
    def user_limit(self) -> int | None: ...
    @property
    def user_resets_at(self) -> datetime: ...
    @property
    def user_exempt(self) -> bool: ...


class CharacterAliasLike(Protocol):
    """A server's name for a relay cameo: prompts say `alias`, the relay gets `@username`."""

    @property
    def alias(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def created_by(self) -> int: ...


class RelayHealthLike(Protocol):
    """One relay's health check result; `latency` in seconds (see `bot.relay.pool`)."""

    @property
    def name(self) -> str: ...
    @property
    def ok(self) -> bool: ...
    @property
    def latency(self) -> float | None: ...
    @property
    def models(self) -> Sequence[str]: ...
    @property
    def offers(self) -> Sequence[str]:
        """Catalogue models it offers (with `listed` False: may carry, no list read)."""
        ...

    @property
    def listed(self) -> bool: ...
    @property
    def unknown(self) -> Sequence[str]:
        """Names it lists that the catalogue doesn't know."""
        ...

    @property
    def error(self) -> str | None: ...
    @property
    def breaker(self) -> str: ...
    @property
    def low_credit(self) -> float | None: ...
    @property
    def low_credit_noticed(self) -> bool: ...
