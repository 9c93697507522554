"""The fake gateway: HELLO / heartbeat / IDENTIFY / READY / GUILD_CREATE, RESUME with replay, op 7 / op 9.

Frames are plain JSON text (the ``compress``/``encoding`` query parameters are ignored; discord.py
parses text frames as JSON without zlib). Each session keeps every dispatched frame with its
sequence number, so a RESUME replays exactly what the client has not seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from .models import JSON, PRIVILEGED_INTENTS, Intent

if TYPE_CHECKING:
    from .state import EventData, World

REPLAY_BUFFER = 10_000


class _Close:
    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class Connection:
    """One websocket. Frames go through an ordered outbox written by a single task."""

    def __init__(self, ws: web.WebSocketResponse, query: dict[str, str]) -> None:
        self.ws = ws
        self.query = query
        self.session: Session | None = None
        self.outbox: asyncio.Queue[str | _Close] = asyncio.Queue()
        self.writer = asyncio.create_task(self._write())
        self.client_close_code: int | None = None

    def send(self, payload: JSON) -> None:
        self.outbox.put_nowait(json.dumps(payload, separators=(",", ":")))

    def send_raw(self, frame: str) -> None:
        self.outbox.put_nowait(frame)

    def close(self, code: int, reason: str = "") -> None:
        self.outbox.put_nowait(_Close(code, reason))

    async def _write(self) -> None:
        while True:
            item = await self.outbox.get()
            try:
                if isinstance(item, _Close):
                    await self.ws.close(code=item.code, message=item.reason.encode())
                elif not self.ws.closed:
                    await self.ws.send_str(item)
            except (ConnectionError, RuntimeError):
                pass
            finally:
                self.outbox.task_done()

    async def flush(self, max_wait: float = 5.0) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.outbox.join(), max_wait)


@dataclass
class Session:
    id: str
    intents: int
    shard: tuple[int, int]
    seq: int = 0
    buffer: deque[tuple[int, str]] = field(default_factory=lambda: deque(maxlen=REPLAY_BUFFER))
    connection: Connection | None = None
    invalid: bool = False
    created_t: float = field(default_factory=time.monotonic)

    def frame(self, event: str, data: JSON, *, store: bool = True) -> str:
        self.seq += 1
        text = json.dumps({"op": 0, "t": event, "s": self.seq, "d": data}, separators=(",", ":"))
        if store:
            self.buffer.append((self.seq, text))
        return text

    def owns_guild(self, guild_id: int | None) -> bool:
        if guild_id is None:
            return self.shard[0] == 0
        return (guild_id >> 22) % self.shard[1] == self.shard[0]


class Gateway:
    """Gateway server state. ``World.emit`` lands in :meth:`dispatch`."""

    def __init__(self, world: World, *, heartbeat_interval_ms: int) -> None:
        self.world = world
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.sessions: dict[str, Session] = {}
        self.connections: set[Connection] = set()
        self.identify_count = 0
        self.resume_count = 0
        self.failed_resume_count = 0
        self.heartbeat_count = 0
        self.ack_heartbeats = True
        # (t, what): "connect <path>" for each websocket, then "identify" or "resume"
        self.connect_log: list[tuple[float, str]] = []
        world._dispatcher = self.dispatch

    # ------------------------------------------------------------------ dispatch

    def live_sessions(self) -> list[Session]:
        return [s for s in self.sessions.values() if not s.invalid]

    def dispatch(self, event: str, data: EventData, guild_id: int | None, intent: int) -> None:
        for session in self.live_sessions():
            if intent and not session.intents & intent:
                continue
            if not session.owns_guild(guild_id):
                continue
            self._send_event(session, event, data(session.intents) if callable(data) else data)

    def _send_event(self, session: Session, event: str, data: JSON) -> None:
        frame = session.frame(event, data)
        if session.connection is not None:
            session.connection.send_raw(frame)

    async def flush(self, max_wait: float = 5.0) -> None:
        await asyncio.gather(*(c.flush(max_wait) for c in list(self.connections)))

    # ------------------------------------------------------------------ test controls

    def _detach(self, session: Session) -> Connection | None:
        conn = session.connection
        session.connection = None
        return conn

    def request_reconnect(self) -> int:
        """Send op 7 RECONNECT on every identified connection. Returns how many were told."""
        count = 0
        for session in self.live_sessions():
            conn = self._detach(session)
            if conn is not None:
                conn.send({"op": 7, "d": None})
                count += 1
        return count

    def invalidate_sessions(self, *, resumable: bool = False) -> int:
        """Send op 9 INVALID_SESSION (``d`` = resumable) on every identified connection."""
        count = 0
        for session in self.live_sessions():
            conn = self._detach(session)
            if not resumable:
                session.invalid = True
            if conn is not None:
                conn.send({"op": 9, "d": resumable})
                count += 1
        return count

    def close_connections(self, code: int = 4000, reason: str = "") -> int:
        """Close every websocket from the server side (a network drop or a gateway restart)."""
        conns = list(self.connections)
        for conn in conns:
            if conn.session is not None and conn.session.connection is conn:
                conn.session.connection = None
            conn.close(code, reason)
        return len(conns)

    # ------------------------------------------------------------------ websocket handler

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=4 * 1024 * 1024)
        await ws.prepare(request)
        conn = Connection(ws, dict(request.query))
        self.connections.add(conn)
        self.connect_log.append((time.monotonic(), f"connect {request.path}"))
        conn.send(
            {
                "op": 10,
                "d": {
                    "heartbeat_interval": self.heartbeat_interval_ms,
                    "_trace": ['["fake-gateway",{"micros":0}]'],
                },
            }
        )
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    if msg.type == WSMsgType.BINARY:
                        conn.close(4002, "Decode error")
                    continue
                try:
                    payload = json.loads(msg.data)
                except ValueError:
                    conn.close(4002, "Decode error")
                    continue
                try:
                    self._on_frame(conn, payload)
                except Exception:  # a bug in the fake: record it, keep the socket
                    self.world.server_errors.append(
                        f"gateway op {payload.get('op')}: {traceback.format_exc()}"
                    )
        finally:
            conn.client_close_code = ws.close_code
            session = conn.session
            if session is not None and session.connection is conn:
                session.connection = None
                if ws.close_code in (1000, 1001):
                    session.invalid = True  # a clean close ends the session, as on Discord
            self.connections.discard(conn)
            await conn.flush(0.5)
            conn.writer.cancel()
            self.world._notify()
        return ws

    def _on_frame(self, conn: Connection, payload: JSON) -> None:
        op = payload.get("op")
        data = payload.get("d")
        if op == 1:
            self.heartbeat_count += 1
            if self.ack_heartbeats:
                conn.send({"op": 11})
        elif op == 2:
            self._identify(conn, data or {})
        elif op == 6:
            self._resume(conn, data or {})
        elif conn.session is None:
            conn.close(4003, "Not authenticated.")
        elif op == 8:
            self._request_members(conn, data or {})
        elif op == 3:
            self.world.presence = data
        elif op in (4, 14, 31):
            pass  # voice state / lazy requests / soundboard: accepted and ignored
        else:
            conn.close(4001, "Unknown opcode.")
        self.world._notify()

    def _token_ok(self, token: object) -> bool:
        return isinstance(token, str) and token.removeprefix("Bot ") == self.world.token

    def _identify(self, conn: Connection, data: JSON) -> None:
        world = self.world
        if conn.session is not None:
            conn.close(4005, "Already authenticated.")
            return
        if not self._token_ok(data.get("token")):
            conn.close(4004, "Authentication failed.")
            return
        intents = int(data.get("intents", 0))
        for intent, flags in PRIVILEGED_INTENTS.items():
            if intents & intent and not world.app_flags & flags:
                conn.close(4014, "Disallowed intent(s).")
                return
        shard_id, shard_count = data.get("shard") or [0, 1]
        if not 0 <= shard_id < shard_count:
            conn.close(4010, "Invalid shard.")
            return
        session = Session(secrets.token_hex(16), intents, (shard_id, shard_count), connection=conn)
        conn.session = session
        self.sessions[session.id] = session
        self.identify_count += 1
        self.connect_log.append((time.monotonic(), "identify"))
        guilds = [g for g in world.guilds.values() if session.owns_guild(g.id)]
        ready: JSON = {
            "v": 10,
            "user_settings": {},
            "user": {**world.bot.payload(), "verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": world.resume_gateway_url,
            "shard": [shard_id, shard_count],
            "application": {"id": str(world.application_id), "flags": world.app_flags},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["fake"],
            "auth": {},
            "_trace": ['["fake-gateway",{"micros":0}]'],
        }
        self._send_event(session, "READY", ready)
        if intents & Intent.GUILDS:
            for guild in guilds:
                self._send_event(session, "GUILD_CREATE", world.guild_create_payload(guild))

    def _resume(self, conn: Connection, data: JSON) -> None:
        if not self._token_ok(data.get("token")):
            conn.close(4004, "Authentication failed.")
            return
        session = self.sessions.get(str(data.get("session_id")))
        seq = int(data.get("seq") or 0)
        oldest = session.buffer[0][0] if session and session.buffer else 0
        if session is None or session.invalid or (oldest and seq < oldest - 1):
            self.failed_resume_count += 1
            conn.send({"op": 9, "d": False})
            return
        old = session.connection
        if old is not None and old is not conn:
            old.close(4000, "Session resumed elsewhere.")
        for frame_seq, frame in session.buffer:
            if frame_seq > seq:
                conn.send_raw(frame)
        conn.send_raw(session.frame("RESUMED", {"_trace": ['["fake-gateway",{"micros":0}]']}, store=False))
        session.connection = conn
        conn.session = session
        self.resume_count += 1
        self.connect_log.append((time.monotonic(), "resume"))

    def _request_members(self, conn: Connection, data: JSON) -> None:
        world = self.world
        guild = world.guilds.get(int(data.get("guild_id") or 0))
        if guild is None or conn.session is None:
            return
        members = list(guild.members.values())
        query = data.get("query")
        user_ids = {int(u) for u in data.get("user_ids") or []}
        if user_ids:
            members = [m for m in members if m.user.id in user_ids]
        elif query:
            members = [m for m in members if m.user.username.lower().startswith(str(query).lower())]
        limit = int(data.get("limit") or 0)
        if limit:
            members = members[:limit]
        chunk: JSON = {
            "guild_id": str(guild.id),
            "members": [m.payload() for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        self._send_event(conn.session, "GUILD_MEMBERS_CHUNK", chunk)
