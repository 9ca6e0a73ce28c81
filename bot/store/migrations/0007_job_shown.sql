-- When a finished job's result (link and buttons, or "finished, attaching…") was first
-- shown, before its file was attached. `delivered_at` stays the moment the final form
-- (file attached, link kept, or the sentence why not) was shown: a restart between the
-- two attaches the file without showing the result again or pinging its owner twice.

ALTER TABLE jobs ADD COLUMN shown_at TEXT;

UPDATE jobs SET shown_at = delivered_at WHERE delivered_at IS NOT NULL;
