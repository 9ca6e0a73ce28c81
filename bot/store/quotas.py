"""Quotas in cost units, derived from an append-only ledger.

Two limits apply to a job: the guild's per calendar month (UTC) and the user's per day
(UTC, counted per guild; direct messages are their own scope where only the daily limit
applies). Usage is defined by the `quota_ledger`: the sum of `reserve` rows minus
`refund` rows in the period the job was created in, counted from the scope's last
`reset` row, so every balance can be explained line by line. `commit` rows change
nothing; they mark a reservation as final. `grant` rows raise the limit for the period.
Periods roll over with the injected clock; there is no cron.

The check does not re-sum the ledger: `usage_guild_month` and `usage_user_day` hold a
running total per scope and period (usage, grants and the last reset's id). They are a
cache of the ledger, never written on their own: `_insert_ledger` updates them in the
same transaction as the ledger row it writes (a reserve adds, a refund subtracts only if
its reservation is newer than the period's last reset, a reset zeroes), so they commit
or roll back together. `QuotaRepo.audit` recomputes every total from the ledger and
reports any difference; the ledger always wins.

Limits: a guild override of NULL uses the bot's default, 0 allows nothing and
`UNLIMITED` (-1) removes the limit. Role rules scale the user daily limit (the largest
multiplier among the member's roles wins) or exempt the member from it; exempt members
still count toward the guild's monthly limit. Admins are not exempt unless the guild
turns on `admins_exempt`.

The SQL helpers are synchronous functions over a plain `sqlite3.Connection`: they run on
the database's worker thread inside `Database.run`/`run_transaction` (one hop for a whole
quota check), which is also how `JobRepo` runs them inside its own transactions.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Final, Literal, NamedTuple, Protocol

from bot.store._util import UNSET, Unset, day_key, from_db, month_key, next_day, next_month, to_db

if TYPE_CHECKING:
    from bot.store.database import Database

QuotaScope = Literal["guild", "user"]
LedgerKind = Literal["reserve", "commit", "refund", "grant", "reset"]

UNLIMITED: Final = -1
"""Pass to `set_limits` to lift a guild's limit entirely."""

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _units(n: int) -> str:
    return f"{n} unit" if n == 1 else f"{n} units"


class QuotaExceededError(Exception):
    """A job would go over a limit. `str()` is the sentence shown to the user."""

    def __init__(
        self, scope: QuotaScope, *, limit: int, used: int, cost: int, resets_at: datetime
    ) -> None:
        self.scope: QuotaScope = scope
        self.limit = limit
        self.used = used
        self.cost = cost
        self.resets_at = resets_at
        super().__init__(self._sentence())

    @property
    def code(self) -> str:
        return f"quota_{self.scope}"

    def _sentence(self) -> str:
        if self.scope == "guild":
            if self.limit == 0:
                return "Video generation is turned off on this server (its monthly quota is 0)."
            when = f"{self.resets_at.day} {_MONTHS[self.resets_at.month - 1]}"
            return (
                f"This server has used {self.used} of its {_units(self.limit)} this month; "
                f"this video needs {self.cost}. It resets on {when} at 00:00 UTC."
            )
        if self.limit == 0:
            return "Your daily quota here is 0 units, so you cannot make videos."
        return (
            f"You have used {self.used} of your {self.limit} daily units; "
            f"this video needs {self.cost}. Your quota resets at 00:00 UTC."
        )


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    """Where a member stands. Limits include grants and role multipliers; None = unlimited.

    In direct messages (`guild_id` None) there is no guild limit: `guild_used` is 0 and
    `guild_limit` None. For an exempt member `user_limit` is None.
    """

    guild_used: int
    guild_limit: int | None
    guild_resets_at: datetime
    user_used: int
    user_limit: int | None
    user_resets_at: datetime
    user_exempt: bool


