"""Prometheus metrics. Counters are per process; outbox and reply counts are read from
the database at scrape time, so they are the same whichever worker answers."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from reminders.db.models import InboundMessage, Message

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


class DatabaseCollector(Collector):
    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory

    def collect(self) -> Iterable[GaugeMetricFamily]:
        messages = GaugeMetricFamily(
            "reminders_messages",
            "Messages in the outbox by status and channel",
            labels=["status", "channel"],
        )
        replies = GaugeMetricFamily(
            "reminders_replies", "Inbound replies by class", labels=["class"]
        )
        try:
            with self.factory() as db:
                for status, channel, count in db.execute(
                    select(Message.status, Message.channel, func.count()).group_by(
                        Message.status, Message.channel
                    )
                ):
                    messages.add_metric([status, channel], count)
                for cls, count in db.execute(
                    select(InboundMessage.classification, func.count()).group_by(
                        InboundMessage.classification
                    )
                ):
                    replies.add_metric([cls or "unprocessed"], count)
        except Exception:  # noqa: BLE001 - a scrape must not fail because the database is down
            return
        yield messages
        yield replies


def register_database(factory: sessionmaker[Session]) -> None:
    if not getattr(REGISTRY, "_reminders_db", False):
        REGISTRY.register(DatabaseCollector(factory))
        REGISTRY._reminders_db = True  # type: ignore[attr-defined]


def count_webhook(hook: str, outcome: str) -> None:
    """One webhook request and what became of it (``reminders_webhooks_total``)."""
    WEBHOOKS.labels(hook=hook, outcome=outcome).inc()
