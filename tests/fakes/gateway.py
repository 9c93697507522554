"""A fake APICore gateway on 127.0.0.1, speaking both wire formats, for tests and benchmarks.

Its streams are modelled on real captures (ids, ``created``, ``system_fingerprint``, the full
``message_start`` message object, ``ping`` events, a usage-only last chunk …), not on a minimal
idea of the formats, so the client is tested against what the real service sends.

Two ways to run it::

    async with FakeGateway() as gw:           # in the running event loop
        settings = ...(apicore_base_url=gw.url, apicore_api_key=gw.api_key)

    with FakeGateway.in_thread() as gw:       # its own loop in a thread: sync code, subprocesses
        subprocess.run([...], env={..., "APICORE_BASE_URL": gw.url})

Tool calls: ``Reply(tool_calls=[FakeToolCall("read_url", {"url": …}), …])`` streams them as real
providers do (see :mod:`tests.fakes.gateway_tools`); ``gw.last.tool_results`` reads the results a
client sent back, in either format.

Replies: ``gw.script(Reply(...), ...)`` queues replies for the streaming routes (first in, first
out); when the queue is empty ``gw.default`` answers (a :class:`Reply` or a function of the
:class:`RecordedRequest`). A Reply without ``text`` echoes ``"You said: <last user text>"``.
``gw.script_path(path, reply)`` queues a reply for one route only (also /v1/models, billing).

``gw.client(policy)`` is Parley's real gateway client pointed at the fake; :func:`collect` drains
a provider stream into text, thinking, usage reports and the Finish.

Pictures (``POST /v1/images/generations``): ``gw.image`` (PNG bytes) is answered as ``b64_json``,
or, with ``gw.image_url`` set (a page server serves it), as ``{"url": …}``; ``gw.script_path(
IMAGES_PATH, Reply(status=…, body=…))`` answers an error instead.

Transcriptions (``POST /v1/audio/transcriptions``): the multipart body is parsed for real (the
standard library's MIME parser) into ``gw.transcriptions`` (model, file name, type, bytes); the
answer is ``{"text": gw.transcript}``, or a scripted ``script_path(TRANSCRIBE_PATH, Reply(text=…))``
or ``Reply.http_error(…)``.

Everything is recorded in ``gw.requests``: method, path, headers, raw and parsed body, arrival
time, the timeline of text sent (monotonic time, cumulative text), and when the client
disconnected before the reply ended.
"""

from __future__ import annotations

import asyncio
import base64
import email.parser
import email.policy
import json
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Self

from aiohttp import web
from multidict import CIMultiDict
from pydantic import SecretStr

from bot.providers.base import (
    Finish,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCall,
    ToolCallStarted,
    UsageReport,
)
from bot.providers.gateway import Gateway
from bot.providers.policy import GatewayPolicy
from bot.settings import Settings
from bot.types import Usage

from .gateway_tools import (
    FakeToolCall,
    SentResult,
    anthropic_tool_events,
    declared_tools,
    openai_tool_chunks,
    replayed_calls,
    tool_results,
)
from .loopback import LoopbackServer

STREAM_PATHS = ("/v1/chat/completions", "/v1/messages")
IMAGES_PATH = "/v1/images/generations"
TRANSCRIBE_PATH = "/v1/audio/transcriptions"
DEFAULT_MODELS = ("gemini-2.5-flash", "gemini-2.5-pro", "claude-sonnet-4-5", "gpt-4o-mini")
DEFAULT_GARBAGE = b"\x00\xff\xfe\xfd garbage \x80\x81\n\ndata: {not json\n\n"
NEUTRAL_FINISH = {
    "openai": {"complete": "stop", "length": "length", "filtered": "content_filter"},
    "anthropic": {"complete": "end_turn", "length": "max_tokens", "filtered": "refusal"},
}
Format = Literal["openai", "anthropic"]
# A valid 1x1 PNG: the images route's default picture.
_PIXEL_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGMQEJACAABbADHSL9T0AAAAAElFTkSuQmCC"
)
Shape = Literal["openai", "anthropic", "empty"]


@dataclass
class FakeUsage:
    input_tokens: int
    output_tokens: int  # thinking included, as both formats count it
    thinking_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass
