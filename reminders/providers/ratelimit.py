"""Provider rate limits: never more requests per second to a provider than its rate, counted
at the moment each request goes out.

Each send takes the provider's next free **slot**: slots are ``1 / rate`` seconds apart, and a
request must begin within the first half of its slot. A thread that wakes too late (a busy
machine, a long garbage collection) does not send in a slot that has passed, where it would join
the senders of the following slots: it takes a new slot and waits again. So any one-second
window holds at most ``rate`` + 1 requests, however late threads wake.

:class:`RateLimiter` holds within one process (threads take evenly spaced slots).
:class:`DatabaseRateLimiter` is shared by every worker process through the database
(PostgreSQL): each slot is taken with one UPDATE (the row lock orders the workers), so N
workers together still send at most ``rate`` messages per second. The database's own clock
is used, so workers on hosts whose clocks differ slightly still agree.

The dispatcher takes the slot *before* the message becomes ``sending``: a crash while waiting
leaves it ``planned``, to be sent by the next pass, never in doubt. It asks the slot again
(:meth:`Slot.on_time`) once the row is ``sending``, just before the request, and gives the row
back and waits again if writing ``sending`` took it past its slot.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Engine, text

# A request may begin in the first half of its slot; the rest absorbs the write of
# ``sending`` and the connection set-up between the slot and the request reaching the provider.
ON_TIME_SHARE = 0.5
# Never wait longer than this for one slot (a misconfigured rate, a clock jump).
MAX_WAIT_SECONDS = 300.0


@dataclass(frozen=True)
class Slot:
    """A reserved moment to send: on time until ``deadline`` (monotonic seconds)."""

    deadline: float

    def on_time(self) -> bool:
        return time.monotonic() <= self.deadline


UNLIMITED = Slot(math.inf)


class RateLimiter:
    """At most ``rate`` requests per second across threads (0 = unlimited)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._next = 0.0

    def _take(self, interval: float) -> tuple[float, float]:
        """The next free slot, reserved for the caller: the earliest and the latest monotonic
        time at which it may begin (the same here; a range when another clock is asked)."""
        with self._lock:
            slot = max(time.monotonic(), self._next)
            self._next = slot + interval
        return slot, slot

    def acquire(self, stop: threading.Event | None = None) -> Slot | None:
        """Wait for a slot and return it at its start; None if ``stop`` was set meanwhile
        (nothing may be sent then)."""
        if stop is not None and stop.is_set():
            return None
        if self.rate <= 0:
            return UNLIMITED
        interval = 1.0 / self.rate
        while True:
            # Never before the latest moment the slot may begin; on time only if well within
            # it counted from the earliest.
            earliest, latest = self._take(interval)
            delay = min(latest - time.monotonic(), MAX_WAIT_SECONDS)
            if delay > 0:
                if stop is not None:
                    if stop.wait(delay):
                        return None
                else:
                    time.sleep(delay)
            if stop is not None and stop.is_set():
                return None
            slot = Slot(earliest + interval * ON_TIME_SHARE)
            if slot.on_time():
                return slot
            # Woke too late for this slot: take the next free one.


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

    def _take(self, interval: float) -> tuple[float, float]:
        # The database read its clock somewhere between sending the UPDATE and our reading its
        # answer: the slot begins between those two moments plus the wait it returned. The
        # connection is taken first, so a reconnection (after a database restart) does not
        # widen that range.
        with self.engine.connect() as conn:
            before = time.monotonic()
            wait = float(
                conn.execute(
                    _TAKE_SLOT, {"provider": self.provider, "interval": interval}
                ).scalar_one()
            )
            after = time.monotonic()
            conn.commit()
        return before + wait, after + wait
