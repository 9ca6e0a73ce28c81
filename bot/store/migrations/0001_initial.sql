-- Jobs and the quota ledger. Timestamps are UTC ISO-8601 text (see bot/store/_util.py).

CREATE TABLE jobs (
    -- AUTOINCREMENT: ids are never reused, because buttons and history carry them.
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id          INTEGER,            -- NULL: a direct message
    channel_id        INTEGER,
    user_id           INTEGER NOT NULL,
    message_id        INTEGER,            -- the Discord message the bot edits
    interaction_token TEXT,
    locale            TEXT NOT NULL,
    request_json      TEXT NOT NULL,      -- VideoRequest.model_dump_json()
    format            TEXT NOT NULL CHECK (format IN ('chat', 'task', 'official')),
    relay_name        TEXT NOT NULL,
    relay_id          TEXT,
    status            TEXT NOT NULL CHECK (status IN (
                          'queued', 'submitting', 'running', 'succeeded', 'failed',
                          'cancelled', 'timed_out', 'interrupted')),
    progress          REAL,
    phase             TEXT,
    result_url        TEXT,
    error_code        TEXT,
    error_message     TEXT,
    cost              INTEGER NOT NULL CHECK (cost >= 0),
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    started_at        TEXT,
    finished_at       TEXT,
    parent_job_id     INTEGER REFERENCES jobs (id) ON DELETE SET NULL
);

CREATE INDEX jobs_unfinished ON jobs (id)
    WHERE status IN ('queued', 'submitting', 'running');
CREATE INDEX jobs_by_guild ON jobs (guild_id, id);
CREATE INDEX jobs_by_user ON jobs (user_id, guild_id, id);

-- Append-only: usage is derived from these rows, never kept in a mutable counter.
CREATE TABLE quota_ledger (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id   INTEGER,                   -- NULL: a direct message
    user_id    INTEGER,                   -- NULL: a guild-wide grant or reset
    job_id     INTEGER REFERENCES jobs (id),
    ref_id     INTEGER REFERENCES quota_ledger (id),  -- commit/refund: the reserve row settled
    kind       TEXT NOT NULL CHECK (kind IN ('reserve', 'commit', 'refund', 'grant', 'reset')),
    units      INTEGER NOT NULL CHECK (units >= 0),
    day        TEXT NOT NULL,             -- UTC period the row counts in: 'YYYY-MM-DD'
    month      TEXT NOT NULL,             -- and 'YYYY-MM'
    actor      INTEGER,                   -- the admin behind a grant or reset
    created_at TEXT NOT NULL
);

CREATE INDEX ledger_by_guild_month ON quota_ledger (guild_id, month, kind);
CREATE INDEX ledger_by_user_day ON quota_ledger (user_id, guild_id, day, kind);
CREATE UNIQUE INDEX ledger_one_reserve_per_job ON quota_ledger (job_id) WHERE kind = 'reserve';
CREATE UNIQUE INDEX ledger_one_settlement_per_job ON quota_ledger (job_id)
    WHERE kind IN ('commit', 'refund');
