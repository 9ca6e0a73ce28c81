"""Quotas on PostgreSQL: the same ledger, running totals and audit as `bot.store.quotas`.

Several processes reserve at once here, so a check and its reservation must not race:
every transaction that writes the ledger first locks the running-total rows of the
scopes it touches (creating them if needed), always the guild's month before the
member's day, so there is no lock cycle. A reservation therefore sees every earlier
reservation of its scopes committed, and ledger ids within a scope grow in commit order,
which the reset rule (a refund counts only if its reservation is newer than the last
reset) relies on, as it does on SQLite where writers are serialised anyway.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from bot.store._util import UNSET, Unset
from bot.store.quotas import (
    _GUILD_COLUMNS,
    UNLIMITED,
    GuildLimits,
    LedgerEntry,
    LedgerKind,
    Period,
    QuotaDrift,
    QuotaStatus,
    RoleRule,
    UsageTotals,
    _guild_key,
    compose_status,
    raise_if_over,
)

if TYPE_CHECKING:
    from bot.store.postgres.database import Connection, PgDatabase, Record


class PgQuotaRepo:
    """Limits, role rules, grants and resets; the check runs inside `PgJobRepo.create`."""

    def __init__(
        self, db: PgDatabase, *, default_guild_monthly: int | None, default_user_daily: int | None
    ) -> None:
        self._db = db
        self.default_guild_monthly = default_guild_monthly
        self.default_user_daily = default_user_daily

    # -- reading ---------------------------------------------------------------------

    async def status(
        self,
        guild_id: int | None,
        user_id: int,
        roles: Sequence[int] = (),
        *,
        is_admin: bool = False,
    ) -> QuotaStatus:
        period = Period.at(self._db.clock.now())
        async with self._db.pool.acquire() as conn:
            return await self._status(conn, guild_id, user_id, roles, is_admin, period)

    async def limits(self, guild_id: int) -> GuildLimits:
        row = await self._db.pool.fetchrow(
            "SELECT monthly_limit, user_daily_limit, admins_exempt FROM guild_settings"
            " WHERE guild_id = $1",
            guild_id,
        )
        if row is None:
            return GuildLimits(None, None, False)
        return GuildLimits(row[0], row[1], bool(row[2]))

    async def role_rules(self, guild_id: int) -> list[RoleRule]:
        rows = await self._db.pool.fetch(
            "SELECT guild_id, role_id, multiplier, exempt FROM role_rules WHERE guild_id = $1"
            " ORDER BY role_id",
            guild_id,
        )
        return [RoleRule(r[0], r[1], r[2], bool(r[3])) for r in rows]

    async def ledger(
        self, guild_id: int | None, *, user_id: int | None = None, limit: int = 50
    ) -> list[LedgerEntry]:
        """Newest first. `user_id` None lists every row of the guild (or of all DMs)."""
        sql = "SELECT * FROM quota_ledger WHERE guild_id IS NOT DISTINCT FROM $1"
        params: list[object] = [guild_id]
        if user_id is not None:
            sql += " AND user_id = $2"
            params.append(user_id)
        sql += f" ORDER BY id DESC LIMIT ${len(params) + 1}"
        params.append(limit)
        return [_entry(row) for row in await self._db.pool.fetch(sql, *params)]

    async def audit(self) -> list[QuotaDrift]:
        """Recompute every running total from the ledger; empty if none has drifted."""
        async with self._db.snapshot() as conn:
            guild_totals = await conn.fetch(
                "SELECT guild_id, month, used, granted, reset_id FROM usage_guild_month"
            )
            guild_ledger = await conn.fetch(_LEDGER_GUILD)
            user_totals = await conn.fetch(
                "SELECT guild_key, user_id, day, used, granted, reset_id FROM usage_user_day"
            )
            user_ledger = await conn.fetch(_LEDGER_USER)
        zero = UsageTotals(0, 0, 0)
        drift: list[QuotaDrift] = []
        guilds = {(r[0], r[1]): UsageTotals(r[2], r[3], r[4]) for r in guild_totals}
        from_ledger = {(r[0], r[1]): UsageTotals(r[2], r[3], r[4]) for r in guild_ledger}
        for key in sorted(guilds.keys() | from_ledger.keys()):
            ledger, totals = from_ledger.get(key, zero), guilds.get(key, zero)
            if ledger != totals:
                drift.append(QuotaDrift("guild", key[0], None, key[1], ledger, totals))
        users = {(r[0] or None, r[1], r[2]): UsageTotals(r[3], r[4], r[5]) for r in user_totals}
        user_from_ledger = {(r[0], r[1], r[2]): UsageTotals(r[3], r[4], r[5]) for r in user_ledger}
        for ukey in sorted(
            users.keys() | user_from_ledger.keys(), key=lambda k: (k[0] or 0, *k[1:])
        ):
            ledger, totals = user_from_ledger.get(ukey, zero), users.get(ukey, zero)
            if ledger != totals:
                drift.append(QuotaDrift("user", ukey[0], ukey[1], ukey[2], ledger, totals))
        return drift

    # -- admin changes ---------------------------------------------------------------

    async def set_limits(
        self,
        guild_id: int,
        *,
        monthly: int | Unset | None = UNSET,
        user_daily: int | Unset | None = UNSET,
        admins_exempt: bool | Unset = UNSET,
    ) -> None:
        """Override a guild's limits: int = limit (0 = none, `UNLIMITED`), None = default."""
        columns: dict[str, object] = {}
        for name, value in (("monthly_limit", monthly), ("user_daily_limit", user_daily)):
            if isinstance(value, Unset):
                continue
            if value is not None and value < UNLIMITED:
                raise ValueError(f"{name} must be >= 0, UNLIMITED (-1) or None")
            columns[name] = value
        if not isinstance(admins_exempt, Unset):
            columns["admins_exempt"] = bool(admins_exempt)
        now = self._db.clock.now()
        async with self._db.pool.acquire() as conn:
            await pg_upsert_guild_settings(conn, guild_id, columns, now)

    async def set_role_rule(
        self, guild_id: int, role_id: int, *, multiplier: float | None = None, exempt: bool = False
    ) -> None:
        if multiplier is not None and (multiplier < 0 or not math.isfinite(multiplier)):
            raise ValueError("multiplier must be a finite number >= 0")
        await self._db.pool.execute(
            "INSERT INTO role_rules (guild_id, role_id, multiplier, exempt)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (guild_id, role_id) DO UPDATE"
            " SET multiplier = excluded.multiplier, exempt = excluded.exempt",
            guild_id, role_id, multiplier, exempt,
        )  # fmt: skip

    async def clear_role_rule(self, guild_id: int, role_id: int) -> bool:
        status = await self._db.pool.execute(
            "DELETE FROM role_rules WHERE guild_id = $1 AND role_id = $2", guild_id, role_id
        )
        return status != "DELETE 0"

    async def grant(
        self, guild_id: int | None, units: int, *, user_id: int | None = None, actor: int
    ) -> None:
        """Extra units: for the guild this month, or (with `user_id`) for the user today."""
        if units <= 0:
            raise ValueError("a grant must be at least 1 unit")
        if guild_id is None and user_id is None:
            raise ValueError("direct messages have no guild quota; grant to a user")
        at = Period.at(self._db.clock.now())

        async def write(conn: Connection) -> None:
            await lock_scopes(conn, guild_id if user_id is None else None, user_id, at, guild_id)
            await insert_ledger(
                conn, guild_id=guild_id, user_id=user_id, job_id=None, ref_id=None,
                kind="grant", units=units, day=at.day, month=at.month, actor=actor,
                when=self._db.clock.now(),
            )  # fmt: skip

        await self._db.run_transaction(write)

    async def reset(self, guild_id: int | None, *, user_id: int | None = None, actor: int) -> None:
        """Zero the guild's usage this month, or (with `user_id`) the user's usage today."""
        if guild_id is None and user_id is None:
            raise ValueError("direct messages have no guild quota; reset a user")
        at = Period.at(self._db.clock.now())
        now = self._db.clock.now()

        async def write(conn: Connection) -> None:
            guild, user = await lock_scopes(
                conn, guild_id if user_id is None else None, user_id, at, guild_id
            )
            cleared = guild[0] if user_id is None else user[0]
            await insert_ledger(
                conn, guild_id=guild_id, user_id=user_id, job_id=None, ref_id=None,
                kind="reset", units=max(cleared, 0), day=at.day, month=at.month, actor=actor,
                when=now,
            )  # fmt: skip

        await self._db.run_transaction(write)

    # -- inside a caller's transaction -----------------------------------------------

    async def _check(
        self,
        conn: Connection,
        guild_id: int | None,
        user_id: int,
        cost: int,
        roles: Sequence[int],
        is_admin: bool,
        period: Period,
    ) -> None:
        """Lock the job's scopes and raise `QuotaExceededError` if `cost` more units would
        break a limit (guild first). The locks hold until the caller's transaction ends.

        The limits are read before the locks: only the totals need them, and every
        statement inside the locks makes other reservations of the scope wait.
        """
        settings, rule = await self._limits(conn, guild_id, roles)
        guild_totals, user_totals = await lock_scopes(conn, guild_id, user_id, period, guild_id)
        raise_if_over(
            self._compose(guild_id, settings, rule, is_admin, period, guild_totals, user_totals),
            cost,
        )

    async def _status(
        self,
        conn: Connection,
        guild_id: int | None,
        user_id: int,
        roles: Sequence[int],
        is_admin: bool,
        period: Period,
    ) -> QuotaStatus:
        guild_totals = (0, 0)
        if guild_id is not None:
            row = await conn.fetchrow(
                "SELECT used, granted FROM usage_guild_month WHERE guild_id = $1 AND month = $2",
                guild_id, period.month,
            )  # fmt: skip
            guild_totals = (0, 0) if row is None else (row[0], row[1])
        row = await conn.fetchrow(
            "SELECT used, granted FROM usage_user_day"
            " WHERE guild_key = $1 AND user_id = $2 AND day = $3",
            _guild_key(guild_id), user_id, period.day,
        )  # fmt: skip
        user_totals = (0, 0) if row is None else (row[0], row[1])
        settings, rule = await self._limits(conn, guild_id, roles)
        return self._compose(guild_id, settings, rule, is_admin, period, guild_totals, user_totals)

    async def _limits(
        self, conn: Connection, guild_id: int | None, roles: Sequence[int]
    ) -> tuple[tuple[int | None, int | None, bool] | None, tuple[bool, float | None] | None]:
        """The guild's (monthly, user_daily, admins_exempt) overrides and the member's
        (any exempt, largest multiplier) role rule, in one round trip."""
        if guild_id is None:
            return None, None
        row = await conn.fetchrow(
            "SELECT s.monthly_limit, s.user_daily_limit, s.admins_exempt,"
            " r.exempt, r.multiplier FROM (SELECT 1) AS one"
            " LEFT JOIN guild_settings AS s ON s.guild_id = $1"
            " LEFT JOIN (SELECT bool_or(exempt) AS exempt, max(multiplier) AS multiplier"
            "   FROM role_rules WHERE guild_id = $1 AND role_id = ANY($2::bigint[])) AS r"
            " ON TRUE",
            guild_id, list(roles),
        )  # fmt: skip
        assert row is not None
        settings = None if row[2] is None else (row[0], row[1], bool(row[2]))
        return settings, (bool(row[3]), row[4])

    def _compose(
        self,
        guild_id: int | None,
        settings: tuple[int | None, int | None, bool] | None,
        rule: tuple[bool, float | None] | None,
        is_admin: bool,
        period: Period,
        guild_totals: tuple[int, int],
        user_totals: tuple[int, int],
    ) -> QuotaStatus:
        return compose_status(
            self,
            in_guild=guild_id is not None,
            settings=settings,
            rule=rule,
            guild_totals=guild_totals,
            user_totals=user_totals,
            is_admin=is_admin,
            period=period,
        )


