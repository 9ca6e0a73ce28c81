"""Storage: jobs, quotas and their ledger, guild settings, character aliases, images.

Two backends behind one interface (`bot.store.interface.Store`): SQLite (default) and
PostgreSQL (`bot.store.postgres`, with DATABASE_URL); `open_store` picks one.

Only this package speaks SQL. It imports nothing from the bot but the relay's request
model and the clock.
"""

from bot.store._util import UNSET, Unset
from bot.store.characters import (
    ALIAS_RE,
    AliasError,
    CharacterAlias,
    CharacterRepo,
    UnknownAliasError,
)
from bot.store.database import Database, MigrationError, SchemaTooNewError
from bot.store.guilds import GuildRepo, GuildSettings
from bot.store.interface import Store, open_store
from bot.store.jobs import ACTIVE_STATUSES, FINAL_STATUSES, Job, JobRepo, JobStatus, NewJob
from bot.store.preferences import Defaults, ModelNotAllowedError, PreferenceRepo, Preferences
from bot.store.quotas import (
    UNLIMITED,
    GuildLimits,
    LedgerEntry,
    QuotaDrift,
    QuotaExceededError,
    QuotaRepo,
    QuotaStatus,
    RoleRule,
    UsageTotals,
)

__all__ = [
    "ACTIVE_STATUSES",
    "ALIAS_RE",
    "FINAL_STATUSES",
    "UNLIMITED",
    "UNSET",
    "AliasError",
    "CharacterAlias",
    "CharacterRepo",
    "Database",
    "Defaults",
    "GuildLimits",
    "GuildRepo",
    "GuildSettings",
    "Job",
    "JobRepo",
    "JobStatus",
    "LedgerEntry",
    "MigrationError",
    "ModelNotAllowedError",
    "NewJob",
    "PreferenceRepo",
    "Preferences",
    "QuotaDrift",
    "QuotaExceededError",
    "QuotaRepo",
    "QuotaStatus",
    "RoleRule",
    "SchemaTooNewError",
    "Store",
    "UnknownAliasError",
    "Unset",
    "UsageTotals",
    "open_store",
]
