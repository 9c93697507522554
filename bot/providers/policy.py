"""How long to wait for the gateway and how hard to retry it: one frozen value, built from Settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from bot.settings import Settings


@dataclass(frozen=True, slots=True)
class GatewayPolicy:
    """Timeouts in seconds.

    ``first_token_timeout`` runs from sending the request to the first text or thinking token and
    is not reset by keep-alives (``: PING`` comments, Anthropic ``ping`` events): a gateway pings
    while the upstream model may be stuck. ``idle_timeout`` is the longest silence allowed between
    meaningful events after that; keep-alives do not reset it either, for the same reason, so a
    stalled model ends the reply instead of hanging it while pings flow.
    ``retry_deadline`` bounds the whole request: no retry is started (and no backoff sleep
    scheduled) that would begin later than this many seconds after the first attempt began.
    """

    connect_timeout: float = 10.0
    first_token_timeout: float = 120.0
    idle_timeout: float = 60.0
    max_retries: int = 3
    retry_deadline: float = 30.0
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    # After [DONE]/message_stop, how long to wait for the body's end so the connection can go back
    # to the pool; a server that keeps it open past this costs a reconnect, not an error.
    drain_grace: float = 1.0
    # The most one streamed response may send (bytes on the wire, keep-alives included). An
    # answer of max_tokens is a few MB at most; past this the body is broken, not an answer.
    max_stream_bytes: int = 32 * 1024 * 1024
    # The most a non-streaming answer (models list, billing) may send.
    max_json_bytes: int = 4 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> GatewayPolicy:
        return cls(
            connect_timeout=settings.parley_connect_timeout,
            first_token_timeout=settings.parley_first_token_timeout,
            idle_timeout=settings.parley_idle_timeout,
            max_retries=settings.parley_max_retries,
            retry_deadline=settings.parley_retry_deadline,
        )

    def httpx_timeout(self) -> httpx.Timeout:
        # Reads are timed by the providers themselves (first token vs idle), so httpx's read
        # timeout only guards the short non-streaming calls (models, billing).
        return httpx.Timeout(
            connect=self.connect_timeout,
            read=max(self.first_token_timeout, self.idle_timeout),
            write=max(self.connect_timeout, 30.0),
            pool=self.connect_timeout,
        )

    def stream_timeout(self) -> httpx.Timeout:
        """A streamed answer's: no read timeout in the transport. Every read of the stream (error
        body, tokens, the drain after the end) runs under the provider's own deadline, so a
        timer the transport re-arms at each arriving chunk (aiohttp cancels and schedules one per
        read) would only cost CPU on every token."""
        whole = self.httpx_timeout()
        return httpx.Timeout(connect=whole.connect, read=None, write=whole.write, pool=whole.pool)
