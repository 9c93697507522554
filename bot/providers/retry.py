"""When to try a failed request again, and after how long."""

from __future__ import annotations

import random

from bot.providers.errors import ProviderError
from bot.providers.policy import GatewayPolicy


def backoff(attempt: int, policy: GatewayPolicy, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    ceiling = min(policy.backoff_cap, policy.backoff_base * (2**attempt))
    return (rng or random).uniform(0.0, ceiling)


def retry_delay(
    error: ProviderError,
    attempt: int,
    elapsed: float,
    policy: GatewayPolicy,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds to sleep before retry number ``attempt + 1``, or None to give up.

    ``attempt`` counts the retries already made; ``elapsed`` is the time since the first attempt
    began. A ``Retry-After`` is honoured as a floor (plus a little jitter so clients told the same
    time do not return in lockstep); when it reaches past the deadline we give up at once rather
    than wait less than the gateway asked, and the error keeps ``retry_after`` for the user.
    """
    if not error.retryable or attempt >= policy.max_retries:
        return None
    if error.retry_after is not None:
        delay = error.retry_after + (rng or random).uniform(0.0, min(policy.backoff_base, 1.0))
    else:
        delay = backoff(attempt, policy, rng)
    if elapsed + delay > policy.retry_deadline:
        return None
    return delay
