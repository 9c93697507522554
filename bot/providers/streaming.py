"""The request loop both wire formats share: send, time the answer, parse SSE, retry.

A format supplies the request body, its headers and a :class:`WireDecoder` that turns SSE items
into stream events; this module owns everything else, so the two formats fail, time out and retry
the same way.

Failure rules (see :mod:`bot.providers.base`):

- Before the first text, thinking or tool-call event, a failure raises a
  :class:`~bot.providers.errors.ProviderError`, after as many retries as the policy allows for the
  retryable ones. Nothing has been yielded yet, so a retry can never repeat text.
- After it, nothing is retried and nothing is raised: the stream ends with a :class:`Finish`.
  A dropped connection or a stall (idle timeout) gives ``TRUNCATED`` with ``error`` set, since
  the text so far is sound but incomplete; an error the upstream reported in the stream gives
  ``ERROR``, since the service itself says the answer failed. A body that simply ends without the
  format's stop marker gives ``TRUNCATED`` with no error. (An OpenAI-format ``finish_reason``
  already received keeps its outcome if the connection breaks before ``[DONE]``: the text is whole.)
- Keep-alives (``: PING`` comments, Anthropic ``ping`` events) reset no timer; see
  :class:`~bot.providers.policy.GatewayPolicy`.
- Cancelling the consuming task, or ``aclose()`` on the stream, closes the upstream response.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import AsyncExitStack
from typing import Any, Protocol

import httpx
import orjson

from bot.providers.base import (
    ChatRequest,
    Finish,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallStarted,
    UsageReport,
)
from bot.providers.body import RequestBody, encode_body
from bot.providers.classify import error_from_response
from bot.providers.errors import (
    BadRequest,
    ConnectError,
    GatewayTimeout,
    MissingApiKey,
    ProviderError,
    StreamBroken,
)
from bot.providers.policy import GatewayPolicy
from bot.providers.retry import retry_delay
from bot.providers.sse import BareLine, Comment, SSEDecoder, SSEEvent
from bot.types import Outcome, Usage

log = logging.getLogger("bot.providers")

_ERROR_BODY_LIMIT = 64 * 1024
# Events that start an answer: after one, a failure ends the stream instead of being retried.
_CONTENT = (TextDelta, ThinkingDelta, ToolCallStarted)


class WireDecoder(Protocol):
    """Per-response state of one wire format."""

    usage: Usage
    stop_reason: str | None

    @property
    def done(self) -> bool:
        """The format's end-of-stream marker ([DONE], message_stop) has arrived."""
        ...

    @property
    def complete(self) -> bool:
        """Enough arrived to call the answer finished, even if nothing more does."""
        ...

    def feed(self, item: SSEEvent | BareLine) -> Sequence[StreamEvent]:
        """Events for one SSE item; raises ProviderError for an error the stream reports."""
        ...

    def finish(self, error: ProviderError | None) -> Finish:
        """The closing event once the body ended (``error`` is why, if it broke)."""
        ...


