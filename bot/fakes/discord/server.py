"""FakeDiscord: a real aiohttp server on loopback that the unpatched discord.py talks to.

REST lives under /api/v10, the gateway at /gateway (resumes at /gateway/resume) and
uploaded files at /cdn/attachments/... so the bot can download them over loopback.
Everything a member could see is recorded (see `records.py`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from ._wire import (
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    MISSING_PERMISSIONS,
    PERMISSIONS,
    ApiError,
    MiB,
    SnowflakeFactory,
    iso_now,
    json_response,
    perms,
    unknown,
)
from .gateway import Gateway
from .ratelimit import BucketSpec, FailRule, RateLimiter, rate_limited_response
from .records import (
    EPHEMERAL,
    LOADING,
    CallbackRecord,
    Changes,
    FakeChannel,
    FakeDMChannel,
    FakeGuild,
    FakeInteraction,
    FakeMember,
    FakeRole,
    FakeUser,
    GatewayRecord,
    RecordedAttachment,
    RecordedMessage,
    RequestRecord,
)

_log = logging.getLogger(__name__)
Params = dict[str, str]
SUPPRESS_EMBEDS = 1 << 2
SUPPRESS_NOTIFICATIONS = 1 << 12
IS_COMPONENTS_V2 = 1 << 15
SETTABLE_FLAGS = SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2
DROP = 0
"""`fail_next(..., status=DROP)`: close the connection without answering."""
# What a bot may do in a DM (Discord computes app_permissions there from the DM's rules).
DM_APP_PERMISSIONS = perms(
    "view_channel",
    "send_messages",
    "embed_links",
    "attach_files",
    "read_message_history",
    "add_reactions",
    "use_external_emojis",
)


@dataclass
class Upload:
    index: int
    filename: str
    data: bytes
    content_type: str | None


@dataclass
class Call:
    """A parsed REST request handed to a route handler."""

    params: Params
    body: Any
    files: dict[int, Upload]
    request: web.Request


Handler = Callable[[Call], Awaitable[Any]]


@dataclass
class _Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: bool
    bucket: Callable[[Params], BucketSpec] | None


class _Restore:
    """Undo for `point_discord_py_here`: call it, or use it as a context manager."""

    def __init__(self, undo: Callable[[], None]) -> None:
        self._undo = undo

    def __call__(self) -> None:
        self._undo()

    def __enter__(self) -> _Restore:
        return self

    def __exit__(self, *exc: object) -> None:
        self._undo()


def _compile(template: str) -> re.Pattern[str]:
    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        return f"(?P<{name}>[^/]+)" if name == "token" else f"(?P<{name}>[0-9]+)"

    return re.compile("^" + re.sub(r"\{(\w+)\}", repl, template) + "$")


class FakeDiscord:
    """A loopback Discord: REST, gateway and CDN, with recordings and fault knobs.

    Use as `async with FakeDiscord() as fake:` (or `await fake.start()` / `close()`),
    then `fake.point_discord_py_here()` before starting a bot.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        shards: int = 1,
        heartbeat_interval_ms: int = 41250,
        token: str | None = "fake-bot-token",
        interaction_token_lifetime: float = 15 * 60,
        callback_deadline: float = 3.0,
        upload_limit: int = 10 * MiB,
        edit_rate_limit: tuple[int, float] = (5, 5.0),
        message_rate_limit: tuple[int, float] = (5, 5.0),
        default_rate_limit: tuple[int, float] = (50, 1.0),
        global_rate_limit: tuple[int, float] = (50, 1.0),
        answer_delay: Callable[[str, str], Awaitable[None]] | None = None,
        bot_permissions: int = DEFAULT_BOT_PERMISSIONS,
        default_guild: bool = True,
    ) -> None:
        self.clock = clock
        self.shards = shards
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.token = token
        self.interaction_token_lifetime = interaction_token_lifetime
        self.callback_deadline = callback_deadline
        self.upload_limit = upload_limit
        self.edit_rate_limit = edit_rate_limit
        self.message_rate_limit = message_rate_limit
        self.default_rate_limit = default_rate_limit
        # Discord's global limit: requests made with the bot token, all routes together;
        # interaction callbacks and webhook-token routes don't count against it.
        self.global_rate_limit = global_rate_limit
        # Awaited with (method, path) before each REST request is handled: how long Discord
        # takes to answer it (e.g. a quarter second of the bot's clock). None: at once.
        self.answer_delay = answer_delay
        self.bot_permissions = bot_permissions

        self.snowflake = SnowflakeFactory()
        self.changes = Changes()
        self.ratelimiter = RateLimiter(clock)
        self.gateway = Gateway(self)

        self.application_id = self.snowflake()
        self.bot_user = FakeUser(self.application_id, "Sora Bot", bot=True)
        self.users: dict[int, FakeUser] = {self.bot_user.id: self.bot_user}
        self.guilds: dict[int, FakeGuild] = {}
        self.dm_channels: dict[int, FakeDMChannel] = {}  # by the user's id
        self.commands: dict[int | None, dict[tuple[str, int], dict[str, Any]]] = {None: {}}
        self.messages: dict[int, RecordedMessage] = {}
        self.attachments: dict[int, RecordedAttachment] = {}
        self.interactions: dict[int, FakeInteraction] = {}
        self._by_token: dict[str, FakeInteraction] = {}
        self.requests: list[RequestRecord] = []
        self.rate_limited_count = 0
        self.internal_errors: list[BaseException] = []
        self._fail_rules: list[FailRule] = []
        self._routes: list[_Route] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

        self.owner = self._user("owner")
        self.alice = self._user("alice")
        if default_guild:
            self.add_guild("Fake Guild")
        self._register_routes()

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def resume_gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway/resume"

    async def start(self) -> FakeDiscord:
        app = web.Application(client_max_size=64 * MiB)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/gateway/resume", self.gateway.handle)
        app.router.add_get("/cdn/attachments/{channel_id}/{attachment_id}/{filename}", self._cdn)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._api)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def close(self) -> None:
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def point_discord_py_here(self) -> _Restore:
        """Aim discord.py's REST base and default gateway at this fake; returns the undo."""
        import discord.gateway
        import discord.http
        import yarl

        route, ws = discord.http.Route, discord.gateway.DiscordWebSocket
        previous = (route.BASE, ws.DEFAULT_GATEWAY)
        route.BASE = f"{self.url}/api/v10"
        ws.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)

        def undo() -> None:
            route.BASE, ws.DEFAULT_GATEWAY = previous

        return _Restore(undo)

    # ------------------------------------------------------------------ layout

    def _user(self, name: str) -> FakeUser:
        user = FakeUser(self.snowflake(), name)
        self.users[user.id] = user
        return user

    @property
    def guild(self) -> FakeGuild:
        """The first guild (the default one unless `default_guild=False`)."""
        return next(iter(self.guilds.values()))

    @property
    def channel(self) -> FakeChannel:
        """The first channel of the first guild (#general by default)."""
        return next(iter(self.guild.channels.values()))

    def add_guild(
        self,
        name: str,
        *,
        channels: tuple[str, ...] = ("general", "videos"),
        locale: str = "en-US",
        shard: int | None = None,
    ) -> FakeGuild:
        """A guild with @everyone, Moderator, the bot's role, the owner and alice.

        Add guilds before the bot logs in: GUILD_CREATE is sent at IDENTIFY. `shard`
        picks an id that lands on that shard of `shards` (`(id >> 22) % shards`).
        """
        gid = self.snowflake()
        if shard is not None:
            if not 0 <= shard < self.shards:
                raise ValueError(f"shard {shard} is not one of the fake's {self.shards}")
            gid = self.snowflake.on_shard(gid, shard, self.shards)
        guild = FakeGuild(id=gid, name=name, owner_id=self.owner.id, preferred_locale=locale)
        guild.roles[gid] = FakeRole(gid, "@everyone", DEFAULT_EVERYONE_PERMISSIONS)
        mod = FakeRole(
            self.snowflake(), "Moderator", perms("manage_messages", "moderate_members"), 1
        )
        bot_role = FakeRole(self.snowflake(), self.bot_user.name, self.bot_permissions, 2, True)
        guild.roles[mod.id] = mod
        guild.roles[bot_role.id] = bot_role
        guild.members[self.bot_user.id] = FakeMember(self.bot_user, gid, [bot_role.id])
        guild.members[self.owner.id] = FakeMember(self.owner, gid)
        guild.members[self.alice.id] = FakeMember(self.alice, gid)
        self.guilds[gid] = guild
        for ch in channels:
            self.add_channel(gid, ch)
        return guild

    def add_channel(self, guild_id: int, name: str, *, topic: str | None = None) -> FakeChannel:
        guild = self.guilds[guild_id]
        ch = FakeChannel(
            self.snowflake(), guild_id, name, position=len(guild.channels), topic=topic
        )
        guild.channels[ch.id] = ch
        return ch

    def add_member(
        self,
        guild_id: int,
        name: str,
        *,
        roles: tuple[int, ...] = (),
        user_id: int | None = None,
    ) -> FakeMember:
        user = self.users.get(user_id) if user_id else None
        if user is None:
            user = FakeUser(user_id or self.snowflake(), name)
            self.users[user.id] = user
        member = FakeMember(user, guild_id, list(roles))
        self.guilds[guild_id].members[user.id] = member
        return member

    def dm_channel(self, user_id: int) -> FakeDMChannel:
        """The DM channel between the bot and `user_id` (made on first use, like Discord's)."""
        channel = self.dm_channels.get(user_id)
        if channel is None:
            channel = FakeDMChannel(self.snowflake(), self.users[user_id])
            self.dm_channels[user_id] = channel
        return channel

    def _dm_by_channel(self, channel_id: int) -> FakeDMChannel | None:
        return next((c for c in self.dm_channels.values() if c.id == channel_id), None)

    def guild_payload(self, guild: FakeGuild) -> dict[str, Any]:
        return guild.payload(guild.members[self.bot_user.id])

    def shard_of(self, guild_id: int) -> int:
        """The shard Discord routes `guild_id`'s events to, out of `shards`."""
        return self.gateway.shard_for(guild_id, self.shards)

    def _find_channel(self, channel_id: int) -> tuple[FakeGuild, FakeChannel]:
        for guild in self.guilds.values():
            if channel_id in guild.channels:
                return guild, guild.channels[channel_id]
        raise unknown("Channel", 10003)

    def bot_channel_permissions(self, channel_id: int) -> int:
        guild, channel = self._find_channel(channel_id)
        return guild.channel_permissions(guild.members[self.bot_user.id], channel)

    async def set_channel_permissions(
        self,
        channel_id: int,
        *,
        target_id: int | None = None,
        allow: int = 0,
        deny: int = 0,
    ) -> None:
        """Set a member overwrite (the bot by default) and tell the bot via CHANNEL_UPDATE.

        `deny=perms("send_messages")` makes the bot's channel posts fail with 403 50013.
        """
        guild, channel = self._find_channel(channel_id)
        target = target_id or self.bot_user.id
        kind = 0 if target in guild.roles else 1
        channel.overwrites = [o for o in channel.overwrites if int(o["id"]) != target]
        channel.overwrites.append({"id": target, "type": kind, "allow": allow, "deny": deny})
        if self.gateway.by_shard:
            await self.gateway.dispatch_to_guild(guild.id, "CHANNEL_UPDATE", channel.payload())

    # ------------------------------------------------------------------ queries

    def channel_messages(
        self, channel_id: int, *, include_deleted: bool = False
    ) -> list[RecordedMessage]:
        return [
            m
            for m in self.messages.values()
            if m.channel_id == channel_id and (include_deleted or not m.deleted)
        ]

    def requests_matching(
        self,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
    ) -> list[RequestRecord]:
        """Request log filtered by method, path regex (below /api/v10) and status."""
        pattern = re.compile(path) if path else None
        return [
            r
            for r in self.requests
            if (method is None or r.method == method.upper())
            and (pattern is None or pattern.search(r.path))
            and (status is None or r.status == status)
        ]

    def registered_commands(self, guild_id: int | None = None) -> list[dict[str, Any]]:
        return list(self.commands.get(guild_id, {}).values())

    def find_command(
        self, name: str, guild_id: int | None = None, type: int = 1
    ) -> dict[str, Any] | None:
        """The command a member in `guild_id` would see: guild commands shadow global ones."""
        for scope in (guild_id, None) if guild_id is not None else (None,):
            cmd = self.commands.get(scope, {}).get((name, type))
            if cmd is not None:
                return cmd
        return None

    @property
    def gateway_log(self) -> list[GatewayRecord]:
        return self.gateway.log

    async def wait_for_message(
        self,
        predicate: Callable[[RecordedMessage], bool],
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> RecordedMessage:
        """First recorded message (existing or future, any channel) matching `predicate`."""

        def probe() -> RecordedMessage | None:
            return next((m for m in self.messages.values() if predicate(m)), None)

        return await self.changes.wait_for(probe, timeout)

    async def wait_for_gateway(
        self,
        predicate: Callable[[GatewayRecord], bool],
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> GatewayRecord:
        """First gateway frame (either direction) matching `predicate`, e.g. a RESUME."""

        def probe() -> GatewayRecord | None:
            return next((r for r in self.gateway.log if predicate(r)), None)

        return await self.changes.wait_for(probe, timeout)

    async def wait_for_requests(
        self,
        predicate: Callable[[list[RequestRecord]], bool],
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[RequestRecord]:
        return await self.changes.wait_for(
            lambda: self.requests if predicate(self.requests) else None, timeout
        )

    # ------------------------------------------------------------------ knobs

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int = 429,
        retry_after: float = 0.5,
        *,
        code: int | None = None,
        message: str | None = None,
        is_global: bool = False,
        times: int = 1,
        body: Any = None,
    ) -> FailRule:
        """Answer the next `times` matching requests (path below /api/v10) with a fault.

        `status=0` (`DROP`) answers nothing: the connection is closed after the request
        arrived, as a dying proxy or network would; the request is recorded with status 0
        and has no effect.
        """
        rule = FailRule(
            method, path_regex, status, retry_after, code, message, is_global, times, body
        )
        self._fail_rules.append(rule)
        return rule

    async def disconnect_gateway(
        self, code: int = 4000, *, shard_id: int | None = None, resumable: bool = True
    ) -> None:
        """Drop the bot's gateway socket; it reconnects to resume_gateway_url and RESUMEs."""
        await self.gateway.disconnect(code, shard_id=shard_id, resumable=resumable)

    async def delete_message(self, channel_id: int, message_id: int) -> None:
        """A moderator deletes a message: later bot calls on it get 404 10008."""
        msg = self.messages.get(message_id)
        if msg is None or msg.channel_id != channel_id:
            raise KeyError(message_id)
        msg.deleted, msg.deleted_by = True, "moderator"
        self.changes.notify()
        if self.gateway.by_shard:
            data = {"id": str(msg.id), "channel_id": str(channel_id)}
            if msg.guild_id:
                data["guild_id"] = str(msg.guild_id)
            await self.gateway.dispatch_to_guild(msg.guild_id, "MESSAGE_DELETE", data)

    # ------------------------------------------------------------------ REST plumbing

    def _route(
        self,
        method: str,
        template: str,
        handler: Handler,
        *,
        auth: bool = True,
        bucket: Callable[[Params], BucketSpec] | None = None,
    ) -> None:
        self._routes.append(_Route(method, template, _compile(template), handler, auth, bucket))

    def _default_bucket(self, route: _Route, params: Params) -> BucketSpec:
        major = params.get("channel_id") or params.get("guild_id") or params.get("token") or ""
        limit, period = self.default_rate_limit
        return BucketSpec(f"{route.method} {route.template}", major, limit, period)

    def _match(self, method: str, path: str) -> tuple[_Route, Params] | None:
        for route in self._routes:
            if route.method == method and (m := route.pattern.match(path)):
                return route, m.groupdict()
        return None

    async def _read_body(self, request: web.Request) -> tuple[Any, dict[int, Upload]]:
        files: dict[int, Upload] = {}
        if request.content_type.startswith("multipart/"):
            body: Any = None
            total = 0
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    continue
                name = part.name or ""
                if name == "payload_json":
                    body = json.loads(await part.text())
                elif name.startswith("files[") and name.endswith("]"):
                    data = bytearray()
                    while chunk := await part.read_chunk():
                        total += len(chunk)
                        if total <= self.upload_limit:
                            data.extend(chunk)
                    index = int(name[6:-1])
                    filename = part.filename or f"file{index}"
                    files[index] = Upload(
                        index, filename, bytes(data), part.headers.get("Content-Type")
                    )
                else:
                    await part.release()
            if total > self.upload_limit:
                raise ApiError(413, 40005, "Request entity too large")
            return body, files
        raw = await request.read()
        return (json.loads(raw) if raw else None), files

    async def _api(self, request: web.Request) -> web.StreamResponse:
        if self.answer_delay is not None:
            await self.answer_delay(request.method, "/" + request.match_info["tail"])
        method = request.method
        path = "/" + request.match_info["tail"]
        matched = self._match(method, path)
        template = matched[0].template if matched else path
        body: Any = None
        files: dict[int, Upload] = {}
        parse_error: ApiError | None = None
        try:
            body, files = await self._read_body(request)
        except ApiError as exc:
            parse_error = exc
        except (ValueError, UnicodeDecodeError):
            parse_error = ApiError(400, 50109, "The request body contains invalid JSON.")

        def log(status: int, code: int | None = None) -> None:
            self.requests.append(
                RequestRecord(
                    method,
                    path,
                    template,
                    status,
                    code,
                    body,
                    tuple((f.filename, len(f.data)) for f in files.values()),
                    self.clock(),
                )
            )
            self.changes.notify()

        for rule in self._fail_rules:
            if rule.matches(method, path):
                rule.hits += 1
                if rule.exhausted:
                    self._fail_rules.remove(rule)
                if rule.status == DROP:
                    # The connection dies before any answer: the client sees a network
                    # error (aiohttp's ServerDisconnectedError / ClientOSError), no status.
                    log(DROP)
                    if request.transport is not None:
                        request.transport.abort()
                    raise asyncio.CancelledError
                if rule.status == 429:
                    self.rate_limited_count += 1
                    log(429)
                    return rate_limited_response(rule.retry_after, is_global=rule.is_global)
                err = rule.body or {
                    "message": rule.message or "Injected failure",
                    "code": rule.code or 0,
                }
                log(rule.status, err.get("code") if isinstance(err, dict) else None)
                return json_response(err, status=rule.status)

        if matched is None:
            log(404, 0)
            return json_response({"message": "404: Not Found", "code": 0}, status=404)
        route, params = matched

        if route.auth and self.token is not None:
            if request.headers.get("Authorization") != f"Bot {self.token}":
                log(401, 0)
                return json_response({"message": "401: Unauthorized", "code": 0}, status=401)

        if route.auth:
            limit, period = self.global_rate_limit
            overall = self.ratelimiter.take(BucketSpec("global", "", limit, period))
            if not overall.allowed:
                self.rate_limited_count += 1
                log(429)
                return rate_limited_response(overall.retry_after, is_global=True, scope="global")
        spec = route.bucket(params) if route.bucket else self._default_bucket(route, params)
        decision = self.ratelimiter.take(spec)
        if not decision.allowed:
            self.rate_limited_count += 1
            log(429)
            return rate_limited_response(decision.retry_after, decision.headers)

        try:
            if parse_error is not None:
                raise parse_error
            result = await route.handler(Call(params, body, files, request))
        except ApiError as exc:
            log(exc.status, exc.code)
            return json_response(exc.body(), status=exc.status, headers=decision.headers)
        except Exception as exc:  # a bug in the fake: keep it visible to the test
            _log.exception("fake discord failed on %s %s", method, path)
            self.internal_errors.append(exc)
            log(400, 0)
            err = {"message": f"fake discord bug: {exc!r}", "code": 0}
            return json_response(err, status=400, headers=decision.headers)
        if result is None:
            log(204)
            resp = web.Response(status=204)
            resp.headers.update(decision.headers)
            return resp
        log(200)
        return json_response(result, headers=decision.headers)

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        att = self.attachments.get(int(request.match_info["attachment_id"]))
        if att is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(
            body=att.data, content_type=att.content_type or "application/octet-stream"
        )

    def _register_routes(self) -> None:
        r = self._route

        def edit_bucket(key: str) -> Callable[[Params], BucketSpec]:
            limit, period = self.edit_rate_limit
            return lambda p: BucketSpec(f"edit:{key}", p[key], limit, period)

        def create_bucket(p: Params) -> BucketSpec:
            limit, period = self.message_rate_limit
            return BucketSpec("message-create", p["channel_id"], limit, period)

        r("GET", "/users/@me", self._get_me)
        r("GET", "/gateway", self._get_gateway, auth=False)
        r("GET", "/gateway/bot", self._get_gateway_bot)
        r("GET", "/oauth2/applications/@me", self._get_application)
        r("GET", "/applications/@me", self._get_application)
        for prefix in ("/applications/{app_id}", "/applications/{app_id}/guilds/{guild_id}"):
            r("GET", prefix + "/commands", self._list_commands)
            r("PUT", prefix + "/commands", self._put_commands)
            r("POST", prefix + "/commands", self._post_command)
            r("GET", prefix + "/commands/{command_id}", self._get_command)
            r("PATCH", prefix + "/commands/{command_id}", self._patch_command)
            r("DELETE", prefix + "/commands/{command_id}", self._delete_command)
        r("POST", "/interactions/{interaction_id}/{token}/callback", self._callback, auth=False)
        r("POST", "/webhooks/{app_id}/{token}", self._followup, auth=False)
        for tail in ("@original", "{message_id}"):
            base = "/webhooks/{app_id}/{token}/messages/" + tail
            r("GET", base, self._get_webhook_message, auth=False)
            r("PATCH", base, self._edit_webhook_message, auth=False, bucket=edit_bucket("token"))
            r("DELETE", base, self._delete_webhook_message, auth=False)
        r("GET", "/channels/{channel_id}", self._get_channel)
        r("POST", "/channels/{channel_id}/typing", self._typing)
        r("POST", "/channels/{channel_id}/messages", self._create_message, bucket=create_bucket)
        r("GET", "/channels/{channel_id}/messages/{message_id}", self._get_message)
        r(
            "PATCH",
            "/channels/{channel_id}/messages/{message_id}",
            self._edit_message,
            bucket=edit_bucket("channel_id"),
        )
        r("DELETE", "/channels/{channel_id}/messages/{message_id}", self._delete_message)
        r("GET", "/guilds/{guild_id}", self._get_guild)
        r("GET", "/guilds/{guild_id}/members/{user_id}", self._get_member)

    # ------------------------------------------------------------------ identity

    async def _get_me(self, call: Call) -> Any:
        return {**self.bot_user.payload(), "verified": True, "mfa_enabled": False, "flags": 0}

    async def _get_gateway(self, call: Call) -> Any:
        return {"url": self.gateway_url}

    async def _get_gateway_bot(self, call: Call) -> Any:
        return {
            "url": self.gateway_url,
            "shards": self.shards,
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 14_400_000,
                "max_concurrency": 1,
            },
        }

    async def _get_application(self, call: Call) -> Any:
        return {
            "id": str(self.application_id),
            "name": self.bot_user.name,
            "icon": None,
            "description": "A fake application on loopback",
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": self.owner.payload(),
            "team": None,
            "verify_key": "0" * 64,
            "flags": 0,
            "bot": self.bot_user.payload(),
            "summary": "",
            "redirect_uris": [],
            "interactions_endpoint_url": None,
        }

    async def _get_guild(self, call: Call) -> Any:
        guild = self.guilds.get(int(call.params["guild_id"]))
        if guild is None:
            raise unknown("Guild", 10004)
        return self.guild_payload(guild)

    async def _get_member(self, call: Call) -> Any:
        guild = self.guilds.get(int(call.params["guild_id"]))
        if guild is None:
            raise unknown("Guild", 10004)
        member = guild.members.get(int(call.params["user_id"]))
        if member is None:
            raise unknown("Member", 10007)
        return member.payload()

    # ------------------------------------------------------------------ commands

    def _command_scope(self, call: Call) -> dict[tuple[str, int], dict[str, Any]]:
        if int(call.params["app_id"]) != self.application_id:
            raise unknown("Application", 10002)
        gid = call.params.get("guild_id")
        if gid is not None and int(gid) not in self.guilds:
            raise ApiError(403, 50001, "Missing Access")
        return self.commands.setdefault(int(gid) if gid else None, {})

    def _build_command(
        self, call: Call, data: dict[str, Any], previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        if not isinstance(data, dict) or not data.get("name"):
            raise ApiError(400, 50035, "Invalid Form Body")
        cmd: dict[str, Any] = {
            "description": "",
            "options": [],
            "default_member_permissions": None,
            "dm_permission": True,
            "nsfw": False,
            "contexts": None,
            "integration_types": [0],
            "name_localizations": None,
            "description_localizations": None,
            **data,
        }
        cmd["type"] = data.get("type", 1)
        cmd["id"] = previous["id"] if previous else str(self.snowflake())
        cmd["application_id"] = str(self.application_id)
        cmd["version"] = str(self.snowflake())
        if call.params.get("guild_id"):
            cmd["guild_id"] = call.params["guild_id"]
        return cmd

    async def _list_commands(self, call: Call) -> Any:
        return list(self._command_scope(call).values())

    async def _put_commands(self, call: Call) -> Any:
        scope = self._command_scope(call)
        if not isinstance(call.body, list):
            raise ApiError(400, 50035, "Invalid Form Body")
        new: dict[tuple[str, int], dict[str, Any]] = {}
        for data in call.body:
            key = (data.get("name"), data.get("type", 1))
            new[key] = self._build_command(call, data, scope.get(key))
        scope.clear()
        scope.update(new)
        self.changes.notify()
        return list(scope.values())

    async def _post_command(self, call: Call) -> Any:
        scope = self._command_scope(call)
        key = (call.body.get("name"), call.body.get("type", 1))
        scope[key] = self._build_command(call, call.body, scope.get(key))
        self.changes.notify()
        return scope[key]

    def _command_by_id(self, call: Call) -> tuple[tuple[str, int], dict[str, Any]]:
        for key, cmd in self._command_scope(call).items():
            if cmd["id"] == call.params["command_id"]:
                return key, cmd
        raise unknown("application command", 10063)

    async def _get_command(self, call: Call) -> Any:
        return self._command_by_id(call)[1]

    async def _patch_command(self, call: Call) -> Any:
        _, cmd = self._command_by_id(call)
        cmd.update(call.body or {})
        cmd["version"] = str(self.snowflake())
        self.changes.notify()
        return cmd

    async def _delete_command(self, call: Call) -> Any:
        key, _ = self._command_by_id(call)
        del self._command_scope(call)[key]
        self.changes.notify()
        return None

    # ------------------------------------------------------------------ messages

    def _new_attachment(
        self,
        channel_id: int,
        filename: str,
        data: bytes,
        content_type: str | None,
        *,
        description: str | None = None,
        ephemeral: bool = False,
    ) -> RecordedAttachment:
        aid = self.snowflake()
        url = f"{self.url}/cdn/attachments/{channel_id}/{aid}/{filename}"
        att = RecordedAttachment(aid, filename, data, content_type, url, description, ephemeral)
        self.attachments[aid] = att
        return att

    def _resolve_attachments(
        self, msg: RecordedMessage, body: dict[str, Any], files: dict[int, Upload]
    ) -> None:
        """Discord's rule: `attachments` lists what to keep plus `{id: n}` for files[n]."""
        if "attachments" not in body and not files:
            return
        kept = {a.id: a for a in msg.attachments}
        out: list[RecordedAttachment] = []
        used: set[int] = set()
        if body.get("attachments") is not None:
            for item in body["attachments"]:
                ref = int(item["id"])
                if ref in kept:
                    out.append(kept[ref])
                elif ref in files:
                    up = files[ref]
                    used.add(ref)
                    out.append(
                        self._new_attachment(
                            msg.channel_id,
                            item.get("filename") or up.filename,
                            up.data,
                            up.content_type,
                            description=item.get("description"),
                        )
                    )
                else:
                    raise ApiError(400, 50035, "Invalid Form Body")
        else:
            out = list(msg.attachments)
        for index, up in sorted(files.items()):
            if index not in used:
                out.append(
                    self._new_attachment(msg.channel_id, up.filename, up.data, up.content_type)
                )
        msg.attachments = out

    def _apply(
        self,
        msg: RecordedMessage,
        body: Any,
        files: dict[int, Upload],
        *,
        creating: bool,
        ephemeral_ok: bool = False,
    ) -> None:
        """Apply a create/edit payload to `msg` with Discord's validation rules."""
        body = body if isinstance(body, dict) else {}
        content = body.get("content")
        if content is not None and len(str(content)) > 2000:
            raise ApiError(
                400,
                50035,
                "Invalid Form Body",
                errors={"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}},
            )
        embeds = body.get("embeds")
        if embeds is not None and len(embeds) > 10:
            raise ApiError(400, 50035, "Invalid Form Body")
        if "content" in body:
            msg.content = "" if content is None else str(content)
        if "embeds" in body:
            msg.embeds = list(embeds or [])
        if "components" in body:
            msg.components = list(body["components"] or [])
        if "allowed_mentions" in body:
            msg.allowed_mentions = body["allowed_mentions"]
        if body.get("flags") is not None:
            requested = int(body["flags"])
            keep = msg.flags & (EPHEMERAL | LOADING)
            if creating and ephemeral_ok:
                keep |= requested & EPHEMERAL
            msg.flags = keep | (requested & SETTABLE_FLAGS)
        self._resolve_attachments(msg, body, files)
        v2 = bool(msg.flags & IS_COMPONENTS_V2)
        if not (msg.content or msg.embeds or msg.attachments or (v2 and msg.components)):
            if not msg.thinking:
                raise ApiError(400, 50006, "Cannot send an empty message")

    def _message(
        self,
        channel_id: int,
        guild_id: int | None,
        *,
        type: int = 0,
        interaction: FakeInteraction | None = None,
        flags: int = 0,
    ) -> RecordedMessage:
        return RecordedMessage(
            id=self.snowflake(),
            channel_id=channel_id,
            guild_id=guild_id,
            author=self.bot_user.payload(),
            flags=flags,
            type=type,
            interaction_id=interaction.id if interaction else None,
            webhook_id=self.application_id if interaction else None,
            created_at=self.clock(),
        )

    def _store(self, msg: RecordedMessage) -> RecordedMessage:
        msg.snapshot(self.clock())
        self.messages[msg.id] = msg
        self.changes.notify()
        return msg

    def _edit(self, msg: RecordedMessage, body: Any, files: dict[int, Upload]) -> RecordedMessage:
        self._apply(msg, body, files, creating=False)
        msg.flags &= ~LOADING
        msg.edited_iso = iso_now()
        msg.snapshot(self.clock())
        self.changes.notify()
        return msg

    def _require(self, channel_id: int, *names: str) -> None:
        if self._dm_by_channel(channel_id) is not None:
            return  # a DM has no roles or overwrites: the bot may post and edit there
        have = self.bot_channel_permissions(channel_id)
        need = perms(*names)
        if have & need != need:
            raise ApiError(403, MISSING_PERMISSIONS, "Missing Permissions")

    def _channel_message(self, call: Call) -> RecordedMessage:
        channel_id = int(call.params["channel_id"])
        if self._dm_by_channel(channel_id) is None:
            self._find_channel(channel_id)
        msg = self.messages.get(int(call.params["message_id"]))
        if msg is None or msg.deleted or msg.channel_id != channel_id:
            raise unknown("Message", 10008)
        return msg

    async def _get_channel(self, call: Call) -> Any:
        if (dm := self._dm_by_channel(int(call.params["channel_id"]))) is not None:
            return dm.payload()
        _, channel = self._find_channel(int(call.params["channel_id"]))
        self._require(channel.id, "view_channel")
        return channel.payload()

    async def _typing(self, call: Call) -> Any:
        self._require(int(call.params["channel_id"]), "view_channel", "send_messages")
        return None

    async def _create_message(self, call: Call) -> Any:
        channel_id = int(call.params["channel_id"])
        guild_id: int | None = None
        if self._dm_by_channel(channel_id) is None:
            guild_id = self._find_channel(channel_id)[0].id
        self._require(channel_id, "view_channel", "send_messages")
        if call.files:
            self._require(channel_id, "attach_files")
        body = call.body if isinstance(call.body, dict) else {}
        kind = 19 if body.get("message_reference") else 0
        msg = self._message(channel_id, guild_id, type=kind)
        self._apply(msg, body, call.files, creating=True)
        return self._store(msg).payload()

    async def _get_message(self, call: Call) -> Any:
        msg = self._channel_message(call)
        self._require(msg.channel_id, "view_channel", "read_message_history")
        return msg.payload(self.application_id)

    async def _edit_message(self, call: Call) -> Any:
        msg = self._channel_message(call)
        if msg.author.get("id") != str(self.bot_user.id):
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        self._require(msg.channel_id, "view_channel")
        return self._edit(msg, call.body, call.files).payload(self.application_id)

    async def _delete_message(self, call: Call) -> Any:
        msg = self._channel_message(call)
        if msg.author.get("id") != str(self.bot_user.id):
            self._require(msg.channel_id, "manage_messages")
        msg.deleted, msg.deleted_by = True, "bot"
        self.changes.notify()
        return None

    # ------------------------------------------------------------------ interactions

    def _interaction_for_token(self, call: Call) -> FakeInteraction:
        if int(call.params["app_id"]) != self.application_id:
            raise unknown("Webhook", 10015)
        inter = self._by_token.get(call.params["token"])
        if inter is None or self.clock() - inter.created_at > self.interaction_token_lifetime:
            raise ApiError(401, 50027, "Invalid Webhook Token")
        return inter

    def _webhook_message(self, call: Call, inter: FakeInteraction) -> RecordedMessage:
        mid = call.params.get("message_id")
        if mid is None:
            msg = inter.original
        else:
            msg = next((m for m in inter.messages if m.id == int(mid)), None)
        if msg is None or msg.deleted:
            raise unknown("Message", 10008)
        return msg

    async def _callback(self, call: Call) -> Any:
        inter = self.interactions.get(int(call.params["interaction_id"]))
        if inter is None or inter.token != call.params["token"]:
            raise unknown("interaction", 10062)
        if self.clock() - inter.created_at > self.callback_deadline:
            raise unknown("interaction", 10062)
        if inter.response is not None:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        body = call.body if isinstance(call.body, dict) else {}
        rtype = body.get("type")
        data = body.get("data") or {}
        component = inter.type in (3, 5) and inter.message is not None
        allowed = {
            2: {4, 5, 9},
            3: {4, 5, 6, 7, 9},
            4: {8},
            5: {4, 5, 6, 7} if component else {4, 5},
        }[inter.type]
        if rtype not in allowed:
            raise ApiError(400, 50035, "Invalid Form Body", errors={"type": rtype})
        if rtype == 4:
            msg = self._message(
                inter.channel_id,
                inter.guild_id,
                type=20 if inter.type == 2 else 0,
                interaction=inter,
            )
            self._apply(msg, data, call.files, creating=True, ephemeral_ok=True)
            inter.original = self._store(msg)
        elif rtype == 5:
            flags = LOADING | (EPHEMERAL if int(data.get("flags") or 0) & EPHEMERAL else 0)
            msg = self._message(
                inter.channel_id,
                inter.guild_id,
                type=20 if inter.type == 2 else 0,
                interaction=inter,
                flags=flags,
            )
            inter.original = self._store(msg)
        elif rtype == 6:
            inter.original = inter.message
        elif rtype == 7:
            assert inter.message is not None
            inter.original = self._edit(inter.message, data, call.files)
        elif rtype == 8 and len(data.get("choices", [])) > 25:
            raise ApiError(400, 50035, "Invalid Form Body")
        inter.response = CallbackRecord(rtype, data, self.clock())
        self.changes.notify()
        if call.request.query.get("with_response") not in ("1", "true", "True"):
            return None
        info: dict[str, Any] = {"id": str(inter.id), "type": inter.type}
        out: dict[str, Any] = {"interaction": info}
        if inter.original is not None and rtype in (4, 5, 7):
            info["response_message_id"] = str(inter.original.id)
            info["response_message_loading"] = inter.original.thinking
            info["response_message_ephemeral"] = inter.original.ephemeral
            out["resource"] = {
                "type": rtype,
                "message": inter.original.payload(self.application_id),
            }
        elif rtype in (8, 9):
            out["resource"] = {"type": rtype}
        return out

    async def _followup(self, call: Call) -> Any:
        inter = self._interaction_for_token(call)
        if inter.response is None:
            raise unknown("Webhook", 10015)
        orig = inter.original
        if inter.response.type == 5 and orig is not None and orig.thinking and not orig.deleted:
            # Discord replaces the "thinking" placeholder with the first follow-up.
            self._apply(orig, call.body, call.files, creating=False)
            orig.flags &= ~LOADING
            orig.snapshot(self.clock())
            inter.followups.append(orig)
            self.changes.notify()
            return orig.payload(self.application_id)
        msg = self._message(inter.channel_id, inter.guild_id, interaction=inter)
        self._apply(msg, call.body, call.files, creating=True, ephemeral_ok=True)
        inter.followups.append(msg)
        return self._store(msg).payload(self.application_id)

    async def _get_webhook_message(self, call: Call) -> Any:
        inter = self._interaction_for_token(call)
        return self._webhook_message(call, inter).payload(self.application_id)

    async def _edit_webhook_message(self, call: Call) -> Any:
        inter = self._interaction_for_token(call)
        msg = self._webhook_message(call, inter)
        return self._edit(msg, call.body, call.files).payload(self.application_id)

    async def _delete_webhook_message(self, call: Call) -> Any:
        inter = self._interaction_for_token(call)
        msg = self._webhook_message(call, inter)
        msg.deleted, msg.deleted_by = True, "bot"
        self.changes.notify()
        return None

    # ------------------------------------------------------------------ driving the bot

    def _context(
        self, guild_id: int | None, channel_id: int | None, user_id: int | None
    ) -> tuple[FakeGuild, FakeChannel, FakeMember]:
        if channel_id is not None and guild_id is None:
            guild, channel = self._find_channel(channel_id)
        else:
            guild = self.guilds[guild_id] if guild_id is not None else self.guild
            channel = (
                guild.channels[channel_id]
                if channel_id is not None
                else next(iter(guild.channels.values()))
            )
        uid = user_id if user_id is not None else self.alice.id
        member = guild.members.get(uid)
        if member is None:
            raise KeyError(f"user {uid} is not a member of guild {guild.id}; use add_member")
        return guild, channel, member

    async def dispatch_interaction(
        self,
        type: int,
        data: dict[str, Any],
        *,
        guild_id: int | None = None,
        channel_id: int | None = None,
        user_id: int | None = None,
        locale: str = "en-US",
        member_permissions: int | None = None,
        message: RecordedMessage | None = None,
        dm: bool = False,
    ) -> FakeInteraction:
        """Send a raw INTERACTION_CREATE of any type; the helpers below build `data`.

        `dm=True` sends it from the user's DM with the bot: no guild, `user` instead of
        `member`, channel type 1, context 1 (BOT_DM), on shard 0.
        """
        if dm:
            user = self.users[user_id if user_id is not None else self.alice.id]
            dm_channel = self.dm_channel(user.id)
            return await self._send_interaction(
                type,
                data,
                guild_id=None,
                channel_id=dm_channel.id,
                user_id=user.id,
                locale=locale,
                message=message,
                where={
                    "channel": dm_channel.payload(),
                    "user": user.payload(),
                    "app_permissions": str(DM_APP_PERMISSIONS),
                    "authorizing_integration_owners": {"0": "0"},
                    "context": 1,
                },
            )
        guild, channel, member = self._context(guild_id, channel_id, user_id)
        permissions = (
            member_permissions
            if member_permissions is not None
            else guild.channel_permissions(member, channel)
        )
        bot_member = guild.members[self.bot_user.id]
        return await self._send_interaction(
            type,
            data,
            guild_id=guild.id,
            channel_id=channel.id,
            user_id=member.id,
            locale=locale,
            message=message,
            where={
                "guild_id": str(guild.id),
                "guild": {"id": str(guild.id), "locale": guild.preferred_locale, "features": []},
                "channel": channel.payload(),
                "member": member.payload(permissions=permissions),
                "app_permissions": str(guild.channel_permissions(bot_member, channel)),
                "guild_locale": guild.preferred_locale,
                "authorizing_integration_owners": {"0": str(guild.id)},
                "context": 0,
            },
        )

    async def _send_interaction(
        self,
        type: int,
        data: dict[str, Any],
        *,
        guild_id: int | None,
        channel_id: int,
        user_id: int,
        locale: str,
        message: RecordedMessage | None,
        where: dict[str, Any],
    ) -> FakeInteraction:
        """Record and dispatch one interaction; `where` holds the fields that differ between
        a server (guild, member, permissions) and a DM (user, context 1)."""
        iid = self.snowflake()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": type,
            "data": data,
            "channel_id": str(channel_id),
            "token": token,
            "version": 1,
            "locale": locale,
            "entitlements": [],
            "attachment_size_limit": self.upload_limit,
            **where,
        }
        if message is not None:
            payload["message"] = message.payload(self.application_id)
        inter = FakeInteraction(
            fake=self,
            id=iid,
            token=token,
            type=type,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            payload=payload,
            created_at=self.clock(),
            message=message,
        )
        self.interactions[iid] = inter
        self._by_token[token] = inter
        await self.gateway.dispatch_to_guild(guild_id, "INTERACTION_CREATE", payload)
        inter.dispatched_at = self.clock()
        return inter

    def _option(
        self,
        name: str,
        value: Any,
        spec: dict[str, Any] | None,
        resolved: dict[str, dict[str, Any]],
        guild: FakeGuild | None,
    ) -> dict[str, Any]:
        if spec is not None:
            otype = spec["type"]
        elif isinstance(value, bool):
            otype = 5
        elif isinstance(value, int):
            otype = 4
        elif isinstance(value, float):
            otype = 10
        elif isinstance(value, FakeMember | FakeUser):
            otype = 6
        elif isinstance(value, FakeChannel):
            otype = 7
        elif isinstance(value, FakeRole):
            otype = 8
        else:
            otype = 3
        if otype in (6, 7, 8, 9) and guild is None:  # in a DM only users resolve
            oid = int(getattr(value, "id", value))
            if oid in self.users:
                resolved.setdefault("users", {})[str(oid)] = self.users[oid].payload()
            value = str(oid)
        elif otype in (6, 7, 8, 9):
            assert guild is not None
            oid = int(getattr(value, "id", value))
            if oid in guild.members or oid in self.users:
                user = guild.members[oid].user if oid in guild.members else self.users[oid]
                resolved.setdefault("users", {})[str(oid)] = user.payload()
                if oid in guild.members:
                    member = guild.members[oid].payload(permissions=0)
                    member.pop("user")
                    resolved.setdefault("members", {})[str(oid)] = member
            elif oid in guild.channels:
                ch = guild.channels[oid]
                resolved.setdefault("channels", {})[str(oid)] = {
                    **ch.payload(),
                    "permissions": str(guild.channel_permissions(guild.members[self.alice.id], ch)),
                }
            elif oid in guild.roles:
                resolved.setdefault("roles", {})[str(oid)] = guild.roles[oid].payload()
            value = str(oid)
        elif otype == 4 and not isinstance(value, str):
            value = int(value)
        elif otype == 10 and not isinstance(value, str):
            value = float(value)
        elif otype == 3:
            value = str(value)
        return {"name": name, "type": otype, "value": value}

    def _command_data(
        self,
        name: str,
        options: dict[str, Any] | None,
        *,
        guild: FakeGuild | None,
        channel_id: int,
        subcommand: str | None,
        attachments: dict[str, tuple[str, bytes, str]] | None,
        focused: str | None = None,
    ) -> dict[str, Any]:
        cmd = self.find_command(name, guild.id if guild is not None else None)
        specs: list[dict[str, Any]] = list(cmd.get("options") or []) if cmd else []
        path: list[tuple[str, int]] = []
        parts = (subcommand or "").split()
        for depth, part in enumerate(parts):
            spec = next((o for o in specs if o["name"] == part), None)
            kind = spec["type"] if spec else (1 if depth == len(parts) - 1 else 2)
            path.append((part, kind))
            specs = list(spec.get("options") or []) if spec else []
        by_name = {o["name"]: o for o in specs}
        resolved: dict[str, dict[str, Any]] = {}
        built = [
            self._option(k, v, by_name.get(k), resolved, guild) for k, v in (options or {}).items()
        ]
        for key, (filename, blob, ctype) in (attachments or {}).items():
            att = self._new_attachment(channel_id, filename, blob, ctype, ephemeral=True)
            resolved.setdefault("attachments", {})[str(att.id)] = att.payload()
            built.append({"name": key, "type": 11, "value": str(att.id)})
        for opt in built:
            if opt["name"] == focused:
                opt["focused"] = True
                opt["value"] = str(opt["value"])
        for part, kind in reversed(path):
            built = [{"name": part, "type": kind, "options": built}]
        data: dict[str, Any] = {
            "id": cmd["id"] if cmd else str(self.snowflake()),
            "name": name,
            "type": 1,
            "options": built,
        }
        if cmd and cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        if resolved:
            data["resolved"] = resolved
        return data

    async def run_slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        guild_id: int | None = None,
        channel_id: int | None = None,
        user_id: int | None = None,
        locale: str = "en-US",
        subcommand: str | None = None,
        attachments: dict[str, tuple[str, bytes, str]] | None = None,
        member_permissions: int | None = None,
        dm: bool = False,
    ) -> FakeInteraction:
        """A member runs `/name`: option types come from the synced command when known.

        `subcommand` is "sub" or "group sub"; `attachments` maps option name to
        (filename, bytes, content_type) and is served from the fake's CDN. `dm=True`
        runs it in the user's DM with the bot (the global command; Discord only offers
        it there if its contexts allow, but a stale client can still send it).
        """
        if dm:
            uid = user_id if user_id is not None else self.alice.id
            data = self._command_data(
                name,
                options,
                guild=None,
                channel_id=self.dm_channel(uid).id,
                subcommand=subcommand,
                attachments=attachments,
            )
            return await self.dispatch_interaction(2, data, user_id=uid, locale=locale, dm=True)
        guild, channel, _ = self._context(guild_id, channel_id, user_id)
        data = self._command_data(
            name,
            options,
            guild=guild,
            channel_id=channel.id,
            subcommand=subcommand,
            attachments=attachments,
        )
        return await self.dispatch_interaction(
            2,
            data,
            guild_id=guild.id,
            channel_id=channel.id,
            user_id=user_id,
            locale=locale,
            member_permissions=member_permissions,
        )

    async def autocomplete(
        self,
        name: str,
        options: dict[str, Any],
        *,
        focused: str,
        guild_id: int | None = None,
        channel_id: int | None = None,
        user_id: int | None = None,
        locale: str = "en-US",
        subcommand: str | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[dict[str, Any]]:
        """A member types into option `focused`; returns the choices the bot answered."""
        guild, channel, _ = self._context(guild_id, channel_id, user_id)
        data = self._command_data(
            name,
            options,
            guild=guild,
            channel_id=channel.id,
            subcommand=subcommand,
            attachments=None,
            focused=focused,
        )
        inter = await self.dispatch_interaction(
            4, data, guild_id=guild.id, channel_id=channel.id, user_id=user_id, locale=locale
        )
        await inter.wait_for_response(timeout)
        choices = inter.choices
        if choices is None:
            raise AssertionError(f"bot answered autocomplete with type {inter.response_type}")
        return choices

    async def click_button(
        self,
        message: RecordedMessage | int,
        custom_id: str,
        *,
        user_id: int | None = None,
        values: list[str] | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """A member clicks a button (or picks `values` in a select) on a recorded message."""
        msg = message if isinstance(message, RecordedMessage) else self.messages[message]
        if msg.deleted:
            raise ValueError(f"message {msg.id} was deleted")
        component = msg.find_component(custom_id)
        if component is None:
            raise ValueError(f"no component {custom_id!r} on message; has {msg.custom_ids()}")
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if component["type"] != 2:
            data["values"] = list(values or [])
        return await self.dispatch_interaction(
            3,
            data,
            guild_id=msg.guild_id,
            channel_id=msg.channel_id,
            user_id=user_id,
            locale=locale,
            message=msg,
            dm=self._dm_by_channel(msg.channel_id) is not None,
        )

    async def submit_modal(
        self,
        modal: FakeInteraction | str,
        fields: dict[str, str],
        *,
        guild_id: int | None = None,
        channel_id: int | None = None,
        user_id: int | None = None,
        locale: str = "en-US",
        dm: bool = False,
    ) -> FakeInteraction:
        """A member submits a modal: pass the interaction that opened it, or its custom_id."""
        rows: list[dict[str, Any]]
        message = None
        if isinstance(modal, FakeInteraction):
            shown = modal.modal
            if shown is None:
                raise ValueError("that interaction did not open a modal")
            custom_id = shown["custom_id"]
            dm = dm or modal.guild_id is None
            guild_id = guild_id or modal.guild_id
            channel_id = channel_id or modal.channel_id
            user_id = user_id or modal.user_id
            message = modal.message
            rows = []
            for item in shown.get("components", []):
                if item.get("type") == 18:
                    inner = item["component"]
                    value = fields.get(inner.get("custom_id", ""), "")
                    rows.append({"type": 18, "component": {**_submitted(inner, value)}})
                else:
                    rows.append(
                        {
                            "type": 1,
                            "components": [
                                _submitted(c, fields.get(c.get("custom_id", ""), ""))
                                for c in item.get("components", [])
                            ],
                        }
                    )
        else:
            custom_id = modal
            rows = [
                {"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]}
                for k, v in fields.items()
            ]
        return await self.dispatch_interaction(
            5,
            {"custom_id": custom_id, "components": rows},
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            locale=locale,
            message=message,
            dm=dm,
        )


def _submitted(component: dict[str, Any], value: str) -> dict[str, Any]:
    """What Discord sends back for one modal input: its type, custom_id and value(s)."""
    out: dict[str, Any] = {"type": component["type"], "custom_id": component.get("custom_id")}
    if component["type"] == 4:
        out["value"] = value
    else:
        out["values"] = [value] if value else []
    return out


__all__ = ["PERMISSIONS", "FakeDiscord"]
