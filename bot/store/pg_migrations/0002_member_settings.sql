-- SQLite's 0009: member and server defaults for /video and /storyboard (/settings), and
-- the models a server allows. Every default column is NULL until set ("not set").

CREATE TABLE member_defaults (
    guild_id    BIGINT NOT NULL,
    user_id     BIGINT NOT NULL,
    model       TEXT,
    orientation TEXT,
    duration    INTEGER CHECK (duration > 0),
    hd          BOOLEAN,
    private     BOOLEAN,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

CREATE TABLE server_defaults (
    guild_id    BIGINT PRIMARY KEY,
    model       TEXT,
    orientation TEXT,
    duration    INTEGER CHECK (duration > 0),
    hd          BOOLEAN,
    private     BOOLEAN,
    updated_at  TIMESTAMPTZ NOT NULL
);

-- The models members may use in a server; no row for a server = every catalogue model.
CREATE TABLE server_allowed_models (
    guild_id BIGINT NOT NULL,
    model    TEXT NOT NULL,
    PRIMARY KEY (guild_id, model)
);
