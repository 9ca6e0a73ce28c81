"""Discord-style rate-limit buckets and one-shot faults.

Buckets are fixed windows that start at the first request, measured on the fake's
clock; every answer carries the bucket's headers, the way discord.py learns them.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ._wire import json_response


@dataclass
class _Window:
    limit: int
    period: float
    reset_at: float
    used: int = 0


@dataclass(frozen=True)
class BucketSpec:
    """Which bucket a request counts against: a Discord-like hash plus its major parameter."""

    name: str
    major: str
    limit: int
    period: float

    @property
    def hash(self) -> str:
        return hashlib.sha1(self.name.encode()).hexdigest()[:32]


@dataclass
class Decision:
    allowed: bool
    headers: dict[str, str]
    retry_after: float = 0.0


class RateLimiter:
    """Counts requests per (bucket, major parameter) window."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._windows: dict[tuple[str, str], _Window] = {}

    def take(self, spec: BucketSpec) -> Decision:
        now = self._clock()
        key = (spec.name, spec.major)
        win = self._windows.get(key)
        if win is None or now >= win.reset_at:
            win = _Window(spec.limit, spec.period, now + spec.period)
            self._windows[key] = win
        reset_after = max(0.0, win.reset_at - now)
        allowed = win.used < win.limit
        if allowed:
            win.used += 1
        headers = {
            "X-RateLimit-Limit": str(win.limit),
            "X-RateLimit-Remaining": str(max(0, win.limit - win.used)),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": spec.hash,
        }
        return Decision(allowed, headers, retry_after=reset_after)

    def reset(self) -> None:
        self._windows.clear()


def rate_limited_response(
    retry_after: float,
    headers: dict[str, str] | None = None,
    *,
    is_global: bool = False,
    scope: str = "user",
) -> web.Response:
    """A 429 the way Discord sends it: `Via` header (else discord.py assumes a ban) + JSON body."""
    out = dict(headers or {})
    out.update(
        {
            "Via": "1.1 google",
            "Retry-After": str(max(1, round(retry_after + 0.5))),
            "X-RateLimit-Scope": scope,
        }
    )
    if is_global:
        out["X-RateLimit-Global"] = "true"
    body = {
        "message": "You are being rate limited.",
        "retry_after": round(retry_after, 3),
        "global": is_global,
    }
    return json_response(body, status=429, headers=out)


@dataclass
class FailRule:
    """A scripted fault: the next `times` matching requests get this answer instead."""

    method: str
    path_regex: str
    status: int = 429
    retry_after: float = 0.5
    code: int | None = None
    message: str | None = None
    is_global: bool = False
    times: int = 1
    body: Any = None
    hits: int = 0
    _pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._pattern = re.compile(self.path_regex)

    def matches(self, method: str, path: str) -> bool:
        return (
            self.hits < self.times
            and self.method.upper() in (method.upper(), "*")
            and self._pattern.search(path) is not None
        )

    @property
    def exhausted(self) -> bool:
        return self.hits >= self.times
