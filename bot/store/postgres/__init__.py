"""The PostgreSQL backend (asyncpg): the same repositories as the SQLite store."""

from bot.store.postgres.database import PgDatabase, is_postgres_url, safe_url

__all__ = ["PgDatabase", "is_postgres_url", "safe_url"]
