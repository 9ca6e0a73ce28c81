-- Per-guild settings and quota overrides, per-role quota rules, character aliases.

CREATE TABLE guild_settings (
    guild_id          INTEGER PRIMARY KEY,
    -- Quota overrides: NULL = the bot's default, -1 = unlimited, 0 = nothing allowed.
    monthly_limit     INTEGER CHECK (monthly_limit >= -1),
    user_daily_limit  INTEGER CHECK (user_daily_limit >= -1),
    admins_exempt     INTEGER NOT NULL DEFAULT 0 CHECK (admins_exempt IN (0, 1)),
    locale            TEXT,
    relay_format      TEXT CHECK (relay_format IN ('chat', 'task', 'official')),
    notify_channel_id INTEGER,
    updated_at        TEXT NOT NULL
);

CREATE TABLE role_rules (
    guild_id   INTEGER NOT NULL,
    role_id    INTEGER NOT NULL,
    multiplier REAL CHECK (multiplier >= 0),  -- scales the user daily limit
    exempt     INTEGER NOT NULL DEFAULT 0 CHECK (exempt IN (0, 1)),
    PRIMARY KEY (guild_id, role_id)
) WITHOUT ROWID;

CREATE TABLE character_aliases (
    guild_id     INTEGER NOT NULL,
    alias        TEXT NOT NULL,               -- lower-case, without the @
    character_id TEXT NOT NULL,
    username     TEXT NOT NULL,               -- the relay username, without the @
    permalink    TEXT,
    picture_url  TEXT,
    created_by   INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (guild_id, alias)
) WITHOUT ROWID;
