"""A small shared REST rate-limit proxy for Discord, on loopback, for tests.

Discord's rate limits belong to the bot token, not to a process: processes that share
a token should send their REST through one proxy that knows every bucket (open-source
ones exist: twilight-http-proxy, nirn-proxy). This one does what matters for a test:
it forwards `/api/v10/...` to an upstream (the fake Discord), counts the requests per
route bucket, and holds a request while its bucket's last answer said none remain,
until that answer's `X-RateLimit-Reset-After` has passed. The bots reach it through
`DISCORD_API_BASE`, exactly as they would reach a real proxy.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections import Counter
from dataclasses import dataclass

import aiohttp
from aiohttp import web

# Path segments Discord keys its buckets on (the "major parameters"); other ids are
# generalised, so `/channels/1/messages/7` and `/channels/1/messages/8` share a bucket.
_MAJOR = re.compile(r"^/(channels|guilds|webhooks|interactions)/(\d+)(?:/([^/]+))?")
_ID = re.compile(r"/\d{5,}")
_HOP_BY_HOP = {
    "connection",
    "content-length",
    "content-encoding",
    "host",
    "keep-alive",
    "transfer-encoding",
}


def bucket_of(method: str, path: str) -> str:
    """`METHOD /route` with its major parameter kept and every other id as `{id}`.

    A webhook's token is part of its major parameter (each interaction token is its
    own bucket), so it is kept whole, as Discord does.
    """
    match = _MAJOR.match(path)
    if match is None:
        return f"{method} {_ID.sub('/{id}', path)}"
    kind, major, token = match.groups()
    head = f"/{kind}/{major}"
    rest = path[len(head) :]
    if kind in ("webhooks", "interactions") and token:
        head += f"/{token}"
        rest = path[len(head) :]
    return f"{method} {head}{_ID.sub('/{id}', rest)}"


@dataclass
class Forwarded:
    """One request the proxy passed on, with the answer it passed back."""

    method: str
    path: str
    bucket: str
    status: int


class RestProxy:
    """`async with RestProxy("http://127.0.0.1:PORT") as proxy:` then point the bots at
    `proxy.api_base`. `proxy.by_bucket` counts requests per route bucket."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.forwarded: list[Forwarded] = []
        self.by_bucket: Counter[str] = Counter()
        self.held = 0  # requests that waited for a bucket to reset
        self._empty_until: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def api_base(self) -> str:
        """The value for `DISCORD_API_BASE`."""
        return f"http://127.0.0.1:{self.port}/api/v10"

    async def start(self) -> RestProxy:
        # A pool of kept-alive connections, as a real proxy keeps to Discord.
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> RestProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        path = "/" + request.match_info["tail"]
        bucket = bucket_of(request.method, path)
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        lock = self._locks.setdefault(bucket, asyncio.Lock())
        async with lock:  # one request of a bucket at a time: its headers tell the next
            wait = self._empty_until.get(bucket, 0.0) - time.monotonic()
            if wait > 0:
                self.held += 1
                await asyncio.sleep(wait)
            url = f"{self.upstream}/api/v10{path}"
            async with self._session.request(
                request.method,
                url,
                params=request.query,
                data=body or None,
                headers=headers,
                allow_redirects=False,
            ) as answer:
                payload = await answer.read()
                remaining = answer.headers.get("X-RateLimit-Remaining")
                reset_after = answer.headers.get("X-RateLimit-Reset-After")
                if remaining == "0" and reset_after is not None:
                    self._empty_until[bucket] = time.monotonic() + float(reset_after)
                self.forwarded.append(Forwarded(request.method, path, bucket, answer.status))
                self.by_bucket[bucket] += 1
                out_headers = {
                    k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP
                }
                return web.Response(status=answer.status, body=payload, headers=out_headers)
