"""Prometheus metrics, on a registry of Parley's own (so tests can run several runtimes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bot.providers.base import Usage
from bot.types import Outcome

if TYPE_CHECKING:
    from bot.runtime import Runtime


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.replies_started = Counter(
            "parley_replies_started", "Replies started", ["platform", "model"], registry=r
        )
        self.replies_finished = Counter(
            "parley_replies_finished", "Replies finished", ["platform", "model", "outcome"], registry=r
        )
        self.first_token_seconds = Histogram(
            "parley_first_token_seconds",
            "Time from the message to the model's first token",
            ["platform"],
            registry=r,
        )
        self.first_visible_seconds = Histogram(
            "parley_first_visible_seconds",
            "Time from the message to the first visible text",
            ["platform"],
            registry=r,
        )
        self.tokens = Counter("parley_tokens", "Tokens used", ["direction", "model"], registry=r)
        self.in_flight = Gauge("parley_replies_in_flight", "Replies streaming now", registry=r)
        self.waiting = Gauge(
            "parley_turns_waiting", "Turns waiting behind another in their conversation", registry=r
        )
        self.posts = Gauge("parley_platform_posts", "Messages posted by the renderer", registry=r)
        self.edits = Gauge("parley_platform_edits", "Edits sent by the renderer", registry=r)
        self.rate_limited = Gauge("parley_platform_rate_limited", "429s received from platforms", registry=r)

    # The conversation service's ReplyObserver.
    def reply_started(self, platform: str, model: str) -> None:
        self.replies_started.labels(platform, model).inc()

    def reply_finished(
        self,
        platform: str,
        model: str,
        outcome: Outcome,
        usage: Usage,
        *,
        first_token: float | None,
        first_visible: float | None,
    ) -> None:
        self.replies_finished.labels(platform, model, str(outcome)).inc()
        if first_token is not None:
            self.first_token_seconds.labels(platform).observe(first_token)
        if first_visible is not None:
            self.first_visible_seconds.labels(platform).observe(first_visible)
        self.tokens.labels("in", model).inc(usage.input_tokens)
        self.tokens.labels("out", model).inc(usage.output_tokens)
        self.tokens.labels("thinking", model).inc(usage.thinking_tokens)

    def refresh(self, runtime: Runtime) -> None:
        self.in_flight.set(runtime.service.in_flight)
        self.waiting.set(runtime.service.waiting)
        stats = runtime.pacer.stats
        self.posts.set(getattr(stats, "posts", 0))
        self.edits.set(getattr(stats, "edits", 0))
        self.rate_limited.set(getattr(stats, "rate_limited", 0))

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