class Reply:
    """One answer. Every field has a realistic default; set only what a test is about.

    Content: ``text`` (None → echo the last user text, or nothing when there are ``tool_calls``),
    ``tool_calls`` (after the text; arguments in ``fragment_chars``-sized pieces, interleaved by
    index in OpenAI format unless ``interleave`` is off), ``thinking`` (None → a short thought
    when an Anthropic request asks for thinking, else none), split into word-sized deltas or
    ``chunk_chars``-sized ones. ``finish``: "complete"/"length"/"filtered" (mapped per format)
    or a literal wire value, None to end without one. ``usage``: None → counted from the
    request and the deltas; ``send_usage=False`` leaves it out.

    Pacing: ``first_delay`` before the first delta, ``delay`` between deltas (1/tokens-per-s),
    ``ping_interval`` sends keep-alives (``: PING`` / ``event: ping``) during any wait.

    Failures, counted in content deltas (text or thinking) sent before they strike:
    ``status`` ≥ 400 answers ``body`` (dict → JSON; see :meth:`http_error`) before any stream;
    ``drop_after`` closes the connection; ``stall_after`` stops sending but keeps it open;
    ``error_after`` sends ``error`` (a bare JSON line in OpenAI format, or a ``data:`` line with
    ``error_as_data``; an ``error`` event in Anthropic format) and ends the body;
    ``garbage_after`` sends ``garbage`` bytes and goes on.

    Wire shape: ``line_ending`` ("\\n", "\\r\\n", "\\r"); ``split_bytes`` writes every frame in
    pieces of that many bytes, ``split_delay`` apart (to split UTF-8 characters on the wire);
    ``events`` replays captured JSON payload lines instead of generating them; ``raw`` sends
    exactly these byte chunks (``delay`` apart) and nothing else.
    """

    text: str | None = None
    thinking: str | None = None
    chunk_chars: int | None = None
    finish: str | None = "complete"
    usage: FakeUsage | None = None
    send_usage: bool = True
    first_delay: float = 0.0
    delay: float = 0.0
    ping_interval: float | None = None
    status: int = 200
    body: dict[str, Any] | bytes | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    drop_after: int | None = None
    stall_after: int | None = None
    error_after: int | None = None
    error: dict[str, Any] | None = None
    error_as_data: bool = False
    garbage_after: int | None = None
    garbage: bytes = DEFAULT_GARBAGE
    line_ending: str = "\n"
    split_bytes: int | None = None
    split_delay: float = 0.0
    events: list[str] | None = None
    raw: list[bytes] | None = None
    tool_calls: list[FakeToolCall] | None = None
    fragment_chars: int = 4
    interleave: bool = True

    @classmethod
    def http_error(
        cls,
        status: int,
        message: str = "",
        *,
        type: str = "",
        code: str = "",
        shape: Shape = "openai",
        retry_after: str | float | None = None,
    ) -> Reply:
        """An error answer before any stream, in either of the gateway's shapes, or empty."""
        body: dict[str, Any] | bytes
        if shape == "empty":
            body = b""
        elif shape == "anthropic":
            body = {"type": "error", "error": {"type": type or "api_error", "message": message}}
        else:
            body = {"error": {"message": message, "type": type or "new_api_error", "code": code}}
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        return cls(status=status, body=body, headers=headers)

    @classmethod
    def replay(cls, source: Path | str | list[str], *, delay: float = 0.0) -> Reply:
        """Replay captured payloads (a JSONL file or its lines) as the route's SSE format."""
        if isinstance(source, list):
            lines = source
        else:
            lines = Path(source).read_text(encoding="utf-8").splitlines()
        return cls(events=[line for line in lines if line.strip()], delay=delay)

    @classmethod
    def chunks(cls, *raw: bytes, delay: float = 0.0) -> Reply:
        return cls(raw=list(raw), delay=delay)

    @classmethod
    def paced(cls, text: str, tokens_per_s: float, *, first_delay: float = 0.0, **kw: Any) -> Reply:
        return cls(text=text, delay=1.0 / tokens_per_s, first_delay=first_delay, **kw)


