"""Logging setup, in one place: level from settings, secrets redacted from every record."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import TextIO

from pydantic import SecretStr

REDACTED = "[redacted]"
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class RedactingFilter(logging.Filter):
    """Replaces each secret (and its middle, as relays echo keys masked) in a record's text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        needles: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= 4:
                needles.add(secret)
                if len(secret) >= 12:
                    needles.add(secret[3:-3])
        self._needles = sorted(needles, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for needle in self._needles:
            text = text.replace(needle, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._needles:
            return True
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def secrets_of(*values: SecretStr | None) -> list[str]:
    return [value.get_secret_value() for value in values if value is not None]


def setup_logging(
    level: str, secrets: Iterable[str] = (), *, stream: TextIO | None = None
) -> logging.Handler:
    """Route every logger to one stderr handler that redacts `secrets`; returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactingFilter(secrets))
    handler.addFilter(_without_voice_notices)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_bot_handler", False):
            root.removeHandler(old)
    handler._bot_handler = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("httpcore").setLevel(max(logging.WARNING, root.level))
    return handler


def _without_voice_notices(record: logging.LogRecord) -> bool:
    """The bot never joins voice; discord.py's "voice will NOT be supported" is noise."""
    return not (record.name == "discord.client" and "voice will NOT be supported" in record.msg)
