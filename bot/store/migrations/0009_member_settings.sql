-- Member and server defaults for /video and /storyboard (/settings), and the models a
-- server allows. Every default column is NULL until someone sets it, meaning "not set":
-- the next level down decides (member, then server, then the model catalogue).
-- Kept to plain types and constraints so the PostgreSQL twin reads the same.

CREATE TABLE member_defaults (
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    model       TEXT,
    orientation TEXT,
    duration    INTEGER CHECK (duration > 0),
    hd          INTEGER CHECK (hd IN (0, 1)),
    private     INTEGER CHECK (private IN (0, 1)),
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

CREATE TABLE server_defaults (
    guild_id    INTEGER PRIMARY KEY,
    model       TEXT,
    orientation TEXT,
    duration    INTEGER CHECK (duration > 0),
    hd          INTEGER CHECK (hd IN (0, 1)),
    private     INTEGER CHECK (private IN (0, 1)),
    updated_at  TEXT NOT NULL
);

-- The models members may use in a server; no row for a server = every catalogue model.
CREATE TABLE server_allowed_models (
    guild_id INTEGER NOT NULL,
    model    TEXT NOT NULL,
    PRIMARY KEY (guild_id, model)
);