@dataclass
class RecordedRequest:
    index: int
    method: str
    path: str
    query: str
    headers: CIMultiDict[str]  # case-insensitive, every header as received
    body: bytes
    json: Any
    t_received: float  # time.monotonic()
    peer: tuple[str, int] | None = None  # the client's address: same port = connection reused
    status: int = 0
    timeline: list[tuple[float, str]] = field(default_factory=list)  # (monotonic, text so far)
    thinking_sent: str = ""
    t_done: float | None = None  # the handler finished (normally or not)
    disconnected_at: float | None = None  # the client went away before the reply ended

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    @property
    def tool_results(self) -> list[SentResult]:
        """The tool results this request sent back (OpenAI tool messages, Anthropic blocks)."""
        return tool_results(self.json)

    @property
    def replayed_calls(self) -> list[tuple[str, str, Any]]:
        """The calls this request's history replays: (id, name, arguments or input)."""
        return replayed_calls(self.json)

    @property
    def tools(self) -> list[str]:
        """The names of the tools this request declares."""
        return declared_tools(self.json)

    @property
    def text_sent(self) -> str:
        return self.timeline[-1][1] if self.timeline else ""

    @property
    def model(self) -> str:
        return str(self.json.get("model", "")) if isinstance(self.json, dict) else ""

    @property
    def last_user_text(self) -> str:
        """The text of the last user message that has any (one of only tool results has none)."""
        messages = self.json.get("messages") if isinstance(self.json, dict) else None
        for message in reversed(messages or []):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, str):
                    return content
                parts = [part for part in content or [] if isinstance(part, dict)]
                if all(part.get("type") == "tool_result" for part in parts) and parts:
                    continue
                return "".join(part.get("text", "") for part in parts if part.get("type") == "text")
        return ""


@dataclass
class Transcription:
    """One ``POST /v1/audio/transcriptions`` as the fake parsed it."""

    fields: dict[str, str]  # the plain form fields (model, …)
    filename: str
    content_type: str
    data: bytes  # the file part's bytes

    @property
    def model(self) -> str:
        return self.fields.get("model", "")

    @classmethod
    def parse(cls, content_type: str, body: bytes) -> Transcription:
        if not content_type.lower().startswith("multipart/form-data"):
            raise ValueError(f"expected multipart/form-data, got {content_type!r}")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        fields: dict[str, str] = {}
        file: tuple[str, str, bytes] | None = None
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            filename = part.get_filename()
            if filename is not None and name == "file":
                file = (filename, part.get_content_type(), payload)
            elif isinstance(name, str):
                fields[name] = payload.decode()
        if file is None:
            raise ValueError("no file part")
        return cls(fields, *file)


@dataclass
class Collected:
    """What a provider stream produced, gathered by :func:`collect`."""

    text: str = ""
    thinking: str = ""
    finish: Finish | None = None
    usage_reports: list[Usage] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # event class names, in order
    tool_starts: list[ToolCallStarted] = field(default_factory=list)

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return self.finish.tool_calls if self.finish is not None else ()


async def collect(events: AsyncIterator[StreamEvent]) -> Collected:
    """Drain a provider stream (errors raised before the first token propagate)."""
    out = Collected()
    async for event in events:
        out.kinds.append(type(event).__name__)
        if isinstance(event, TextDelta):
            out.text += event.text
        elif isinstance(event, ThinkingDelta):
            out.thinking += event.text
        elif isinstance(event, UsageReport):
            out.usage_reports.append(event.usage)
        elif isinstance(event, ToolCallStarted):
            out.tool_starts.append(event)
        else:
            assert out.finish is None, "a second Finish"
            out.finish = event
    assert out.finish is not None, "the stream ended without a Finish"
    return out


class _Dropped(Exception):
    """The fake closed the connection on purpose."""


