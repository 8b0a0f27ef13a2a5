"""Small helpers shared by the HTTP provider adapters (Twilio, SendGrid)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# The longest wait we accept from a Retry-After header: a provider asking for more is
# treated as asking for this much, so one odd header cannot park the outbox for a day.
MAX_RETRY_AFTER_SECONDS = 3600.0


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def outbox_id(raw: object) -> int | None:
    """Our message id as a provider echoes it back (status-callback query, custom args)."""
    try:
        value = int(str(raw))
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None