@dataclass(frozen=True, slots=True)
class GuildLimits:
    """A guild's own overrides as stored (None = bot default, -1 = unlimited)."""

    monthly: int | None
    user_daily: int | None
    admins_exempt: bool


@dataclass(frozen=True, slots=True)
class RoleRule:
    guild_id: int
    role_id: int
    multiplier: float | None
    exempt: bool


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: int
    guild_id: int | None
    user_id: int | None
    job_id: int | None
    ref_id: int | None
    kind: LedgerKind
    units: int
    day: str
    month: str
    actor: int | None
    created_at: datetime


class UsageTotals(NamedTuple):
    """One scope's totals for one period: usage, grants and the last reset row's id."""

    used: int
    granted: int
    reset_id: int


@dataclass(frozen=True, slots=True)
class QuotaDrift:
    """A running total that disagrees with the ledger (`QuotaRepo.audit`).

    `user_id` None is the guild's monthly scope; `guild_id` None a user's DM scope.
    `period` is the month ('YYYY-MM') or the day ('YYYY-MM-DD').
    """

    scope: QuotaScope
    guild_id: int | None
    user_id: int | None
    period: str
    ledger: UsageTotals
    totals: UsageTotals


class Period(NamedTuple):
    """The quota periods at one instant, worked out once on the event loop so the
    database thread only runs SQL."""

    day: str
    month: str
    stamp: str  # the instant as stored (`to_db`)
    next_day: datetime
    next_month: datetime

    @classmethod
    def at(cls, now: datetime) -> Period:
        return cls(day_key(now), month_key(now), to_db(now), next_day(now), next_month(now))


def _limit(value: int | None) -> int | None:
    """Stored/default limit to effective limit: negative (and None default) = unlimited."""
    return None if value is None or value < 0 else value


