"""Logging setup, in one place: level from settings, secrets redacted from every record.

Two layers. Configured secrets (the relay keys, the Discord token) are removed by the
handler's `RedactingFilter`. Interaction tokens are not configured: Discord hands out a
new one per command, and discord.py writes them at DEBUG inside webhook URLs
(`/webhooks/<app id>/<token>/…`, `/interactions/<id>/<token>/callback`) and inside the
gateway payloads it logs (`'token': '…'`). Each lets anyone edit the bot's reply for 15
minutes, so `install_token_redaction` rewrites them when a record is *created*: every
handler, at every level, DEBUG included, only ever sees `[redacted]`.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any, TextIO

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


_TOKEN_PATTERNS: tuple[re.Pattern[str], ...] = (
    # A webhook or interaction URL: the segment after the numeric id is the token.
    re.compile(r"(/(?:webhooks|interactions)/\d+/)[^/?#\s'\"]+"),
    # A payload field, as a Python dict repr or JSON: 'token': '…' / "token": "…".
    re.compile(r"""((?<![\w-])['"]token['"]\s*:\s*['"])[^'"]+"""),
)


def redact_tokens(text: str) -> str:
    """`text` with every interaction token (in a webhook URL or a `token` field) hidden."""
    if "token" not in text and "/webhooks/" not in text and "/interactions/" not in text:
        return text
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(rf"\g<1>{REDACTED}", text)
    return text


_installed: list[Callable[..., logging.LogRecord]] = []


def install_token_redaction() -> None:
    """Redact interaction tokens from every log record as it is made (once per process)."""
    if _installed:
        return
    previous = logging.getLogRecordFactory()
    _installed.append(previous)

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _redact_record(record)
        return record

    logging.setLogRecordFactory(factory)


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: logging reports it later, as it always did
        return
    clean = redact_tokens(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and record.exc_info[0] is not None:
        text = logging.Formatter().formatException(record.exc_info)
        clean = redact_tokens(text)
        if clean != text:  # e.g. an aiohttp error quoting the webhook URL
            record.exc_text, record.exc_info = clean, None
    if record.stack_info:
        record.stack_info = redact_tokens(record.stack_info)


def secrets_of(*values: SecretStr | None) -> list[str]:
    return [value.get_secret_value() for value in values if value is not None]


def setup_logging(
    level: str, secrets: Iterable[str] = (), *, stream: TextIO | None = None
) -> logging.Handler:
    """Route every logger to one stderr handler that redacts `secrets`; returns the handler."""
    install_token_redaction()
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
