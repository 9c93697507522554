"""Prometheus metrics, on a registry of Parley's own (so tests can run several runtimes).

Two kinds of figures: what the conversation service reports as replies run (it calls this
class as its ReplyObserver), and live figures read at scrape time through the callables it was
built with: the renderer's action counts per platform, replies in flight, turns waiting. It
knows nothing of what provides them, so it imports no runtime.

Every series carries ``parley_instance`` (``PARLEY_INSTANCE_ID``, or the process's generated id):
with several instances, each serves its own figures, and a sum over them is the service's.
``parley_instance_info`` (value 1) adds the process id and host of each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from bot.reporting import ReplyReport

# Seconds. A model answers in under a second or, thinking first, in tens of seconds; Prometheus'
# default buckets end at 10 s and would lump every slow reply together.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0, 120.0)


class ActionCounts(Protocol):
    """One platform's renderer figures (bot.render's ActionCounts has them)."""

    @property
    def posts(self) -> int: ...
    @property
    def edits(self) -> int: ...
    @property
    def rate_limited(self) -> int: ...
    @property
    def failures(self) -> int: ...


def _zero() -> int:
    return 0


def _no_platforms() -> Mapping[str, ActionCounts]:
    return {}


class Metrics:
    """``in_flight``, ``waiting`` and ``by_platform`` are read at every scrape (see :class:`_Live`)."""

    def __init__(
        self,
        *,
        in_flight: Callable[[], int] = _zero,
        waiting: Callable[[], int] = _zero,
        by_platform: Callable[[], Mapping[str, ActionCounts]] = _no_platforms,
        instance: str = "",
        process: str = "",
        host: str = "",
    ) -> None:
        self.registry = CollectorRegistry()
        self.instance = instance
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
            ["platform", "model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.first_visible_seconds = Histogram(
            "parley_first_visible_seconds",
            "Time from the message to the first answer text the platform shows",
            ["platform", "model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "parley_tokens", "Tokens used (direction: in, out, thinking)", ["direction", "model"], registry=r
        )
        self.feedback = Counter(
            "parley_feedback",
            "Votes cast on answers (a changed vote counts once on its new value)",
            ["platform", "model", "value"],
            registry=r,
        )
        self.messages = Counter(
            "parley_messages",
            "Messages received, by what became of each: answered, merged, refused, stopped a "
            "reply, or ignored by a named rule (duplicate, not addressed, denied…)",
            ["platform", "outcome"],
            registry=r,
        )
        r.register(_Live(in_flight, waiting, by_platform))
        info = Gauge(
            "parley_instance_info", "This instance: its process id and host", ["process", "host"], registry=r
        )
        info.labels(process or instance, host).set(1)
        self._labelled = _Labelled(r, {"parley_instance": instance}) if instance else r

    # bot.feedback's FeedbackObserver.
    def vote_cast(self, platform: str, model: str, value: str) -> None:
        self.feedback.labels(platform, model or "unknown", value).inc()

    # bot.intake's IntakeObserver: what became of each message received.
    def message_seen(self, platform: str, outcome: str) -> None:
        self.messages.labels(platform or "unknown", outcome).inc()

    # The conversation service's ReplyObserver.
    def reply_started(self, platform: str, model: str) -> None:
        self.replies_started.labels(platform, model).inc()

    def reply_finished(self, reply: ReplyReport) -> None:
        platform, model, usage = reply.key.platform, reply.model, reply.usage
        self.replies_finished.labels(platform, model, str(reply.outcome)).inc()
        if reply.first_token is not None:
            self.first_token_seconds.labels(platform, model).observe(reply.first_token)
        if reply.first_visible is not None:
            self.first_visible_seconds.labels(platform, model).observe(reply.first_visible)
        self.tokens.labels("in", model).inc(usage.input_tokens)
        self.tokens.labels("out", model).inc(usage.output_tokens)
        self.tokens.labels("thinking", model).inc(usage.thinking_tokens)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self._labelled), CONTENT_TYPE_LATEST


class _Live(Collector):
    """Figures that already exist elsewhere (the renderer's stats, the service's queues): read
    at scrape time rather than copied on every change."""

    def __init__(
        self,
        in_flight: Callable[[], int],
        waiting: Callable[[], int],
        by_platform: Callable[[], Mapping[str, ActionCounts]],
    ) -> None:
        self._in_flight = in_flight
        self._waiting = waiting
        self._by_platform = by_platform

    def describe(self) -> list[Metric]:
        # Without describe() the registry would call collect() at registration, before a runtime.
        return []

    def collect(self) -> Iterator[Metric]:
        posts = CounterMetricFamily(
            "parley_platform_posts", "Messages posted by the renderer", labels=["platform"]
        )
        edits = CounterMetricFamily(
            "parley_platform_edits", "Edits sent by the renderer", labels=["platform"]
        )
        limited = CounterMetricFamily(
            "parley_platform_rate_limited",
            "429s the platform answered to the renderer's posts and edits",
            labels=["platform"],
        )
        failed = CounterMetricFamily(
            "parley_platform_failures",
            "Posts and edits the platform refused for another reason",
            labels=["platform"],
        )
        in_flight = GaugeMetricFamily("parley_replies_in_flight", "Replies streaming now")
        waiting = GaugeMetricFamily(
            "parley_turns_waiting", "Turns waiting behind another in their conversation"
        )
        for platform, counts in sorted(self._by_platform().items()):
            label = [platform or "unknown"]
            posts.add_metric(label, counts.posts)
            edits.add_metric(label, counts.edits)
            limited.add_metric(label, counts.rate_limited)
            failed.add_metric(label, counts.failures)
        in_flight.add_metric([], self._in_flight())
        waiting.add_metric([], self._waiting())
        yield from (posts, edits, limited, failed, in_flight, waiting)


class _Labelled(Collector):
    """Every series of ``registry`` with ``labels`` added (the instance), at scrape time."""

    def __init__(self, registry: CollectorRegistry, labels: Mapping[str, str]) -> None:
        self._registry = registry
        self._labels = dict(labels)

    def collect(self) -> Iterator[Metric]:
        for metric in self._registry.collect():
            labelled = Metric(metric.name, metric.documentation, metric.type, metric.unit)
            for s in metric.samples:
                labelled.add_sample(s.name, {**self._labels, **s.labels}, s.value, s.timestamp, s.exemplar)
            yield labelled