class QuotaRepo:
    """Limits, role rules, grants and resets; the check itself runs inside `JobRepo.create`."""

    def __init__(
        self, db: Database, *, default_guild_monthly: int | None, default_user_daily: int | None
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
        return await self._db.run(
            lambda conn: self._status(conn, guild_id, user_id, roles, is_admin, period)
        )

    async def limits(self, guild_id: int) -> GuildLimits:
        row = await self._db.fetchone(
            "SELECT monthly_limit, user_daily_limit, admins_exempt FROM guild_settings"
            " WHERE guild_id = ?",
            (guild_id,),
        )
        if row is None:
            return GuildLimits(None, None, False)
        return GuildLimits(row[0], row[1], bool(row[2]))

    async def role_rules(self, guild_id: int) -> list[RoleRule]:
        rows = await self._db.fetchall(
            "SELECT guild_id, role_id, multiplier, exempt FROM role_rules WHERE guild_id = ?"
            " ORDER BY role_id",
            (guild_id,),
        )
        return [RoleRule(r[0], r[1], r[2], bool(r[3])) for r in rows]

    async def ledger(
        self, guild_id: int | None, *, user_id: int | None = None, limit: int = 50
    ) -> list[LedgerEntry]:
        """Newest first. `user_id` None lists every row of the guild (or of all DMs)."""
        sql = "SELECT * FROM quota_ledger WHERE guild_id IS ?"
        params: list[object] = [guild_id]
        if user_id is not None:
            sql += " AND user_id = ?"
            params.append(user_id)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return [_entry(row) for row in await self._db.fetchall(sql, params)]

    async def audit(self) -> list[QuotaDrift]:
        """Recompute every running total from the ledger; empty if none has drifted."""
        return await self._db.run(_audit)

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
            columns["admins_exempt"] = int(admins_exempt)
        now = self._db.clock.now()
        await self._db.run_transaction(
            lambda conn: upsert_guild_settings(conn, guild_id, columns, now)
        )

    async def set_role_rule(
        self, guild_id: int, role_id: int, *, multiplier: float | None = None, exempt: bool = False
    ) -> None:
        if multiplier is not None and (multiplier < 0 or not math.isfinite(multiplier)):
            raise ValueError("multiplier must be a finite number >= 0")
        await self._db.execute(
            "INSERT INTO role_rules (guild_id, role_id, multiplier, exempt) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (guild_id, role_id) DO UPDATE"
            " SET multiplier = excluded.multiplier, exempt = excluded.exempt",
            (guild_id, role_id, multiplier, int(exempt)),
        )

    async def clear_role_rule(self, guild_id: int, role_id: int) -> bool:
        changed = await self._db.execute(
            "DELETE FROM role_rules WHERE guild_id = ? AND role_id = ?", (guild_id, role_id)
        )
        return changed > 0

    async def grant(
        self, guild_id: int | None, units: int, *, user_id: int | None = None, actor: int
    ) -> None:
        """Extra units: for the guild this month, or (with `user_id`) for the user today."""
        if units <= 0:
            raise ValueError("a grant must be at least 1 unit")
        if guild_id is None and user_id is None:
            raise ValueError("direct messages have no guild quota; grant to a user")
        at = Period.at(self._db.clock.now())
        await self._db.run_transaction(
            partial(
                _insert_ledger, guild_id=guild_id, user_id=user_id, job_id=None, ref_id=None,
                kind="grant", units=units, day=at.day, month=at.month, actor=actor,
                stamp=at.stamp,
            )
        )  # fmt: skip

    async def reset(self, guild_id: int | None, *, user_id: int | None = None, actor: int) -> None:
        """Zero the guild's usage this month, or (with `user_id`) the user's usage today.

        Writes a `reset` row (its units record what was cleared); history stays. Only
        reservations made after the reset count, and refunds of older ones are ignored.
        """
        if guild_id is None and user_id is None:
            raise ValueError("direct messages have no guild quota; reset a user")
        at = Period.at(self._db.clock.now())
        day, month = at.day, at.month

        def write_reset(conn: sqlite3.Connection) -> None:
            if user_id is None:
                assert guild_id is not None
                cleared = _guild_totals(conn, guild_id, month)[0]
            else:
                cleared = _user_totals(conn, guild_id, user_id, day)[0]
            _insert_ledger(
                conn, guild_id=guild_id, user_id=user_id, job_id=None, ref_id=None,
                kind="reset", units=max(cleared, 0), day=day, month=month, actor=actor,
                stamp=at.stamp,
            )  # fmt: skip

        await self._db.run_transaction(write_reset)

    # -- synchronous, on the worker thread (JobRepo calls _check in its transaction) ----

    def _check(
        self,
        conn: sqlite3.Connection,
        guild_id: int | None,
        user_id: int,
        cost: int,
        roles: Sequence[int],
        is_admin: bool,
        period: Period,
    ) -> None:
        """Raise `QuotaExceededError` if `cost` more units would break a limit (guild first)."""
        raise_if_over(self._status(conn, guild_id, user_id, roles, is_admin, period), cost)

    def _status(
        self,
        conn: sqlite3.Connection,
        guild_id: int | None,
        user_id: int,
        roles: Sequence[int],
        is_admin: bool,
        period: Period,
    ) -> QuotaStatus:
        day, month = period.day, period.month
        settings: tuple[int | None, int | None, bool] | None = None
        rule: tuple[bool, float | None] | None = None
        guild_totals = (0, 0)
        if guild_id is not None:
            row = conn.execute(
                "SELECT monthly_limit, user_daily_limit, admins_exempt FROM guild_settings"
                " WHERE guild_id = ?",
                (guild_id,),
            ).fetchone()
            if row is not None:
                settings = (row[0], row[1], bool(row[2]))
            if roles:
                marks = ", ".join("?" * len(roles))
                found = conn.execute(
                    "SELECT MAX(exempt), MAX(multiplier) FROM role_rules"
                    f" WHERE guild_id = ? AND role_id IN ({marks})",
                    (guild_id, *roles),
                ).fetchone()
                if found is not None:
                    rule = (bool(found[0]), found[1])
            guild_totals = _guild_totals(conn, guild_id, month)
        return compose_status(
            self,
            in_guild=guild_id is not None,
            settings=settings,
            rule=rule,
            guild_totals=guild_totals,
            user_totals=_user_totals(conn, guild_id, user_id, day),
            is_admin=is_admin,
            period=period,
        )


class _Defaults(Protocol):
    default_guild_monthly: int | None
    default_user_daily: int | None


def compose_status(
    defaults: _Defaults,
    *,
    in_guild: bool,
    settings: tuple[int | None, int | None, bool] | None,
    rule: tuple[bool, float | None] | None,
    guild_totals: tuple[int, int],
    user_totals: tuple[int, int],
    is_admin: bool,
    period: Period,
) -> QuotaStatus:
    """Where a member stands, from what the database holds (shared by both backends).

    `settings` is the guild's (monthly, user_daily, admins_exempt) row, `rule` the
    (any exempt, largest multiplier) of the member's role rules, and the totals are
    (used, granted) of the guild's month and the member's day.
    """
    monthly: int | None = defaults.default_guild_monthly
    daily: int | None = defaults.default_user_daily
    exempt = False
    guild_used = 0
    guild_limit: int | None = None
    multiplier: float | None = None
    if in_guild:
        if settings is not None:
            monthly = monthly if settings[0] is None else settings[0]
            daily = daily if settings[1] is None else settings[1]
            exempt = settings[2] and is_admin
        if rule is not None:
            exempt = exempt or rule[0]
            multiplier = rule[1]
        guild_used, guild_granted = guild_totals
        guild_limit = _limit(monthly)
        if guild_limit is not None:
            guild_limit += guild_granted
    user_used, user_granted = user_totals
    user_limit = None if exempt else _limit(daily)
    if user_limit is not None:
        if multiplier is not None:
            user_limit = math.floor(user_limit * multiplier)
        user_limit += user_granted
    return QuotaStatus(
        guild_used=guild_used,
        guild_limit=guild_limit,
        guild_resets_at=period.next_month,
        user_used=user_used,
        user_limit=user_limit,
        user_resets_at=period.next_day,
        user_exempt=exempt,
    )


def raise_if_over(st: QuotaStatus, cost: int) -> None:
    """`QuotaExceededError` if `cost` more units would break a limit (the guild's first)."""
    if st.guild_limit is not None and st.guild_used + cost > st.guild_limit:
        raise QuotaExceededError(
            "guild",
            limit=st.guild_limit,
            used=st.guild_used,
            cost=cost,
            resets_at=st.guild_resets_at,
        )
    if st.user_limit is not None and st.user_used + cost > st.user_limit:
        raise QuotaExceededError(
            "user",
            limit=st.user_limit,
            used=st.user_used,
            cost=cost,
            resets_at=st.user_resets_at,
        )


def _sum(conn: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> int:
    row = conn.execute(sql, params).fetchone()
    return int(row[0] or 0) if row else 0


def _guild_key(guild_id: int | None) -> int:
    """`usage_user_day` keys direct messages (guild_id NULL) as guild 0."""
    return 0 if guild_id is None else guild_id


def _guild_totals(conn: sqlite3.Connection, guild_id: int, month: str) -> tuple[int, int]:
    """(used, granted) for the guild's month, from the running totals."""
    row = conn.execute(
        "SELECT used, granted FROM usage_guild_month WHERE guild_id = ? AND month = ?",
        (guild_id, month),
    ).fetchone()
    return (0, 0) if row is None else (row[0], row[1])


def _user_totals(
    conn: sqlite3.Connection, guild_id: int | None, user_id: int, day: str
) -> tuple[int, int]:
    """(used, granted) for the user's day in this guild (or in DMs)."""
    row = conn.execute(
        "SELECT used, granted FROM usage_user_day WHERE guild_key = ? AND user_id = ? AND day = ?",
        (_guild_key(guild_id), user_id, day),
    ).fetchone()
    return (0, 0) if row is None else (row[0], row[1])


def _insert_ledger(
    conn: sqlite3.Connection,
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
    stamp: str,
) -> int:
    """Append a ledger row and apply it to the running totals; returns the row's id.

    The only writer of the ledger and of the totals, so both change in the caller's
    transaction or not at all.
    """
    cursor = conn.execute(
        "INSERT INTO quota_ledger"
        " (guild_id, user_id, job_id, ref_id, kind, units, day, month, actor, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (guild_id, user_id, job_id, ref_id, kind, units, day, month, actor, stamp),
    )
    row_id = cursor.lastrowid
    assert row_id is not None
    if kind == "commit":
        return row_id
    if kind == "refund":  # counts only if its reservation is newer than the last reset
        assert ref_id is not None and user_id is not None, "a refund settles a reservation"
        if guild_id is not None:
            conn.execute(_GUILD_REFUND, (units, guild_id, month, ref_id))
        conn.execute(_USER_REFUND, (units, _guild_key(guild_id), user_id, day, ref_id))
        return row_id
    used, granted, reset_id = {
        "reserve": (units, 0, 0),
        "grant": (0, units, 0),
        "reset": (0, 0, row_id),
    }[kind]
    # A reservation counts in both scopes; a grant or a reset names one of them.
    if guild_id is not None and (kind == "reserve" or user_id is None):
        conn.execute(_GUILD_UPSERT, (guild_id, month, used, granted, reset_id))
    if user_id is not None:
        conn.execute(_USER_UPSERT, (_guild_key(guild_id), user_id, day, used, granted, reset_id))
    return row_id


# Add to `used` and `granted`; a reset (reset_id > 0) zeroes `used` and records its id.
_UPSERT_SET = (
    " DO UPDATE SET"
    " used = CASE WHEN excluded.reset_id > 0 THEN 0 ELSE used + excluded.used END,"
    " granted = granted + excluded.granted, reset_id = MAX(reset_id, excluded.reset_id)"
)
_GUILD_UPSERT = (
    "INSERT INTO usage_guild_month (guild_id, month, used, granted, reset_id)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (guild_id, month)" + _UPSERT_SET
)
_USER_UPSERT = (
    "INSERT INTO usage_user_day (guild_key, user_id, day, used, granted, reset_id)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (guild_key, user_id, day)" + _UPSERT_SET
)
_GUILD_REFUND = (
    "UPDATE usage_guild_month SET used = used - ? WHERE guild_id = ? AND month = ? AND reset_id < ?"
)
_USER_REFUND = (
    "UPDATE usage_user_day SET used = used - ?"
    " WHERE guild_key = ? AND user_id = ? AND day = ? AND reset_id < ?"
)


# -- the ledger's own definition of usage, for `audit` ---------------------------------

# Reservations since the scope's last reset, minus refunds of those reservations.
_USED = (
    "SELECT SUM(CASE kind WHEN 'reserve' THEN units ELSE -units END) FROM quota_ledger"
    " WHERE kind IN ('reserve', 'refund') AND {scope}"
    " AND COALESCE(ref_id, id) > (SELECT COALESCE(MAX(id), 0) FROM quota_ledger"
    "   WHERE kind = 'reset' AND {reset_scope})"
)
_GUILD_SCOPE = "guild_id = ? AND user_id IS NULL AND month = ?"
_USER_SCOPE = "guild_id IS ? AND user_id = ? AND day = ?"
_LEDGER_GUILD = (
    _USED.format(scope="guild_id = ? AND month = ?", reset_scope=_GUILD_SCOPE),
    f"SELECT SUM(units) FROM quota_ledger WHERE kind = 'grant' AND {_GUILD_SCOPE}",
    f"SELECT MAX(id) FROM quota_ledger WHERE kind = 'reset' AND {_GUILD_SCOPE}",
)
_LEDGER_USER = (
    _USED.format(scope=_USER_SCOPE, reset_scope=_USER_SCOPE),
    f"SELECT SUM(units) FROM quota_ledger WHERE kind = 'grant' AND {_USER_SCOPE}",
    f"SELECT MAX(id) FROM quota_ledger WHERE kind = 'reset' AND {_USER_SCOPE}",
)


def _from_ledger(
    conn: sqlite3.Connection, queries: tuple[str, str, str], params: tuple[object, ...]
) -> UsageTotals:
    used, granted, reset_id = queries
    return UsageTotals(
        _sum(conn, used, params * 2), _sum(conn, granted, params), _sum(conn, reset_id, params)
    )


def _audit(conn: sqlite3.Connection) -> list[QuotaDrift]:
    """Every (scope, period) the ledger or the totals know, recomputed and compared."""
    drift: list[QuotaDrift] = []
    zero = UsageTotals(0, 0, 0)
    guilds = {
        (row[0], row[1]): UsageTotals(row[2], row[3], row[4])
        for row in conn.execute(
            "SELECT guild_id, month, used, granted, reset_id FROM usage_guild_month"
        )
    }
    for row in conn.execute(
        "SELECT DISTINCT guild_id, month FROM quota_ledger WHERE guild_id IS NOT NULL"
    ).fetchall():
        guilds.setdefault((row[0], row[1]), zero)
    for (guild_id, month), totals in sorted(guilds.items()):
        ledger = _from_ledger(conn, _LEDGER_GUILD, (guild_id, month))
        if ledger != totals:
            drift.append(QuotaDrift("guild", guild_id, None, month, ledger, totals))
    users = {
        (row[0] or None, row[1], row[2]): UsageTotals(row[3], row[4], row[5])
        for row in conn.execute(
            "SELECT guild_key, user_id, day, used, granted, reset_id FROM usage_user_day"
        )
    }
    for row in conn.execute(
        "SELECT DISTINCT guild_id, user_id, day FROM quota_ledger WHERE user_id IS NOT NULL"
    ).fetchall():
        users.setdefault((row[0], row[1], row[2]), zero)
    for (guild_id, user_id, day), totals in sorted(
        users.items(), key=lambda item: (item[0][0] or 0, *item[0][1:])
    ):
        ledger = _from_ledger(conn, _LEDGER_USER, (guild_id, user_id, day))
        if ledger != totals:
            drift.append(QuotaDrift("user", guild_id, user_id, day, ledger, totals))
    return drift


_GUILD_COLUMNS = frozenset(
    {"monthly_limit", "user_daily_limit", "admins_exempt", "locale", "relay_format",
     "notify_channel_id"}
)  # fmt: skip


def upsert_guild_settings(
    conn: sqlite3.Connection, guild_id: int, columns: Mapping[str, object], now: datetime
) -> None:
    """Create the guild's row if needed and change only `columns` (a fixed whitelist)."""
    unknown = set(columns) - _GUILD_COLUMNS
    if unknown:
        raise ValueError(f"unknown guild setting(s): {sorted(unknown)}")
    names = [*columns, "updated_at"]
    values = [*columns.values(), to_db(now)]
    updates = ", ".join(f"{name} = excluded.{name}" for name in names)
    conn.execute(
        f"INSERT INTO guild_settings (guild_id, {', '.join(names)})"
        f" VALUES (?, {', '.join('?' * len(names))})"
        f" ON CONFLICT (guild_id) DO UPDATE SET {updates}",
        (guild_id, *values),
    )


def _entry(row: sqlite3.Row) -> LedgerEntry:
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
        created_at=from_db(row["created_at"]),
    )
