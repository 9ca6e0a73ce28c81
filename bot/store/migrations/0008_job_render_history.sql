-- How long renders took, per relay, seeds when the bot reads a job's status
-- (bot/relay/estimate.py). Reading it walks the newest succeeded jobs of one relay.
CREATE INDEX jobs_succeeded_by_relay ON jobs (relay_name, id) WHERE status = 'succeeded';