def _sse_json(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def _pieces(text: str, chunk_chars: int | None) -> list[str]:
    if not text:
        return []
    if chunk_chars:
        return [text[i : i + chunk_chars] for i in range(0, len(text), chunk_chars)]
    return re.findall(r"\S+\s*|\s+", text)


@dataclass
class _Frame:
    data: bytes
    kind: Literal["pre", "content", "tail"]
    text: str = ""
    thinking: str = ""


class FakeGateway(LoopbackServer):
    """The fake server. ``api_key`` None accepts any key; ``models`` is what /v1/models lists;
    ``default`` answers stream requests when nothing is scripted; ``hard_limit_usd`` and
    ``total_usage`` feed the billing routes; ``port`` 0 picks a free one (see ``url``)."""

    thread_name = "fake-gateway"

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        models: list[str] | tuple[str, ...] = DEFAULT_MODELS,
        default: Reply | Callable[[RecordedRequest], Reply] | None = None,
        hard_limit_usd: float = 100.0,
        total_usage: float = 1234.0,  # hundredths of the display unit, as the gateway reports
        port: int = 0,
    ) -> None:
        self.api_key = api_key
        self.models = list(models)
        self.default: Reply | Callable[[RecordedRequest], Reply] = default or Reply()
        self.hard_limit_usd = hard_limit_usd
        self.total_usage = total_usage
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Reply] = deque()
        self._path_queues: dict[str, deque[Reply]] = {}
        self._port = port
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None
        self._ids = 0
        self.url = ""
        self.image = _PIXEL_PNG  # what the images route draws
        self.image_url = ""  # set: answer {"url": image_url} instead of b64_json
        self.transcript = "Hello from a voice note."  # what the transcription route hears
        self.transcriptions: list[Transcription] = []

    # Scripting.
    def script(self, *replies: Reply) -> None:
        self._queue.extend(replies)

    def script_path(self, path: str, *replies: Reply) -> None:
        self._path_queues.setdefault(path, deque()).extend(replies)

    def reset(self) -> None:
        self._queue.clear()
        self._path_queues.clear()
        self.requests.clear()

    # Reading what happened.
    @property
    def stream_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path in STREAM_PATHS]

    @property
    def last(self) -> RecordedRequest:
        return self.requests[-1]

    @property
    def disconnects(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.disconnected_at is not None]

    async def wait_until(self, predicate: Callable[[], bool], within: float = 2.0) -> bool:
        end = time.monotonic() + within
        while not predicate():
            if time.monotonic() >= end:
                return False
            await asyncio.sleep(0.005)
        return True

    def wait_until_sync(self, predicate: Callable[[], bool], within: float = 2.0) -> bool:
        end = time.monotonic() + within
        while not predicate():
            if time.monotonic() >= end:
                return False
            time.sleep(0.005)
        return True

    async def wait_for_disconnects(self, count: int = 1, within: float = 2.0) -> bool:
        return await self.wait_until(lambda: len(self.disconnects) >= count, within)

    # Parley's side.
    def client(self, policy: GatewayPolicy | None = None) -> Gateway:
        """Parley's real gateway client pointed at this fake, with its key (``policy``: the
        test's timeouts and retries; None, the settings' own): ``async with gw.client(P) as g``."""
        key = SecretStr(self.api_key or "any-key")  # None: the fake takes any key
        return Gateway(Settings(apicore_base_url=self.url, apicore_api_key=key), policy=policy)

    # Lifecycle.
    async def start(self) -> Self:
        self._closing = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for path in STREAM_PATHS:
            app.router.add_post(path, self._stream_route)
        app.router.add_get("/v1/models", self._models_route)
        app.router.add_get("/v1/dashboard/billing/subscription", self._subscription_route)
        app.router.add_get("/v1/dashboard/billing/usage", self._usage_route)
        app.router.add_post(IMAGES_PATH, self._images_route)
        app.router.add_post(TRANSCRIBE_PATH, self._transcribe_route)
        # handler_cancellation: a client that goes away cancels the handler at once, so
        # disconnects are observed even while a reply is stalled or pacing.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._closing is not None:
            self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # Routes.
    async def _record(self, request: web.Request) -> RecordedRequest:
        body = await request.read()
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        record = RecordedRequest(
            index=len(self.requests),
            method=request.method,
            path=request.path,
            query=request.query_string,
            headers=CIMultiDict(request.headers),
            body=body,
            json=parsed,
            t_received=time.monotonic(),
            peer=_peer(request),
        )
        self.requests.append(record)
        return record

    def _unauthorized(self, request: web.Request, record: RecordedRequest) -> web.Response | None:
        if self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}":
            return None
        record.status = 401
        record.t_done = time.monotonic()
        body = {
            "error": {"message": f"无效的令牌 (request id: fake{record.index:06d})", "type": "new_api_error"}
        }
        return web.json_response(body, status=401)

    def _next(self, path: str, record: RecordedRequest) -> Reply | None:
        queue = self._path_queues.get(path)
        if queue:
            return queue.popleft()
        if path not in STREAM_PATHS:
            return None
        if self._queue:
            return self._queue.popleft()
        return self.default(record) if callable(self.default) else self.default

    @staticmethod
    def _error_response(reply: Reply, record: RecordedRequest) -> web.Response:
        record.status = reply.status
        record.t_done = time.monotonic()
        body = reply.body
        if isinstance(body, dict):
            data = _sse_json(body).encode()
            content_type = "application/json"
        else:
            data = body.encode() if isinstance(body, str) else (body or b"")
            content_type = "application/json" if data[:1] == b"{" else "text/plain"
        return web.Response(status=reply.status, body=data, headers=reply.headers, content_type=content_type)

    async def _json_route(
        self,
        request: web.Request,
        answer: Callable[[Reply | None], dict[str, Any]],
        check: Callable[[RecordedRequest], web.Response | None] = lambda _: None,
    ) -> web.Response:
        """The routes that answer one JSON object: the request recorded, the key checked, then
        ``check``'s refusal (a bad body), a scripted error, or ``answer`` of the scripted reply."""
        record = await self._record(request)
        refused = self._unauthorized(request, record)
        if refused is None:
            refused = check(record)
        if refused is not None:
            return refused
        reply = self._next(request.path, record)
        if reply is not None and reply.status >= 300:
            return self._error_response(reply, record)
        record.status = 200
        record.t_done = time.monotonic()
        return web.json_response(answer(reply))

    async def _account_route(self, request: web.Request, payload: dict[str, Any]) -> web.Response:
        return await self._json_route(request, lambda _: payload)

    async def _models_route(self, request: web.Request) -> web.Response:
        data = [
            {"id": m, "object": "model", "created": 1626777600, "owned_by": "custom"} for m in self.models
        ]
        return await self._account_route(request, {"object": "list", "data": data, "success": True})

    async def _transcribe_route(self, request: web.Request) -> web.Response:
        def heard(record: RecordedRequest) -> web.Response | None:
            try:
                self.transcriptions.append(
                    Transcription.parse(request.headers.get("Content-Type", ""), record.body)
                )
            except ValueError as exc:
                record.status = 400
                record.t_done = time.monotonic()
                return web.json_response(
                    {"error": {"message": str(exc), "type": "invalid_request_error"}}, status=400
                )
            return None

        def said(reply: Reply | None) -> dict[str, Any]:
            return {"text": reply.text if reply is not None and reply.text is not None else self.transcript}

        return await self._json_route(request, said, heard)

    async def _subscription_route(self, request: web.Request) -> web.Response:
        limit = self.hard_limit_usd
        payload = {
            "object": "billing_subscription",
            "has_payment_method": True,
            "soft_limit_usd": limit,
            "hard_limit_usd": limit,
            "system_hard_limit_usd": limit,
            "access_until": 0,
        }
        return await self._account_route(request, payload)

    async def _usage_route(self, request: web.Request) -> web.Response:
        return await self._account_route(request, {"object": "list", "total_usage": self.total_usage})

    async def _images_route(self, request: web.Request) -> web.Response:
        def drawn(_: Reply | None) -> dict[str, Any]:
            encoded = base64.b64encode(self.image).decode()
            item = {"url": self.image_url} if self.image_url else {"b64_json": encoded}
            return {"created": 1767225600, "data": [item]}

        return await self._json_route(request, drawn)

    async def _stream_route(self, request: web.Request) -> web.StreamResponse:
        record = await self._record(request)
        denied = self._unauthorized(request, record)
        if denied is not None:
            return denied
        reply = self._next(request.path, record)
        assert reply is not None
        if reply.status >= 300:
            return self._error_response(reply, record)
        fmt: Format = "anthropic" if request.path == "/v1/messages" else "openai"
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
                **reply.headers,
            }
        )
        record.status = 200
        await response.prepare(request)
        try:
            await _Sender(self, request, response, reply, record, fmt).run()
        except asyncio.CancelledError:
            if not self._closing_now():
                record.disconnected_at = time.monotonic()
            raise
        except ConnectionError:
            record.disconnected_at = time.monotonic()
        except _Dropped:
            pass
        finally:
            record.t_done = time.monotonic()
        return response

    def _closing_now(self) -> bool:
        return self._closing is not None and self._closing.is_set()

    def next_id(self) -> int:
        self._ids += 1
        return self._ids


