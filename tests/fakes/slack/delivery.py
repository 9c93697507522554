"""Delivering events to the app: Socket Mode envelopes over a websocket, or signed HTTP POSTs.

Retries follow Slack's rules: only Events API payloads are retried (slash commands and
interactivity are not); a delivery counts as acknowledged when the app acks the envelope (Socket
Mode) or answers HTTP 200 (HTTP mode) within ``ack_timeout``. Up to ``max_retries`` retries.

- Socket Mode: every attempt is a new envelope (new ``envelope_id``) carrying the same payload and
  ``event_id``; ``retry_attempt`` is 0 on the first delivery and counts up, ``retry_reason`` is ""
  on the first delivery and ``"timeout"`` on retries (as in Slack's documented envelopes and
  bolt-java's notes). An ack for any envelope of a delivery completes it. (Whether Slack reuses the
  envelope_id on a retry is not documented; the fake does not.)
- HTTP: the first attempt has no retry headers; retries carry ``X-Slack-Retry-Num: n`` and
  ``X-Slack-Retry-Reason`` (``http_timeout``, ``http_error``, ``connection_failed``). Slack itself
  spaces retries (about immediately, 1 min, 5 min); the fake uses ``http_retry_delays``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from .events import sign

if TYPE_CHECKING:
    from .sending import Sending as FakeSlack

Mode = Literal["socket", "http"]
Kind = Literal["events_api", "slash_commands", "interactive"]


@dataclass
class Attempt:
    """One delivery attempt. ``number`` 0 is the first delivery, n the n-th retry."""

    number: int
    sent_at: float
    envelope_id: str | None = None
    acked_at: float | None = None
    #: Socket Mode: the ``payload`` of the ack message (e.g. a slash command's reply), if any.
    ack_payload: dict[str, Any] | None = None
    #: Socket Mode: which connection carried it (1 for the first accepted, 2 for the next…).
    connection: int | None = None
    #: HTTP mode: where the attempt went (each instance has its own URL), response status and body.
    url: str | None = None
    status: int | None = None
    response_body: str | None = None
    #: Why the attempt failed: ``no_connection``, ``timeout``, ``http_timeout``, ``http_error``,
    #: ``connection_failed``.
    error: str | None = None


@dataclass
class Delivery:
    kind: Kind
    mode: Mode
    payload: dict[str, Any]
    ack_timeout: float
    max_retries: int
    attempts: list[Attempt] = field(default_factory=list)
    gave_up: bool = False
    _acked: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def event_id(self) -> str | None:
        return self.payload.get("event_id")

    @property
    def acked(self) -> bool:
        return self._acked.is_set()

    @property
    def acked_attempt(self) -> Attempt | None:
        return next((a for a in self.attempts if a.acked_at is not None), None)

    @property
    def ack_latency(self) -> float | None:
        """Seconds from the first send to the first ack."""
        first, acked = (self.attempts[0] if self.attempts else None), self.acked_attempt
        if first is None or acked is None or acked.acked_at is None:
            return None
        return acked.acked_at - first.sent_at

    @property
    def response(self) -> dict[str, Any] | None:
        """What the app answered with its ack: the Socket Mode ack's ``payload``, or the JSON
        body of the HTTP 200 (e.g. a slash command's reply, a modal's ``response_action``)."""
        attempt = self.acked_attempt
        if attempt is None:
            return None
        if attempt.ack_payload is not None:
            return attempt.ack_payload
        try:
            body = json.loads(attempt.response_body or "")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def wait_acked(self, within: float = 5.0) -> Attempt:
        """Wait for an ack; raise TimeoutError if none arrives in time."""
        await asyncio.wait_for(self._acked.wait(), within)
        attempt = self.acked_attempt
        assert attempt is not None
        return attempt

    async def wait_done(self, within: float = 30.0) -> Delivery:
        """Wait until acked or all retries were used up."""
        await asyncio.wait_for(self._done.wait(), within)
        return self


@dataclass(frozen=True)
class Ack:
    """An acknowledgement received over the websocket."""

    t: float
    envelope_id: str
    payload: dict[str, Any] | None
    known: bool


class SocketHub:
    """The ``/socket`` websocket endpoint and envelope bookkeeping."""

    def __init__(self, fs: FakeSlack):
        self.fs = fs
        self.connections: list[web.WebSocketResponse] = []
        self.connect_count = 0
        self.tickets: set[str] = set()
        self.acks: list[Ack] = []
        self._by_envelope: dict[str, tuple[Delivery, Attempt]] = {}
        self._requests: dict[int, web.Request] = {}
        self._numbers: dict[int, int] = {}
        self._changed = asyncio.Condition()
        #: Which open connection gets the next envelope: ``"newest"`` (a freshly refreshed client),
        #: or ``"round_robin"`` (Slack spreads payloads over an app's connections, e.g. several
        #: instances each holding one).
        self.spread: Literal["newest", "round_robin"] = "newest"
        self._turn = 0

    def issue_url(self) -> str:
        ticket = uuid.uuid4().hex
        self.tickets.add(ticket)
        return f"ws://127.0.0.1:{self.fs.port}/socket?ticket={ticket}&app_id={self.fs.identity.app_id}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self.tickets:
            return web.Response(status=401, text="invalid ticket")
        self.tickets.discard(ticket)  # a URL is good for one connection
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections.append(ws)
        self._requests[id(ws)] = request
        self.connect_count += 1
        self._numbers[id(ws)] = self.connect_count
        await ws.send_str(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": len(self.connections),
                    "debug_info": {
                        "host": "applink-fake",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": self.fs.identity.app_id},
                }
            )
        )
        await self._notify()
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self._on_text(msg.data)
        finally:
            if ws in self.connections:
                self.connections.remove(ws)
            self._requests.pop(id(ws), None)
            await self._notify()
        return ws

    def _on_text(self, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            return
        envelope_id = message.get("envelope_id")
        if not isinstance(envelope_id, str):
            return
        entry = self._by_envelope.get(envelope_id)
        payload = message.get("payload")
        self.acks.append(Ack(self.fs.now(), envelope_id, payload, entry is not None))
        if entry is None:
            return
        delivery, attempt = entry
        if attempt.acked_at is None:
            attempt.acked_at = self.fs.now()
            attempt.ack_payload = payload
        delivery._acked.set()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_connections(self, count: int = 1, within: float = 5.0) -> None:
        async def _wait() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.connections) >= count)

        await asyncio.wait_for(_wait(), within)

    async def wait_connect_count(self, count: int, within: float = 5.0) -> None:
        async def _wait() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: self.connect_count >= count and bool(self.connections))

        await asyncio.wait_for(_wait(), within)

    def _open(self) -> list[web.WebSocketResponse]:
        return [ws for ws in self.connections if not ws.closed]

    async def send_disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask every client to reconnect, as Slack does before recycling a connection."""
        message = json.dumps({"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}})
        for ws in self._open():
            await ws.send_str(message)

    async def drop(self, abrupt: bool = False) -> None:
        """Close every websocket: with a close frame, or (abrupt) by cutting the TCP connection."""
        for ws in list(self._open()):
            request = self._requests.get(id(ws))
            if abrupt and request is not None and request.transport is not None:
                request.transport.abort()
            else:
                await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"server going away")

    async def close_all(self) -> None:
        for ws in list(self.connections):
            await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY)

    async def run(self, delivery: Delivery, connect_wait: float) -> None:
        retries = delivery.max_retries if delivery.kind == "events_api" else 0
        try:
            for number in range(retries + 1):
                attempt = Attempt(number=number, sent_at=self.fs.now(), envelope_id=str(uuid.uuid4()))
                delivery.attempts.append(attempt)
                envelope: dict[str, Any] = {
                    "envelope_id": attempt.envelope_id,
                    "payload": delivery.payload,
                    "type": delivery.kind,
                    "accepts_response_payload": delivery.kind == "slash_commands",
                }
                envelope["retry_attempt"] = number
                envelope["retry_reason"] = "" if number == 0 else "timeout"
                assert attempt.envelope_id is not None
                self._by_envelope[attempt.envelope_id] = (delivery, attempt)
                ws = await self._pick(connect_wait)
                if ws is None:
                    attempt.error = "no_connection"
                else:
                    attempt.sent_at = self.fs.now()
                    attempt.connection = self._numbers.get(id(ws))
                    try:
                        await ws.send_str(json.dumps(envelope))
                    except (ConnectionError, RuntimeError):
                        attempt.error = "no_connection"
                try:
                    await asyncio.wait_for(delivery._acked.wait(), delivery.ack_timeout)
                    return
                except TimeoutError:
                    attempt.error = attempt.error or "timeout"
            delivery.gave_up = True
        finally:
            delivery._done.set()

    async def _pick(self, wait: float) -> web.WebSocketResponse | None:
        deadline = time.monotonic() + wait
        while True:
            open_ws = self._open()
            if open_ws and self.spread == "round_robin":
                self._turn += 1
                return open_ws[self._turn % len(open_ws)]
            if open_ws:
                return open_ws[-1]  # the newest connection, like a freshly refreshed client
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.02)


