"""discord.py extensions, one per user-facing area. Thin: parse, call `bot/`, render."""