class _Sender:
    """Writes one streamed reply, with its pacing and scripted failures."""

    def __init__(
        self,
        gateway: FakeGateway,
        request: web.Request,
        response: web.StreamResponse,
        reply: Reply,
        record: RecordedRequest,
        fmt: Format,
    ) -> None:
        self.gateway = gateway
        self.request = request
        self.response = response
        self.reply = reply
        self.record = record
        self.fmt = fmt
        self.text = ""
        self.eol = reply.line_ending.encode()

    async def run(self) -> None:
        reply = self.reply
        if reply.raw is not None:
            for index, chunk in enumerate(reply.raw):
                if index:
                    await self.wait(reply.delay)
                await self.write(chunk)
            return
        frames = self.replay_frames() if reply.events is not None else self.frames()
        sent = 0
        for frame in frames:
            if frame.kind != "pre" and await self.inject(sent):
                return
            if frame.kind == "content":
                await self.wait(reply.first_delay if sent == 0 else reply.delay)
            await self.write(self.frame_bytes(frame.data))
            if frame.kind == "content":
                sent += 1
                if frame.text:
                    self.text += frame.text
                    self.record.timeline.append((time.monotonic(), self.text))
                self.record.thinking_sent += frame.thinking
        await self.inject(sent)

    # Failures.
    async def inject(self, sent: int) -> bool:
        """Apply the failure scripted for this point; True when the reply must end here."""
        reply = self.reply
        if reply.garbage_after == sent:
            reply = self.reply = replace(reply, garbage_after=None)  # once only
            await self.write(reply.garbage)
        if reply.drop_after == sent:
            self.drop()
        if reply.stall_after == sent:
            await self.stall()
        if reply.error_after == sent:
            await self.write(self.frame_bytes(self.error_frame()))
            return True
        return False

    def drop(self) -> None:
        transport = self.request.transport
        if transport is not None:
            transport.close()  # flushes what was written, then FIN: an incomplete chunked body
        raise _Dropped

    async def stall(self) -> None:
        closing = self.gateway._closing
        assert closing is not None
        interval = self.reply.ping_interval
        while not closing.is_set():
            await asyncio.sleep(interval or 0.05)
            if interval:
                await self.write(self.frame_bytes(self.ping()))
        raise _Dropped

    def error_frame(self) -> bytes:
        if self.fmt == "anthropic":
            payload = self.reply.error or {
                "type": "error",
                "error": {"type": "overloaded_error", "message": "Overloaded"},
            }
            return f"event: error\ndata: {_sse_json(payload)}\n\n".encode()
        payload = self.reply.error or {
            "error": {
                "message": "upstream stream failed",
                "type": "upstream_error",
                "code": "bad_response_body",
            }
        }
        if self.reply.error_as_data:
            return f"data: {_sse_json(payload)}\n\n".encode()
        return f"{_sse_json(payload)}\n".encode()

    # Writing and waiting.
    def frame_bytes(self, data: bytes) -> bytes:
        return data if self.eol == b"\n" else data.replace(b"\n", self.eol)

    async def write(self, data: bytes) -> None:
        size = self.reply.split_bytes
        if not size:
            await self.response.write(data)
            return
        for start in range(0, len(data), size):
            if start and self.reply.split_delay:
                await asyncio.sleep(self.reply.split_delay)
            await self.response.write(data[start : start + size])

    async def wait(self, seconds: float) -> None:
        interval = self.reply.ping_interval
        if seconds <= 0:
            return
        if not interval:
            await asyncio.sleep(seconds)
            return
        end = time.monotonic() + seconds
        while (remaining := end - time.monotonic()) > 0:
            if remaining < interval:
                await asyncio.sleep(remaining)
                return
            await asyncio.sleep(interval)
            await self.write(self.frame_bytes(self.ping()))

    def ping(self) -> bytes:
        return b'event: ping\ndata: {"type": "ping"}\n\n' if self.fmt == "anthropic" else b": PING\n\n"

    # Content.
    def replay_frames(self) -> list[_Frame]:
        frames: list[_Frame] = []
        for line in self.reply.events or []:
            payload = json.loads(line)
            text, thinking = _content_of(payload)
            kind: Literal["pre", "content", "tail"] = "content" if text or thinking else "pre"
            if frames and kind == "pre" and any(f.kind == "content" for f in frames):
                kind = "tail"
            if self.fmt == "anthropic":
                data = f"event: {payload.get('type', 'message')}\ndata: {line}\n\n"
            else:
                data = f"data: {line}\n\n"
            frames.append(_Frame(data.encode(), kind, text, thinking))
        if self.fmt == "openai":
            frames.append(_Frame(b"data: [DONE]\n\n", "tail"))
        return frames

    def frames(self) -> list[_Frame]:
        reply, record = self.reply, self.record
        body = record.json if isinstance(record.json, dict) else {}
        text = reply.text if reply.text is not None else f"You said: {record.last_user_text}"
        if reply.text is None and reply.tool_calls:
            text = ""
        thinking = reply.thinking
        if thinking is None:
            wants = self.fmt == "anthropic" and isinstance(body.get("thinking"), dict)
            thinking = "Let me think about that." if wants else ""
        text_pieces = _pieces(text, reply.chunk_chars)
        thinking_pieces = _pieces(thinking, reply.chunk_chars)
        usage = reply.usage or FakeUsage(
            input_tokens=max(1, len(record.body) // 4),
            output_tokens=len(text_pieces) + len(thinking_pieces),
            thinking_tokens=len(thinking_pieces),
        )
        finish = NEUTRAL_FINISH[self.fmt].get(reply.finish or "", reply.finish)
        if reply.tool_calls and reply.finish == "complete":
            finish = "tool_use" if self.fmt == "anthropic" else "tool_calls"
        model = record.model or "unknown"
        build = self.anthropic_frames if self.fmt == "anthropic" else self.openai_frames
        return build(model, text_pieces, thinking_pieces, finish, usage)

    def openai_frames(
        self, model: str, text: list[str], thinking: list[str], finish: str | None, usage: FakeUsage
    ) -> list[_Frame]:
        ident = f"chatcmpl-fake{self.gateway.next_id():08d}"
        created = int(time.time())

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            payload = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": choices,
                **extra,
            }
            return f"data: {_sse_json(payload)}\n\n".encode()

        def choice(delta: dict[str, Any], reason: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}]

        frames = [_Frame(chunk(choice({"role": "assistant", "content": ""})), "pre")]
        frames += [_Frame(chunk(choice({"reasoning_content": t})), "content", thinking=t) for t in thinking]
        frames += [_Frame(chunk(choice({"content": t})), "content", text=t) for t in text]
        if self.reply.tool_calls:
            calls = openai_tool_chunks(
                self.reply.tool_calls, self.reply.fragment_chars, self.reply.interleave
            )
            frames += [_Frame(chunk(choices), "content") for choices in calls]
        if finish is not None:
            frames.append(_Frame(chunk(choice({}, finish)), "tail"))
        if self.reply.send_usage:
            raw_usage = {
                "prompt_tokens": usage.input_tokens,
                "completion_tokens": usage.output_tokens,
                "total_tokens": usage.input_tokens + usage.output_tokens,
                "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
                "completion_tokens_details": {"reasoning_tokens": usage.thinking_tokens},
            }
            frames.append(_Frame(chunk([], usage=raw_usage), "tail"))
        frames.append(_Frame(b"data: [DONE]\n\n", "tail"))
        return frames

    def anthropic_frames(
        self, model: str, text: list[str], thinking: list[str], finish: str | None, usage: FakeUsage
    ) -> list[_Frame]:
        def event(payload: dict[str, Any]) -> bytes:
            return f"event: {payload['type']}\ndata: {_sse_json(payload)}\n\n".encode()

        def delta(index: int, kind: str, key: str, value: str) -> bytes:
            return event({"type": "content_block_delta", "index": index, "delta": {"type": kind, key: value}})

        cache = {
            "cache_creation_input_tokens": usage.cache_write_tokens,
            "cache_read_input_tokens": usage.cache_read_tokens,
        }
        message: dict[str, Any] = {
            "id": f"msg_fake{self.gateway.next_id():020d}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": usage.input_tokens,
                **cache,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": usage.cache_write_tokens,
                    "ephemeral_1h_input_tokens": 0,
                },
                "output_tokens": 1,
                "service_tier": "standard",
            },
        }
        frames = [_Frame(event({"type": "message_start", "message": message}), "pre")]
        index = 0
        if thinking:
            block = {"type": "thinking", "thinking": "", "signature": ""}
            frames.append(
                _Frame(event({"type": "content_block_start", "index": 0, "content_block": block}), "pre")
            )
        frames.append(_Frame(event({"type": "ping"}), "pre"))
        if thinking:
            frames += [
                _Frame(delta(0, "thinking_delta", "thinking", t), "content", thinking=t) for t in thinking
            ]
            frames.append(_Frame(delta(0, "signature_delta", "signature", "ZmFrZS1zaWduYXR1cmU="), "tail"))
            frames.append(_Frame(event({"type": "content_block_stop", "index": 0}), "tail"))
            index = 1
        calls = self.reply.tool_calls or []
        if text or not calls:
            start = {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "text", "text": ""},
            }
            frames.append(_Frame(event(start), "pre" if not thinking else "tail"))
            frames += [_Frame(delta(index, "text_delta", "text", t), "content", text=t) for t in text]
            frames.append(_Frame(event({"type": "content_block_stop", "index": index}), "tail"))
            index += 1
        for payload in anthropic_tool_events(calls, self.reply.fragment_chars, index):
            frames.append(_Frame(event(payload), "content"))
        if finish is None:
            return frames
        final_usage: dict[str, Any] = {
            "input_tokens": usage.input_tokens,
            **cache,
            "output_tokens": usage.output_tokens,
        }
        if usage.thinking_tokens:
            final_usage["output_tokens_details"] = {"thinking_tokens": usage.thinking_tokens}
        message_delta = {
            "type": "message_delta",
            "delta": {"stop_reason": finish, "stop_sequence": None},
            "usage": final_usage if self.reply.send_usage else {"output_tokens": usage.output_tokens},
        }
        frames.append(_Frame(event(message_delta), "tail"))
        frames.append(_Frame(event({"type": "message_stop"}), "tail"))
        return frames


