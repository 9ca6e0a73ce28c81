"""Account notices a relay POSTs to the operator, e.g. `user_quota_too_low`.

Relays built on the common gateway software call a URL the account owner registers with
`{"topic": "user_quota_too_low", "data": {"quota": 0.5}}` when the credit runs low. The
bot listens for it so the operator hears before members' videos start failing. The
relay signs nothing, so the URL carries a secret path segment; anything else gets 404.

The same listener takes task callbacks (`notify_hook`, see `bot.relay.callbacks`) at
`POST /relay-callback/{secret}/{relay}`: each only wakes the poll of a task that is ours.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from bot.relay.callbacks import Callbacks

log = logging.getLogger(__name__)

MAX_BODY = 4096


class AccountNotice(BaseModel):
    """One notice: its topic and whatever data the relay attached."""

    topic: str
    data: dict[str, Any] = {}
    relay: str | None = None  # from the URL: /relay-webhook/{secret}/{relay name}

    @property
    def remaining_quota(self) -> float | None:
        value = self.data.get("quota")
        return float(value) if isinstance(value, int | float) else None


NoticeHandler = Callable[[AccountNotice], Awaitable[None]]


class NoticeReceiver:
    """A small HTTP server with one route: `POST /relay-webhook/{secret}[/{relay}]`."""

    def __init__(
        self,
        handler: NoticeHandler,
        *,
        secret: str,
        host: str = "127.0.0.1",
        port: int = 0,
        callbacks: Callbacks | None = None,
    ) -> None:
        if not secret:
            raise ValueError("a notice receiver needs a secret path segment")
        self._handler = handler
        self._callbacks = callbacks
        self._secret = secret.encode()
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/relay-webhook/{secret}", self._receive)
        app.router.add_post("/relay-webhook/{secret}/{relay}", self._receive)
        if self._callbacks is not None:
            app.router.add_post("/relay-callback/{secret}/{relay}", self._callback)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        self.port = self._runner.addresses[0][1]
        log.info("listening for relay account notices on %s:%s", self._host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _check_secret(self, request: web.Request) -> None:
        # Bytes: `compare_digest` refuses non-ASCII str (a TypeError, so a 500), and a
        # percent-encoded path decodes to any text a stranger likes.
        given = request.match_info["secret"].encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, self._secret):
            raise web.HTTPNotFound()

    async def _callback(self, request: web.Request) -> web.Response:
        """A relay says a task ended. Unsigned, so it is only a reason to read that task
        now (if it is ours); the answer is the same whether it was, so it tells nothing."""
        self._check_secret(request)
        try:
            task_id = callback_task_id(json.loads(await request.read()))
        except (ValueError, web.HTTPRequestEntityTooLarge):
            task_id = None
        if task_id is None:
            log.info("ignored an unreadable relay callback")
            return web.Response(status=400, text="expected a task with its task_id")
        assert self._callbacks is not None
        self._callbacks.ring(request.match_info["relay"], task_id)
        return web.Response(status=204)

    async def _receive(self, request: web.Request) -> web.Response:
        self._check_secret(request)
        try:
            notice = AccountNotice.model_validate_json(await request.read())
        except (ValidationError, ValueError, web.HTTPRequestEntityTooLarge):
            log.info("ignored an unreadable relay notice")
            return web.Response(status=400, text="expected {topic, data}")
        notice = notice.model_copy(update={"relay": request.match_info.get("relay")})
        try:
            await self._handler(notice)
        except Exception:
            log.exception("handling relay notice %r failed", notice.topic)
        return web.Response(status=204)


def callback_task_id(payload: Any) -> str | None:
    """The task a callback is about: the task object relays poll with (`task_id` or `id`,
    at the top or inside a `{"code", "data"}` wrapper)."""
    for obj in (payload, payload.get("data") if isinstance(payload, dict) else None):
        if not isinstance(obj, dict):
            continue
        for key in ("task_id", "id"):
            value = obj.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)[:200]
    return None
