-- Job leases (issue 12): several bot processes may share one database, and any of them
-- may run any job. The process running a job holds a lease on its row (`lease_owner`,
-- until `lease_expires`) and renews it; a process that dies stops renewing, and once the
-- lease has expired another process takes the job over. A process writes a job's
-- progress and final state only while it holds the lease, so one paused too long can't
-- overwrite what the new owner did. Rows left active by a bot older than this have no
-- owner: the first process to start takes them over, as a restart always did.
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_expires TEXT;
-- A cancel asked in a process that doesn't hold the job's lease: 'user' or 'admin'.
-- The owner reads it within a second and cancels the job under the usual rules.
ALTER TABLE jobs ADD COLUMN cancel_requested TEXT
    CHECK (cancel_requested IS NULL OR cancel_requested IN ('user', 'admin'));

CREATE INDEX jobs_leased ON jobs (lease_owner)
    WHERE status IN ('queued', 'submitting', 'running');

-- Each live bot process, seen at every lease renewal: how many share the relays' request
-- budgets and Discord's edit budget, and (same host) which earlier runs are dead.
CREATE TABLE processes (
    owner      TEXT PRIMARY KEY,
    host       TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    seen_at    TEXT NOT NULL
);
