"""SQLite storage: jobs, quotas and their ledger, guild settings, character aliases."""
