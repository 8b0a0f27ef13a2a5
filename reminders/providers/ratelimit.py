"""Provider rate limits: never more messages per second to a provider than its rate.

:class:`RateLimiter` holds within one process (threads take evenly spaced slots).
:class:`DatabaseRateLimiter` is shared by every worker process through the database
(PostgreSQL): each send takes the provider's next free slot with one UPDATE (the row lock orders the
workers) and sleeps until that slot, so N workers together still send at most ``rate``
messages per second. The database's own clock is used, so workers on hosts whose clocks
differ slightly still agree.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import Engine, text


class RateLimiter:
    """At most ``rate`` acquisitions per second across threads (0 = unlimited)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._next = 0.0

    def acquire(self) -> None:
        if self.rate <= 0:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + 1.0 / self.rate
        delay = slot - time.monotonic()
        if delay > 0:
            time.sleep(delay)


_TAKE_SLOT = text(
    """
    UPDATE provider_slots
    SET next_slot = GREATEST(next_slot, clock_timestamp()) + make_interval(secs => :interval)
    WHERE provider = :provider
    RETURNING EXTRACT(EPOCH FROM (next_slot - make_interval(secs => :interval) - clock_timestamp()))
    """
)
_ENSURE_ROW = text(
    "INSERT INTO provider_slots (provider, next_slot) VALUES (:provider, clock_timestamp()) "
    "ON CONFLICT (provider) DO NOTHING"
)


class DatabaseRateLimiter(RateLimiter):
    """PostgreSQL only (SQLite deployments run one worker process; the in-process limiter holds)."""

    def __init__(self, engine: Engine, provider: str, rate: float) -> None:
        super().__init__(rate)
        self.engine = engine
        self.provider = provider
        if rate > 0:
            with engine.begin() as conn:
                conn.execute(_ENSURE_ROW, {"provider": provider})

    def acquire(self) -> None:
        if self.rate <= 0:
            return
        with self.engine.begin() as conn:
            wait = float(
                conn.execute(
                    _TAKE_SLOT, {"provider": self.provider, "interval": 1.0 / self.rate}
                ).scalar_one()
            )
        if wait > 0:
            time.sleep(min(wait, timedelta(minutes=5).total_seconds()))
