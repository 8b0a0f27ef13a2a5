"""Status rules for delivery reports: never backwards."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reminders.db.models import Message
from reminders.outbox import delivery

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def row(status: str) -> Message:
    return Message(status=status, channel="sms")


@pytest.mark.parametrize(
    ("status", "changes"),
    [
        ("planned", False),
        ("sending", True),
        ("sent", True),
        ("failed", True),
        ("delivered", False),
        ("cancelled", False),
        ("skipped", False),
    ],
)
def test_delivered(status: str, changes: bool) -> None:
    message = row(status)
    assert delivery.apply_delivered(message, at=NOW) is changes
    assert message.status == ("delivered" if changes else status)
    assert (message.delivered_at == NOW) is changes


@pytest.mark.parametrize(
    ("status", "changes"),
    [
        ("planned", False),
        ("sending", True),
        ("sent", True),
        ("failed", False),
        ("delivered", False),
        ("cancelled", False),
        ("skipped", False),
    ],
)
def test_failed(status: str, changes: bool) -> None:
    message = row(status)
    assert (
        delivery.apply_failed(message, error_code="30003", reason="twilio undelivered (30003)")
        is changes
    )
    assert message.status == ("failed" if changes else status)
    if changes:
        assert (message.error_code, message.reason) == ("30003", "twilio undelivered (30003)")


def test_deferred_only_notes_a_sent_row() -> None:
    sent, delivered = row("sent"), row("delivered")
    assert (
        delivery.note_deferred(sent, "deferred")
        and sent.status == "sent"
        and sent.reason == "deferred"
    )
    assert not delivery.note_deferred(delivered, "deferred") and delivered.reason is None