def loads(text: str) -> Any:
    """JSON or None: one garbled event must not end an otherwise good stream.

    orjson parses an event's JSON in about a third of the time (it runs once per token); what it
    refuses that the standard parser takes (NaN, a lone surrogate escape) goes to the latter, so
    no event the gateway could send reads differently.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(text)
    except ValueError:
        log.warning("gateway stream: skipped an event that is not JSON (%d chars)", len(text))
        return None


def transport_error(exc: httpx.TransportError) -> ProviderError:
    detail = f"{type(exc).__name__}: {exc}".rstrip(": ")
    if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError):
        return ConnectError(detail)
    if isinstance(exc, httpx.TimeoutException):
        return GatewayTimeout(detail)
    # Closed before any answer (often a stale pooled connection): as good as not connecting.
    return ConnectError(detail)


async def _read_error_body(response: httpx.Response) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= _ERROR_BODY_LIMIT:
            break
    return bytes(body)


class _ReadDeadline:
    """A deadline on reads from one response, cheaper than ``asyncio.timeout`` around each chunk.

    Moving the deadline is a float assignment; the timer re-arms itself only when it fires early,
    so a steady stream costs one timer per idle period instead of one per chunk (the per-chunk
    context manager was most of this module's per-token cost). It cancels the task only while
    the task awaits a read, never while the generator is parked at a ``yield``, so the
    consumer's own code never sees this cancellation.
    """

    __slots__ = ("_expired", "_handle", "_loop", "_reading", "_task", "deadline")

    def __init__(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        self._loop = loop
        self.deadline = deadline
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None
        self._reading = False
        self._expired = False

    async def read(self, chunks: AsyncIterator[bytes]) -> bytes | None:
        """The next chunk, None at the end of the body; TimeoutError past the deadline."""
        if self._loop.time() >= self.deadline:
            raise TimeoutError
        if self._handle is not None and self._handle.when() > self.deadline:
            # The deadline moved earlier (first-token timeout → the shorter idle timeout): a timer
            # left at the later time would let a stalled stream hang on until then.
            self._handle.cancel()
            self._handle = None
        if self._handle is None:
            self._handle = self._loop.call_at(self.deadline, self._fire)
        task = self._task = asyncio.current_task(self._loop)
        assert task is not None
        cancelling = task.cancelling()
        self._reading = True
        try:
            return await anext(chunks, None)
        except asyncio.CancelledError:
            # Ours only if no one else cancelled too (the same test asyncio.timeout makes).
            if self._expired and task.uncancel() <= cancelling:
                raise TimeoutError from None
            raise
        finally:
            self._reading = False
            self._expired = False

    def _fire(self) -> None:
        self._handle = None
        if self._loop.time() < self.deadline:
            self._handle = self._loop.call_at(self.deadline, self._fire)
        elif self._reading and self._task is not None:
            self._expired = True
            self._task.cancel()
        # Otherwise the generator is parked at a yield: read() checks the deadline on entry.

    def now(self) -> float:
        return self._loop.time()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def _is_keepalive(item: SSEEvent | Comment | BareLine) -> bool:
    return isinstance(item, Comment) or (isinstance(item, SSEEvent) and item.event == "ping")


def _body_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    # An uncompressed body (what the request asks for) is read raw: aiter_bytes adds a decoder,
    # a re-chunker and one more generator per network chunk, all no-ops here.
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    return response.aiter_raw() if encoding in ("", "identity") else response.aiter_bytes()


class _Run:
    """One attempt: send the request, then read the body's chunks through SSE into the wire
    format's decoder, with the timing and failure rules of the module notes.

    ``committed`` turns true with the first text, thinking or tool-call event: from then on
    nothing is raised (so nothing is retried) and a failure ends the stream with a Finish.
    :meth:`events` is the only generator between the socket and the caller's loop (one layer per
    event less than a wrapper around it: this runs once per token).
    """

    __slots__ = (
        "_chunks",
        "_ended",
        "_progressed",
        "_provider",
        "_reads",
        "_received",
        "_sse",
        "committed",
        "decoder",
    )

    def __init__(self, provider: StreamingProvider) -> None:
        self._provider = provider
        self.decoder = provider.new_decoder()
        self._sse = SSEDecoder()
        self._reads: _ReadDeadline
        self._chunks: AsyncIterator[bytes]
        self._received = 0
        self._progressed = False
        self._ended = False
        self.committed = False

    @property
    def _started(self) -> bool:
        """Past the point of retrying: content went out, or the answer is already whole."""
        return self.committed or self.decoder.complete

    async def events(
        self, content: RequestBody, headers: dict[str, str]
    ) -> AsyncGenerator[StreamEvent, None]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._provider.policy.first_token_timeout
        async with AsyncExitStack() as stack:
            response = await self._provider._open(stack, content, headers, deadline)
            self._reads = _ReadDeadline(loop, deadline)
            stack.callback(self._reads.close)
            self._chunks = _body_chunks(response)
            while True:
                chunk = await self._read()
                if isinstance(chunk, Finish):
                    yield chunk
                    return
                for event in self._decode(chunk):
                    yield event
                if self._ended:
                    return  # the stream reported an error after the answer began
                if chunk is None:
                    break
                self._extend_deadline()
            if not self._started:
                raise StreamBroken("the stream ended before the first token")
            yield self.decoder.finish(None)

    async def _read(self) -> bytes | Finish | None:
        """The next chunk; None at the end of the body; a Finish when a failure ends a started
        stream. Raises ProviderError for a failure before it started."""
        policy = self._provider.policy
        try:
            chunk = await self._reads.read(self._chunks)
            self._received += len(chunk or b"")
            if self._received > policy.max_stream_bytes:
                raise StreamBroken(f"the response passed {policy.max_stream_bytes} bytes")
        except TimeoutError:
            if self.decoder.done:
                return None  # the answer is whole; the server just did not end the body
            if not self._started:
                raise GatewayTimeout(f"no token within {policy.first_token_timeout:g}s") from None
            return self.decoder.finish(GatewayTimeout(f"no data for {policy.idle_timeout:g}s mid-answer"))
        except httpx.TransportError as exc:
            return self._broken(StreamBroken(f"{type(exc).__name__}: {exc}"))
        except StreamBroken as exc:
            return self._broken(exc)
        return chunk

    def _broken(self, error: StreamBroken) -> Finish:
        if not self._started:
            raise error
        return self.decoder.finish(error)

    def _decode(self, chunk: bytes | None) -> list[StreamEvent]:
        """The events one chunk completes (a list: no generator per chunk); a Finish last when
        the stream reported an error after the answer began (``_ended``)."""
        decoder = self.decoder
        items = self._sse.feed(chunk) if chunk is not None else self._sse.close()
        self._progressed = False
        out: list[StreamEvent] = []
        for item in items:
            if type(item) is not SSEEvent or item.event == "ping":  # most items are data events
                if _is_keepalive(item):
                    continue
                assert not isinstance(item, Comment)
            self._progressed = True
            try:
                events = decoder.feed(item)
            except ProviderError as exc:
                if not self.committed:
                    raise
                self._ended = True
                out.append(Finish(Outcome.ERROR, decoder.stop_reason, decoder.usage, exc))
                return out
            if self.committed:
                out += events
            else:
                self._hold_usage(events, out)
        return out

    def _hold_usage(self, events: Sequence[StreamEvent], out: list[StreamEvent]) -> None:
        for event in events:
            if not self.committed:
                if isinstance(event, UsageReport):
                    continue  # held until the answer starts; Finish carries it anyway
                self.committed = isinstance(event, _CONTENT)
            out.append(event)

    def _extend_deadline(self) -> None:
        # Called after the yields, so time the consumer spends on an event is not counted as
        # upstream silence.
        reads, policy = self._reads, self._provider.policy
        if self.decoder.done:
            reads.deadline = reads.now() + policy.drain_grace
        elif self.committed and self._progressed:
            reads.deadline = reads.now() + policy.idle_timeout


class StreamingProvider:
    """Base of the wire-format providers; subclasses define the body, headers and decoder."""

    wire_format: str
    path: str

    def __init__(
        self,
        client: httpx.AsyncClient,
        api_key: str | None,
        policy: GatewayPolicy | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._api_key = api_key or None
        self.policy = policy or GatewayPolicy()
        self._timeout = self.policy.stream_timeout()
        self._rng = rng

    # What a wire format supplies.
    def build_body(self, request: ChatRequest) -> dict[str, Any]:
        raise NotImplementedError

    def build_lazy_body(self, request: ChatRequest) -> dict[str, Any]:
        """``build_body`` with files left as :class:`~bot.providers.body.Base64Data`."""
        return self.build_body(request)

    def new_decoder(self) -> WireDecoder:
        raise NotImplementedError

    def headers(self, api_key: str) -> dict[str, str]:
        return {
            "authorization": f"Bearer {api_key}",
            "content-type": "application/json",
            "accept": "text/event-stream",
            # A compressed event stream would be buffered by the compressor: ask for none.
            "accept-encoding": "identity",
        }

    async def aclose(self) -> None:
        """The HTTP client belongs to whoever made it (the Gateway), so nothing to close here."""

    async def stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        if self._api_key is None:
            raise MissingApiKey("APICORE_API_KEY is not set")
        # Files are base64-encoded chunk by chunk while each attempt sends: see bot.providers.body.
        content = encode_body(self.build_lazy_body(request))
        headers = {**self.headers(self._api_key), "content-length": str(content.content_length)}
        loop = asyncio.get_running_loop()
        started = loop.time()
        attempt = 0
        while True:
            attempt_stream = self._attempt(content, headers)
            try:
                async for event in attempt_stream:
                    yield event
                return
            except ProviderError as exc:
                # _attempt raises only before the first token, so retrying cannot repeat text.
                delay = retry_delay(exc, attempt, loop.time() - started, self.policy, self._rng)
                if delay is None:
                    raise
                attempt += 1
                log.warning(
                    "gateway %s %s failed (%s); retry %d of %d in %.2fs",
                    self.path,
                    request.model,
                    exc,
                    attempt,
                    self.policy.max_retries,
                    delay,
                )
            finally:
                await attempt_stream.aclose()
            await asyncio.sleep(delay)

    def _attempt(self, content: RequestBody, headers: dict[str, str]) -> AsyncGenerator[StreamEvent, None]:
        return _Run(self).events(content, headers)

    async def _open(
        self, stack: AsyncExitStack, content: RequestBody, headers: dict[str, str], deadline: float
    ) -> httpx.Response:
        """Send the request; the response once its status says a stream follows."""
        try:
            async with asyncio.timeout_at(deadline):
                response = await stack.enter_async_context(
                    self._client.stream(
                        "POST", self.path, content=content.content, headers=headers, timeout=self._timeout
                    )
                )
                if response.status_code >= 300:
                    raise await self._status_error(response)
        except TimeoutError:
            raise GatewayTimeout(f"no answer within {self.policy.first_token_timeout:g}s") from None
        except httpx.TransportError as exc:
            raise transport_error(exc) from None
        return response

    async def _status_error(self, response: httpx.Response) -> ProviderError:
        if response.status_code < 400:
            where = response.headers.get("location", "elsewhere")
            return BadRequest(
                f"HTTP {response.status_code}: the gateway redirects to {where}; "
                "set APICORE_BASE_URL to the final address",
                status=response.status_code,
            )
        body = await _read_error_body(response)
        return error_from_response(response.status_code, body, response.headers, secret=self._api_key)
