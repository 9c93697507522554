"""Rate limits of the fake: fixed-window buckets announced with Discord's ``X-RateLimit-*`` headers."""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RateLimitRule:
    """``limit`` requests per ``per`` seconds for one bucket key (e.g. one channel).

    ``announce=True`` sends the bucket's ``X-RateLimit-*`` headers on every response (what Discord
    does for route buckets; discord.py then paces itself and never hits the 429). ``announce=False``
    sends none, which models an undocumented sub-limit: the client cannot see it coming and gets 429s.
    """

    limit: int
    per: float
    announce: bool = True


def _five_per_five() -> RateLimitRule:
    return RateLimitRule(5, 5.0)


@dataclass
class Limits:
    """Everything the fake enforces. Defaults follow Discord (see PLATFORM_NOTES.md).

    - ``message_create`` / ``message_edit``: per channel, 5 per 5 s each (Discord's observed values).
    - ``webhook_message``: interaction follow-ups and edits of interaction responses, per token
      (unverified: Discord does not document it; same 5 per 5 s).
    - ``other_routes``: every other authenticated route, per route and major parameter.
    - ``global_per_second``: all bot-authenticated requests except interaction/webhook routes.
    """

    message_create: RateLimitRule | None = field(default_factory=_five_per_five)
    message_edit: RateLimitRule | None = field(default_factory=_five_per_five)
    webhook_message: RateLimitRule | None = field(default_factory=_five_per_five)
    other_routes: RateLimitRule | None = field(default_factory=lambda: RateLimitRule(50, 1.0))
    global_per_second: int | None = 50
    content_chars: int = 2000
    embed_description_chars: int = 4096
    embeds_total_chars: int = 6000
    upload_bytes: int = 10 * 1024 * 1024
    interaction_ack_seconds: float = 3.0
    interaction_token_seconds: float = 15 * 60.0

    def rule(self, name: str) -> RateLimitRule | None:
        return {
            "message_create": self.message_create,
            "message_edit": self.message_edit,
            "webhook_message": self.webhook_message,
        }.get(name, self.other_routes)


@dataclass
class Verdict:
    allowed: bool
    retry_after: float
    headers: dict[str, str]


class Bucket:
    """A fixed window that opens at the first request after the previous one closed."""

    def __init__(self, rule: RateLimitRule, bucket_hash: str) -> None:
        self.rule = rule
        self.hash = bucket_hash
        self.window_end = 0.0
        self.count = 0

    def hit(self, now: float) -> Verdict:
        if now >= self.window_end:
            self.window_end = now + self.rule.per
            self.count = 0
        reset_after = max(self.window_end - now, 0.001)
        allowed = self.count < self.rule.limit
        if allowed:
            self.count += 1
        headers: dict[str, str] = {}
        if self.rule.announce:
            headers = {
                "X-RateLimit-Limit": str(self.rule.limit),
                "X-RateLimit-Remaining": str(self.rule.limit - self.count),
                "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
                "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                "X-RateLimit-Bucket": self.hash,
            }
        return Verdict(allowed, reset_after, headers)


def bucket_hash(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()[:32]


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


class RateLimiter:
    """All buckets of one fake, keyed by (bucket name, major parameter)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._global_window_end = 0.0
        self._global_count = 0

    def check_global(self, now: float) -> float | None:
        """None when allowed, else the seconds to wait."""
        limit = self.limits.global_per_second
        if limit is None:
            return None
        if now >= self._global_window_end:
            self._global_window_end = now + 1.0
            self._global_count = 0
        if self._global_count >= limit:
            return max(self._global_window_end - now, 0.001)
        self._global_count += 1
        return None

    def check(self, name: str, route_key: str, major: str, now: float) -> Verdict | None:
        rule = self.limits.rule(name)
        if rule is None:
            return None
        ident = name if name != "other_routes" else route_key
        key = (ident, major)
        bucket = self._buckets.get(key)
        if bucket is None or bucket.rule != rule:
            bucket = self._buckets[key] = Bucket(rule, bucket_hash(ident))
        return bucket.hit(now)
