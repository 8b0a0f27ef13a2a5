"""The provider rate holds across worker processes sharing a PostgreSQL database."""

from __future__ import annotations

import threading
import time

import pytest

from reminders.db.engine import make_engine
from reminders.providers.ratelimit import DatabaseRateLimiter


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_workers_together_stay_within_the_rate(db_url: str) -> None:
    rate, per_worker = 10.0, 12
    engines = [make_engine(db_url) for _ in range(2)]  # as two processes would have
    limiters = [DatabaseRateLimiter(e, "twilio:sms", rate) for e in engines]
    stamps: list[float] = []
    lock = threading.Lock()

    def worker(limiter: DatabaseRateLimiter) -> None:
        for _ in range(per_worker):
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker, args=(lim,)) for lim in limiters for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for e in engines:
        e.dispose()
    stamps.sort()
    assert len(stamps) == 4 * per_worker
    # Any window of one second holds at most rate (+1 for the window's closed edge) sends.
    busiest = max(sum(1 for s in stamps if start <= s < start + 1.0) for start in stamps)
    assert busiest <= rate + 1, busiest
    # And the limiter does not throttle far below the rate either.
    assert stamps[-1] - stamps[0] < (len(stamps) / rate) + 1.5