async def lock_scopes(
    conn: Connection,
    guild_id: int | None,
    user_id: int | None,
    period: Period,
    user_guild: int | None,
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Lock (creating if needed) the guild's month row, then the member's day row, and
    return their (used, granted); a scope not asked for reads (0, 0).

    `guild_id` None skips the guild scope; `user_guild` is the guild the member's day
    counts in (None: direct messages).
    """
    guild = (0, 0)
    user = (0, 0)
    if guild_id is not None:
        row = await conn.fetchrow(_LOCK_GUILD, guild_id, period.month)
        guild = (row[0], row[1])
    if user_id is not None:
        row = await conn.fetchrow(_LOCK_USER, _guild_key(user_guild), user_id, period.day)
        user = (row[0], row[1])
    return guild, user


# An upsert that changes nothing still locks the row, and RETURNING gives the values
# committed before us: one round trip to create, lock and read a scope.
_LOCK_GUILD = (
    "INSERT INTO usage_guild_month AS t (guild_id, month) VALUES ($1, $2)"
    " ON CONFLICT (guild_id, month) DO UPDATE SET used = t.used RETURNING used, granted"
)
_LOCK_USER = (
    "INSERT INTO usage_user_day AS t (guild_key, user_id, day) VALUES ($1, $2, $3)"
    " ON CONFLICT (guild_key, user_id, day) DO UPDATE SET used = t.used RETURNING used, granted"
)


async def insert_ledger(
    conn: Connection,
    *,
    guild_id: int | None,
    user_id: int | None,
    job_id: int | None,
    ref_id: int | None,
    kind: LedgerKind,
    units: int,
    day: str,
    month: str,
    actor: int | None,
    when: datetime,
) -> int:
    """Append a ledger row and apply it to the running totals (see `bot.store.quotas`).

    The caller has locked the scopes (`lock_scopes`) in this transaction.
    """
    row_id: int = await conn.fetchval(
        "INSERT INTO quota_ledger"
        " (guild_id, user_id, job_id, ref_id, kind, units, day, month, actor, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        guild_id, user_id, job_id, ref_id, kind, units, day, month, actor, when,
    )  # fmt: skip
    if kind == "commit":
        return row_id
    if kind == "refund":  # counts only if its reservation is newer than the last reset
        assert ref_id is not None and user_id is not None, "a refund settles a reservation"
        if guild_id is not None:
            await conn.execute(_GUILD_REFUND, units, guild_id, month, ref_id)
        await conn.execute(_USER_REFUND, units, _guild_key(guild_id), user_id, day, ref_id)
        return row_id
    used, granted, reset_id = {
        "reserve": (units, 0, 0),
        "grant": (0, units, 0),
        "reset": (0, 0, row_id),
    }[kind]
    if guild_id is not None and (kind == "reserve" or user_id is None):
        await conn.execute(_GUILD_UPSERT, guild_id, month, used, granted, reset_id)
    if user_id is not None:
        await conn.execute(
            _USER_UPSERT, _guild_key(guild_id), user_id, day, used, granted, reset_id
        )
    return row_id


_UPSERT_SET = (
    " DO UPDATE SET"
    " used = CASE WHEN excluded.reset_id > 0 THEN 0 ELSE t.used + excluded.used END,"
    " granted = t.granted + excluded.granted, reset_id = GREATEST(t.reset_id, excluded.reset_id)"
)
_GUILD_UPSERT = (
    "INSERT INTO usage_guild_month AS t (guild_id, month, used, granted, reset_id)"
    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (guild_id, month)" + _UPSERT_SET
)
_USER_UPSERT = (
    "INSERT INTO usage_user_day AS t (guild_key, user_id, day, used, granted, reset_id)"
    " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (guild_key, user_id, day)" + _UPSERT_SET
)
_GUILD_REFUND = (
    "UPDATE usage_guild_month SET used = used - $1"
    " WHERE guild_id = $2 AND month = $3 AND reset_id < $4"
)
_USER_REFUND = (
    "UPDATE usage_user_day SET used = used - $1"
    " WHERE guild_key = $2 AND user_id = $3 AND day = $4 AND reset_id < $5"
)

# The ledger's own definition of usage (as `bot.store.quotas._USED`), for every scope
# and period at once: reservations newer than the scope's last reset, minus their
# refunds; grants; the last reset's id.
_LEDGER_GUILD = """
WITH scope AS (
    SELECT guild_id, month,
           COALESCE(MAX(id) FILTER (WHERE kind = 'reset' AND user_id IS NULL), 0) AS reset_id,
           COALESCE(SUM(units) FILTER (WHERE kind = 'grant' AND user_id IS NULL), 0) AS granted
      FROM quota_ledger WHERE guild_id IS NOT NULL GROUP BY guild_id, month)
SELECT s.guild_id, s.month,
       COALESCE((SELECT SUM(CASE l.kind WHEN 'reserve' THEN l.units ELSE -l.units END)
                   FROM quota_ledger AS l
                  WHERE l.guild_id = s.guild_id AND l.month = s.month
                    AND l.kind IN ('reserve', 'refund')
                    AND COALESCE(l.ref_id, l.id) > s.reset_id), 0)::int,
       s.granted::int, s.reset_id
  FROM scope AS s
"""
_LEDGER_USER = """
WITH scope AS (
    SELECT guild_id, user_id, day,
           COALESCE(MAX(id) FILTER (WHERE kind = 'reset'), 0) AS reset_id,
           COALESCE(SUM(units) FILTER (WHERE kind = 'grant'), 0) AS granted
      FROM quota_ledger WHERE user_id IS NOT NULL GROUP BY guild_id, user_id, day)
SELECT s.guild_id, s.user_id, s.day,
       COALESCE((SELECT SUM(CASE l.kind WHEN 'reserve' THEN l.units ELSE -l.units END)
                   FROM quota_ledger AS l
                  WHERE l.guild_id IS NOT DISTINCT FROM s.guild_id AND l.user_id = s.user_id
                    AND l.day = s.day AND l.kind IN ('reserve', 'refund')
                    AND COALESCE(l.ref_id, l.id) > s.reset_id), 0)::int,
       s.granted::int, s.reset_id
  FROM scope AS s
"""


async def pg_upsert_guild_settings(
    conn: Connection, guild_id: int, columns: Mapping[str, object], now: datetime
) -> None:
    """Create the guild's row if needed and change only `columns` (a fixed whitelist)."""
    unknown = set(columns) - _GUILD_COLUMNS
    if unknown:
        raise ValueError(f"unknown guild setting(s): {sorted(unknown)}")
    names = [*columns, "updated_at"]
    values = [*columns.values(), now]
    updates = ", ".join(f"{name} = excluded.{name}" for name in names)
    marks = ", ".join(f"${n}" for n in range(2, len(names) + 2))
    await conn.execute(
        f"INSERT INTO guild_settings (guild_id, {', '.join(names)}) VALUES ($1, {marks})"
        f" ON CONFLICT (guild_id) DO UPDATE SET {updates}",
        guild_id,
        *values,
    )


def _entry(row: Record) -> LedgerEntry:
    return LedgerEntry(
        id=row["id"],
        guild_id=row["guild_id"],
        user_id=row["user_id"],
        job_id=row["job_id"],
        ref_id=row["ref_id"],
        kind=row["kind"],
        units=row["units"],
        day=row["day"],
        month=row["month"],
        actor=row["actor"],
        created_at=row["created_at"],
    )