def _peer(request: web.Request) -> tuple[str, int] | None:
    transport = request.transport
    address = transport.get_extra_info("peername") if transport is not None else None
    return (str(address[0]), int(address[1])) if address else None


def _flat(value: Any, thinking: bool) -> tuple[str, str]:
    """(text, thinking) in an OpenAI-format content value: a string or a list of typed parts."""
    if isinstance(value, str):
        return ("", value) if thinking else (value, "")
    text = think = ""
    for part in value if isinstance(value, list) else [value] if isinstance(value, dict) else []:
        if isinstance(part, dict):
            kind = part.get("type")
            inner = part.get(kind) if kind in ("thinking", "reasoning") else part.get("text")
            more = _flat(inner, thinking or kind in ("thinking", "reasoning"))
        else:
            more = _flat(part, thinking)
        text, think = text + more[0], think + more[1]
    return text, think


def _content_of(payload: Any) -> tuple[str, str]:
    """Text and thinking carried by one captured payload of either format."""
    if not isinstance(payload, dict):
        return "", ""
    delta = payload.get("delta")
    if payload.get("type") == "content_block_delta" and isinstance(delta, dict):
        return str(delta.get("text") or ""), str(delta.get("thinking") or "")
    choices = payload.get("choices")
    if choices and isinstance(choices[0], dict) and isinstance(choices[0].get("delta"), dict):
        d = choices[0]["delta"]
        text, thinking = _flat(d.get("content") or "", False)
        reasoning = d.get("reasoning_content") or d.get("reasoning") or ""
        return text, _flat(reasoning, True)[1] + thinking
    return "", ""
