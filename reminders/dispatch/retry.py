"""After a provider error: try again later, or give up, and why (pure).

Only errors that say retrying can help are retried: with exponential back-off and
jitter, at least as long as the provider's ``Retry-After``, never past the moment the
message stops being useful (``not_after``), and at most ``max_attempts`` times.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from reminders.providers.base import ProviderError


@dataclass(frozen=True)
class RetryDecision:
    retry_at: datetime | None  # try again then; None: the message has failed
    reason: str | None = None  # why it failed


def decide(
    exc: ProviderError,
    *,
    attempts: int,
    now: datetime,
    not_after: datetime | None,
    max_attempts: int,
    base_seconds: float,
    max_seconds: float,
    rng: random.Random,
) -> RetryDecision:
    code = exc.code or "none"
    if exc.permanent:
        return RetryDecision(None, f"provider_error {code}: {exc}"[:500])
    if attempts >= max_attempts:
        return RetryDecision(None, f"gave_up: transient error {code} after {attempts} attempts")
    backoff = min(base_seconds * 2 ** (attempts - 1), max_seconds)
    backoff *= 0.5 + rng.random()  # jitter
    if exc.retry_after is not None:
        backoff = max(backoff, exc.retry_after)
    retry_at = now + timedelta(seconds=backoff)
    if not_after is not None and retry_at >= not_after:
        return RetryDecision(None, f"gave_up: transient error {code}; a retry would be too late")
    return RetryDecision(retry_at)