async def run_http(
    fs: FakeSlack,
    delivery: Delivery,
    url: str | Callable[[int], str],
    retry_delays: tuple[float, ...],
) -> None:
    """POST the payload to ``url``, signed, retrying as Slack does for Events API payloads.

    ``url`` may be a function of the attempt number: behind a load balancer, a retry can reach
    another instance than the first attempt did.
    """
    target = url if callable(url) else (lambda _number: url)
    retries = delivery.max_retries if delivery.kind == "events_api" else 0
    reason = ""
    try:
        for number in range(retries + 1):
            if number:
                await asyncio.sleep(
                    retry_delays[min(number - 1, len(retry_delays) - 1)] if retry_delays else 0
                )
            body, ctype = encode_http_body(delivery.kind, delivery.payload)
            headers = fs.signed_headers(body, ctype)
            if number:
                headers["X-Slack-Retry-Num"] = str(number)
                headers["X-Slack-Retry-Reason"] = reason
            where = target(number)
            attempt = Attempt(number=number, sent_at=fs.now(), url=where)
            delivery.attempts.append(attempt)
            timeout = aiohttp.ClientTimeout(total=delivery.ack_timeout)
            try:
                async with fs.http.post(where, data=body, headers=headers, timeout=timeout) as resp:
                    attempt.status = resp.status
                    attempt.response_body = await resp.text()
            except TimeoutError:
                attempt.error = reason = "http_timeout"
                continue
            except aiohttp.ClientError:
                attempt.error = reason = "connection_failed"
                continue
            if attempt.status == 200:
                attempt.acked_at = fs.now()
                delivery._acked.set()
                return
            attempt.error = reason = "http_error"
        delivery.gave_up = True
    finally:
        delivery._done.set()


def encode_http_body(kind: Kind, payload: dict[str, Any]) -> tuple[bytes, str]:
    """Events: a JSON body; slash commands: form fields; interactivity: form field ``payload=<json>``."""
    if kind == "events_api":
        return json.dumps(payload).encode(), "application/json"
    if kind == "slash_commands":
        return urlencode(payload).encode(), "application/x-www-form-urlencoded"
    return urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded"


def now_timestamp() -> str:
    return str(int(time.time()))


__all__ = ["Ack", "Attempt", "Delivery", "SocketHub", "encode_http_body", "now_timestamp", "run_http", "sign"]
