"""The fake gateway: HELLO, IDENTIFY/READY, heartbeats, RESUME with replay, shards.

Frames go out as TEXT JSON: discord.py asks for zlib-stream but only inflates BINARY
frames. Every dispatch is kept per session so a RESUME replays what the bot missed.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from .records import GatewayRecord

if TYPE_CHECKING:
    from .server import FakeDiscord

DISPATCH, HEARTBEAT, IDENTIFY, RESUME, RECONNECT, INVALID_SESSION, HELLO, HEARTBEAT_ACK = (
    0,
    1,
    2,
    6,
    7,
    9,
    10,
    11,
)


@dataclass
class GatewaySession:
    """One identified session of one shard; survives socket drops until invalidated."""

    id: str
    shard_id: int
    shard_count: int
    seq: int = 0
    sent: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    socket: web.WebSocketResponse | None = None
    path: str = ""
    resumable: bool = True
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Gateway:
    """Owns sessions and sockets; `FakeDiscord` calls `dispatch` to reach the bot."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.sessions: dict[str, GatewaySession] = {}
        self.by_shard: dict[int, GatewaySession] = {}
        self.sockets: set[web.WebSocketResponse] = set()
        self.log: list[GatewayRecord] = []

    # ------------------------------------------------------------------ helpers

    def _record(
        self, direction: str, frame: dict[str, Any], session: GatewaySession | None, path: str
    ) -> None:
        self.log.append(
            GatewayRecord(
                direction=direction,
                op=frame.get("op", -1),
                t=frame.get("t"),
                s=frame.get("s"),
                shard_id=session.shard_id if session else None,
                path=path,
                at=self.fake.clock(),
            )
        )
        self.fake.changes.notify()

    async def _send(
        self,
        ws: web.WebSocketResponse,
        frame: dict[str, Any],
        session: GatewaySession | None,
        path: str,
    ) -> None:
        if ws.closed:
            return
        try:
            await ws.send_str(json.dumps(frame))
        except (ConnectionError, RuntimeError):
            return  # the bot will RESUME and get it replayed
        self._record("send", frame, session, path)

    def shard_for(self, guild_id: int | None, shard_count: int) -> int:
        return 0 if guild_id is None else (guild_id >> 22) % shard_count

    def session_for_guild(self, guild_id: int | None) -> GatewaySession:
        if not self.by_shard:
            raise RuntimeError("no gateway session: is the bot logged in to the fake?")
        count = next(iter(self.by_shard.values())).shard_count
        shard = self.shard_for(guild_id, count)
        try:
            return self.by_shard[shard]
        except KeyError:
            raise RuntimeError(f"shard {shard} has not identified") from None

    async def dispatch(self, session: GatewaySession, event: str, data: dict[str, Any]) -> int:
        """Send a DISPATCH now if connected; it is kept for replay either way."""
        async with session.lock:
            session.seq += 1
            frame = {"op": DISPATCH, "t": event, "s": session.seq, "d": data}
            session.sent.append((session.seq, frame))
            if session.socket is not None:
                await self._send(session.socket, frame, session, session.path)
            return session.seq

    async def dispatch_to_guild(
        self, guild_id: int | None, event: str, data: dict[str, Any]
    ) -> int:
        return await self.dispatch(self.session_for_guild(guild_id), event, data)

    # ------------------------------------------------------------------ socket

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        self.sockets.add(ws)
        path = request.path
        session: GatewaySession | None = None
        hello = {
            "op": HELLO,
            "d": {"heartbeat_interval": self.fake.heartbeat_interval_ms, "_trace": ["fake"]},
            "s": None,
            "t": None,
        }
        try:
            await self._send(ws, hello, None, path)
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                self._record("recv", frame, session, path)
                op = frame.get("op")
                data = frame.get("d")
                if op == HEARTBEAT:
                    ack = {"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None}
                    await self._send(ws, ack, session, path)
                elif op == IDENTIFY:
                    session = await self._identify(ws, data, path)
                elif op == RESUME:
                    session = await self._resume(ws, data, path)
        finally:
            self.sockets.discard(ws)
            if session is not None and session.socket is ws:
                session.socket = None
            self.fake.changes.notify()
        return ws

    async def _identify(
        self, ws: web.WebSocketResponse, data: dict[str, Any], path: str
    ) -> GatewaySession | None:
        if self.fake.token is not None and data.get("token") != self.fake.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return None
        shard_id, shard_count = data.get("shard") or [0, 1]
        if not 0 <= shard_id < shard_count:
            await ws.close(code=4010, message=b"Invalid shard.")
            return None
        session = GatewaySession(
            id=secrets.token_hex(16), shard_id=shard_id, shard_count=shard_count
        )
        self.sessions[session.id] = session
        old = self.by_shard.get(shard_id)
        if old is not None:
            old.resumable = False
        self.by_shard[shard_id] = session
        async with session.lock:
            session.socket = ws
            session.path = path
        guilds = [
            g for g in self.fake.guilds.values() if self.shard_for(g.id, shard_count) == shard_id
        ]
        ready = {
            "v": 10,
            "user": self.fake.bot_user.payload(),
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.fake.resume_gateway_url,
            "shard": [shard_id, shard_count],
            "application": {"id": str(self.fake.application_id), "flags": 0},
            "private_channels": [],
            "presences": [],
            "relationships": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "_trace": ["fake-discord"],
        }
        await self.dispatch(session, "READY", ready)
        for guild in guilds:
            await self.dispatch(session, "GUILD_CREATE", self.fake.guild_payload(guild))
        return session

    async def _resume(
        self, ws: web.WebSocketResponse, data: dict[str, Any], path: str
    ) -> GatewaySession | None:
        session = self.sessions.get(data.get("session_id", ""))
        token_ok = self.fake.token is None or data.get("token") == self.fake.token
        if session is None or not session.resumable or not token_ok:
            invalid = {"op": INVALID_SESSION, "d": False, "s": None, "t": None}
            await self._send(ws, invalid, None, path)
            return None
        last = data.get("seq") or 0
        async with session.lock:
            session.socket = ws
            session.path = path
            for seq, frame in session.sent:
                if seq > last:
                    await self._send(ws, frame, session, path)
        await self.dispatch(session, "RESUMED", {"_trace": ["fake-discord"]})
        return session

    async def disconnect(
        self, code: int = 4000, *, shard_id: int | None = None, resumable: bool = True
    ) -> None:
        """Drop the bot's socket(s) the way Discord does before a RESUME."""
        for session in list(self.by_shard.values()):
            if shard_id is not None and session.shard_id != shard_id:
                continue
            session.resumable = resumable
            ws = session.socket
            session.socket = None
            if ws is not None and not ws.closed:
                await ws.close(code=code, message=b"fake disconnect")

    async def close(self) -> None:
        for ws in list(self.sockets):
            if not ws.closed:
                await ws.close(code=1001, message=b"fake shutting down")
