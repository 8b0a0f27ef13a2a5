"""Prometheus metrics. Counters are per process; the outbox and reply gauges are read from the
database, so they are the same whichever worker answers.

A scrape does bounded work, however long the tables' history:

- ``reminders_messages{status,channel}``: ``planned`` and ``sending`` count every such message
  (the live outbox, read through the ``(status, due_at)`` index ``ix_messages_due``: the cost
  follows the messages waiting to go out, not the table's history); the final
  statuses (``sent``, ``delivered``, ``failed``, ``cancelled``, ``skipped``) count the messages
  **due in the last 24 hours** (or later), through the same index, instead of every message
  ever sent. For totals over time use ``reminders_messages_sent_total`` (a counter).
- ``reminders_replies{class}``: ``unprocessed`` counts every inbound message stored and not yet
  processed (through the partial index ``ix_inbound_unprocessed``); each class counts the
  messages **received in the last 24 hours**. Those are found from the newest row back (by
  primary key) to the first one received before the window; ids follow arrival order, so this
  is exact unless a row was stored with an older time than one before it (then it may be missed
  at the window's edge).
- The counts are read at most once every 30 s per process (``DatabaseCollector.ttl``); a
  scrape within that time gets the same figures. A known status and channel with nothing in
  it is reported as 0 rather than left out.

A scrape never fails because the database is down: the database gauges are left out of it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from reminders.db.models import InboundMessage, Message
from reminders.outbox.status import CHANNELS, MESSAGE_STATUSES

REGISTRY = CollectorRegistry(auto_describe=True)

PASS_SECONDS = Histogram(
    "reminders_pass_duration_seconds",
    "Duration of worker passes",
    ["step"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
MESSAGES_SENT = Counter(
    "reminders_messages_sent_total",
    "Messages handed to a provider",
    ["channel", "provider"],
    registry=REGISTRY,
)
PROVIDER_ERRORS = Counter(
    "reminders_provider_errors_total",
    "Provider send errors",
    ["provider", "code", "permanent"],
    registry=REGISTRY,
)
WEBHOOKS = Counter(
    "reminders_webhooks_total",
    "Webhook requests by path and outcome",
    ["hook", "outcome"],
    registry=REGISTRY,
)

# The outbox's live statuses are counted whole; the others over WINDOW (see the docstring).
LIVE_STATUSES = ("planned", "sending")
FINAL_STATUSES = tuple(s for s in MESSAGE_STATUSES if s not in LIVE_STATUSES)
WINDOW = timedelta(hours=24)
TTL_SECONDS = 30.0

MESSAGES_HELP = (
    "Outbox messages by status and channel: planned and sending, all of them; the other "
    "statuses, messages due in the last 24 h or later (read at most every 30 s)"
)
REPLIES_HELP = (
    "Inbound messages by class, received in the last 24 h; unprocessed: all stored and not "
    "yet processed (read at most every 30 s)"
)

Samples = tuple[dict[tuple[str, str], int], dict[str, int]]


def count_messages(db: Session, now: datetime) -> dict[tuple[str, str], int]:
    """(status, channel) -> messages, as the gauge reports them (zeros included)."""
    counts: dict[tuple[str, str], int] = {
        (status, channel): 0 for status in MESSAGE_STATUSES for channel in CHANNELS
    }
    live = (
        select(Message.status, Message.channel, func.count())
        .where(Message.status.in_(LIVE_STATUSES))
        .group_by(Message.status, Message.channel)
    )
    final = (
        select(Message.status, Message.channel, func.count())
        .where(Message.status.in_(FINAL_STATUSES), Message.due_at >= now - WINDOW)
        .group_by(Message.status, Message.channel)
    )
    for query in (live, final):
        for status, channel, count in db.execute(query):
            counts[(status, channel)] = int(count)
    return counts


def count_replies(db: Session, now: datetime) -> dict[str, int]:
    """class -> inbound messages, as the gauge reports them."""
    since = now - WINDOW
    counts: dict[str, int] = {
        "unprocessed": int(
            db.scalar(
                select(func.count())
                .select_from(InboundMessage)
                # processed_at IS NULL: the partial index ix_inbound_unprocessed.
                .where(
                    InboundMessage.processed_at.is_(None),
                    InboundMessage.classification.is_(None),
                )
            )
            or 0
        )
    }
    # The newest message received before the window, found backwards along the primary key:
    # this reads the window's rows (and one more), not the table.
    before = db.scalar(
        select(InboundMessage.id)
        .where(InboundMessage.received_at < since)
        .order_by(InboundMessage.id.desc())
        .limit(1)
    )
    recent = (
        select(InboundMessage.classification, func.count())
        .where(InboundMessage.classification.is_not(None), InboundMessage.received_at >= since)
        .group_by(InboundMessage.classification)
    )
    if before is not None:
        recent = recent.where(InboundMessage.id > before)
    for cls, count in db.execute(recent):
        counts[str(cls)] = int(count)
    return counts


class DatabaseCollector(Collector):
    """The outbox and reply gauges, read through ``factory`` at most every ``ttl`` seconds."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        ttl: float = TTL_SECONDS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.factory = factory
        self.ttl = ttl
        self.clock = clock
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._cached: Samples | None = None
        self._expires = 0.0

    def describe(self) -> Iterable[GaugeMetricFamily]:
        """The families without values: registering must not query the database."""
        return self._families(({}, {}))

    def _families(self, samples: Samples) -> list[GaugeMetricFamily]:
        messages = GaugeMetricFamily(
            "reminders_messages", MESSAGES_HELP, labels=["status", "channel"]
        )
        for (status, channel), count in sorted(samples[0].items()):
            messages.add_metric([status, channel], count)
        replies = GaugeMetricFamily("reminders_replies", REPLIES_HELP, labels=["class"])
        for cls, count in sorted(samples[1].items()):
            replies.add_metric([cls], count)
        return [messages, replies]

    def _read(self) -> Samples:
        now = self.clock()
        with self.factory() as db:
            return count_messages(db, now), count_replies(db, now)

    def samples(self) -> Samples | None:
        """The counts (from the cache while it is fresh), or None when the database is down."""
        with self._lock:  # concurrent scrapes: one reads, the others wait for its figures
            if self._cached is not None and self.monotonic() < self._expires:
                return self._cached
            try:
                samples = self._read()
            except Exception:  # noqa: BLE001 - a scrape must not fail because the database is down
                self._cached = None
                return None
            self._cached, self._expires = samples, self.monotonic() + self.ttl
            return samples

    def collect(self) -> Iterable[GaugeMetricFamily]:
        samples = self.samples()
        if samples is None:
            return []
        return self._families(samples)


def register_database(factory: sessionmaker[Session]) -> None:
    if not getattr(REGISTRY, "_reminders_db", False):
        REGISTRY.register(DatabaseCollector(factory))
        REGISTRY._reminders_db = True  # type: ignore[attr-defined]


def count_webhook(hook: str, outcome: str) -> None:
    """One webhook request and what became of it (``reminders_webhooks_total``)."""
    WEBHOOKS.labels(hook=hook, outcome=outcome).inc()
