-- Running quota totals per period, so a quota check reads one row per scope instead of
-- summing the month's ledger. They are a cache of quota_ledger, written in the same
-- transaction as every ledger row (see bot/store/quotas.py); the ledger stays the
-- source of truth and `QuotaRepo.audit` recomputes these from it.

CREATE TABLE usage_guild_month (
    guild_id INTEGER NOT NULL,
    month    TEXT NOT NULL,              -- 'YYYY-MM'
    used     INTEGER NOT NULL DEFAULT 0, -- reservations after reset_id, minus their refunds
    granted  INTEGER NOT NULL DEFAULT 0, -- guild-wide grants this month
    reset_id INTEGER NOT NULL DEFAULT 0, -- the month's last guild-wide reset row (0: none)
    PRIMARY KEY (guild_id, month)
) WITHOUT ROWID;

CREATE TABLE usage_user_day (
    -- The guild, or 0 for direct messages: a primary key cannot hold NULL, and Discord
    -- ids are never 0.
    guild_key INTEGER NOT NULL,
    user_id   INTEGER NOT NULL,
    day       TEXT NOT NULL,              -- 'YYYY-MM-DD'
    used      INTEGER NOT NULL DEFAULT 0,
    granted   INTEGER NOT NULL DEFAULT 0, -- grants to this user for the day
    reset_id  INTEGER NOT NULL DEFAULT 0, -- the day's last reset row for this user (0: none)
    PRIMARY KEY (guild_key, user_id, day)
) WITHOUT ROWID;

-- Finding a reservation's settlement (a NOT EXISTS over ref_id was a full scan per row).
CREATE INDEX ledger_by_ref ON quota_ledger (ref_id) WHERE ref_id IS NOT NULL;

-- Backfill from the ledger, with the same rule the old per-check query used: a
-- reservation counts if it is newer than the scope's last reset in that period, and so
-- does its refund (a refund counts in the period of the reservation it settles).
INSERT INTO usage_guild_month (guild_id, month, used, granted, reset_id)
SELECT l.guild_id, l.month,
       SUM(CASE WHEN l.kind IN ('reserve', 'refund') AND COALESCE(l.ref_id, l.id) > r.reset_id
                THEN CASE l.kind WHEN 'reserve' THEN l.units ELSE -l.units END
                ELSE 0 END),
       SUM(CASE WHEN l.kind = 'grant' AND l.user_id IS NULL THEN l.units ELSE 0 END),
       r.reset_id
  FROM quota_ledger AS l
  JOIN (SELECT guild_id, month,
               MAX(CASE WHEN kind = 'reset' AND user_id IS NULL THEN id ELSE 0 END) AS reset_id
          FROM quota_ledger WHERE guild_id IS NOT NULL GROUP BY guild_id, month) AS r
    ON r.guild_id = l.guild_id AND r.month = l.month
 GROUP BY l.guild_id, l.month;

INSERT INTO usage_user_day (guild_key, user_id, day, used, granted, reset_id)
SELECT COALESCE(l.guild_id, 0), l.user_id, l.day,
       SUM(CASE WHEN l.kind IN ('reserve', 'refund') AND COALESCE(l.ref_id, l.id) > r.reset_id
                THEN CASE l.kind WHEN 'reserve' THEN l.units ELSE -l.units END
                ELSE 0 END),
       SUM(CASE WHEN l.kind = 'grant' THEN l.units ELSE 0 END),
       r.reset_id
  FROM quota_ledger AS l
  JOIN (SELECT guild_id, user_id, day,
               MAX(CASE WHEN kind = 'reset' THEN id ELSE 0 END) AS reset_id
          FROM quota_ledger WHERE user_id IS NOT NULL GROUP BY guild_id, user_id, day) AS r
    ON r.guild_id IS l.guild_id AND r.user_id = l.user_id AND r.day = l.day
 GROUP BY l.guild_id, l.user_id, l.day;
