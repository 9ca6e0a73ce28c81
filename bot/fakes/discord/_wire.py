"""Wire-level helpers shared by the fake's REST and gateway halves.

discord.py compares `Content-Type` verbatim, so every JSON answer goes through
`json_response` here instead of aiohttp's `json_response` (which appends a charset).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

DISCORD_EPOCH_MS = 1_420_070_400_000
MiB = 1024 * 1024

# Permission bits (https://discord.com/developers/docs/topics/permissions).
PERMISSIONS: dict[str, int] = {
    "create_instant_invite": 1 << 0,
    "kick_members": 1 << 1,
    "ban_members": 1 << 2,
    "administrator": 1 << 3,
    "manage_channels": 1 << 4,
    "manage_guild": 1 << 5,
    "add_reactions": 1 << 6,
    "view_audit_log": 1 << 7,
    "priority_speaker": 1 << 8,
    "stream": 1 << 9,
    "view_channel": 1 << 10,
    "send_messages": 1 << 11,
    "send_tts_messages": 1 << 12,
    "manage_messages": 1 << 13,
    "embed_links": 1 << 14,
    "attach_files": 1 << 15,
    "read_message_history": 1 << 16,
    "mention_everyone": 1 << 17,
    "use_external_emojis": 1 << 18,
    "connect": 1 << 20,
    "speak": 1 << 21,
    "change_nickname": 1 << 26,
    "manage_nicknames": 1 << 27,
    "manage_roles": 1 << 28,
    "manage_webhooks": 1 << 29,
    "use_application_commands": 1 << 31,
    "manage_threads": 1 << 34,
    "create_public_threads": 1 << 35,
    "send_messages_in_threads": 1 << 38,
    "moderate_members": 1 << 40,
}
ALL_PERMISSIONS = (1 << 51) - 1


def perms(*names: str) -> int:
    """Bitmask from permission names, so tests read `perms("send_messages")`, not `2048`."""
    value = 0
    for name in names:
        value |= PERMISSIONS[name]
    return value


DEFAULT_EVERYONE_PERMISSIONS = perms(
    "create_instant_invite",
    "add_reactions",
    "stream",
    "view_channel",
    "send_messages",
    "embed_links",
    "attach_files",
    "read_message_history",
    "use_external_emojis",
    "connect",
    "speak",
    "change_nickname",
    "use_application_commands",
    "create_public_threads",
    "send_messages_in_threads",
)
DEFAULT_BOT_PERMISSIONS = DEFAULT_EVERYONE_PERMISSIONS | perms("manage_messages")


class SteerableClock:
    """Real monotonic time plus an offset that tests can push forward.

    Rate-limit windows keep elapsing on their own (discord.py really sleeps), while
    `advance(900)` expires an interaction token without waiting 15 minutes.
    """

    def __init__(self, base: Callable[[], float] = time.monotonic) -> None:
        self._base = base
        self.offset = 0.0

    def __call__(self) -> float:
        return self._base() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class SnowflakeFactory:
    """Strictly increasing snowflakes whose timestamps are now, so `created_at` is sensible."""

    def __init__(self) -> None:
        self._last = 0

    def __call__(self) -> int:
        now_ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        self._last = max(self._last + 1, now_ms << 22)
        return self._last

    def on_shard(self, snowflake: int, shard: int, count: int) -> int:
        """`snowflake`, or the next id after it whose shard is `shard` of `count`.

        The shard of an id is its timestamp modulo the count: moving the timestamp a
        few milliseconds on keeps the ids increasing.
        """
        stamp = snowflake >> 22
        stamp += (shard - stamp) % count
        chosen = max(snowflake, stamp << 22)
        self._last = max(self._last, chosen)
        return chosen


def iso_now() -> str:
    return datetime.now(UTC).isoformat()


def json_response(
    data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """JSON with `Content-Type: application/json` exactly, as Discord sends it."""
    resp = web.Response(
        body=json.dumps(data).encode(), status=status, content_type="application/json"
    )
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


class ApiError(Exception):
    """An error answer in Discord's shape: HTTP status plus a JSON error code."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        errors: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            out["errors"] = self.errors
        return out


def unknown(kind: str, code: int) -> ApiError:
    return ApiError(404, code, f"Unknown {kind}")


MISSING_PERMISSIONS = 50013
