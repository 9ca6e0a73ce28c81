-- When a final job's result was shown in Discord, so a restart re-delivers only the rest.

ALTER TABLE jobs ADD COLUMN delivered_at TEXT;

-- Jobs that were already final before this column existed count as delivered.
UPDATE jobs SET delivered_at = COALESCE(finished_at, updated_at)
    WHERE status NOT IN ('queued', 'submitting', 'running');

CREATE INDEX jobs_undelivered ON jobs (id)
    WHERE delivered_at IS NULL AND status NOT IN ('queued', 'submitting', 'running');
