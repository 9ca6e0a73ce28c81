-- SQLite's 0010: job leases. The process running a job holds a lease on its row
-- (`lease_owner` until `lease_expires`) and renews it; once it has expired (the process
-- died) another process takes the job over. Rows from before leases have no owner.
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_expires TIMESTAMPTZ;
-- A cancel asked in a process that doesn't hold the job's lease: 'user' or 'admin'.
ALTER TABLE jobs ADD COLUMN cancel_requested TEXT
    CHECK (cancel_requested IS NULL OR cancel_requested IN ('user', 'admin'));

CREATE INDEX jobs_leased ON jobs (lease_owner)
    WHERE status IN ('queued', 'submitting', 'running');

-- Each live bot process, seen at every lease renewal (see SQLite's 0010).
CREATE TABLE processes (
    owner      TEXT PRIMARY KEY,
    host       TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    seen_at    TIMESTAMPTZ NOT NULL
);
