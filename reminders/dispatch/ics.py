"""The ``.ics`` attachment on session reminder emails (RFC 5545, with the ``icalendar`` library).

The event is written in the clinic's local zone (``DTSTART;TZID=...``) with a matching
VTIMEZONE covering the years around the session, so calendars show the right wall-clock
time on both sides of a daylight-saving change.

METHOD is PUBLISH, not REQUEST: REQUEST is an invitation that needs ORGANIZER and ATTENDEE
and makes mail clients offer Accept/Decline replies to the sender; the patient confirms by
SMS instead, and PUBLISH simply lets them add (or update, by the same UID) the event.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, Timezone

from reminders.providers.base import Attachment

ICS_METHOD = "PUBLISH"
ICS_CONTENT_TYPE = f"text/calendar; method={ICS_METHOD}; charset=utf-8"


def session_uid(session_id: str) -> str:
    """Stable per session, so a rescheduled session's new .ics replaces the old entry."""
    return f"session-{session_id}@reminders"


@lru_cache(maxsize=256)
def _vtimezone(key: str, first_year: int, last_year: int) -> bytes:
    """The zone's VTIMEZONE, serialised once per zone and years (the costly part of an .ics).

    Only the transitions near the session: a full 1970-2038 history would bloat every email.
    """
    component = Timezone.from_tzinfo(
        ZoneInfo(key),
        tzid=key,
        first_date=date(first_year - 1, 1, 1),
        last_date=date(last_year + 2, 1, 1),
    )
    return bytes(component.to_ical())


def session_ics(
    *,
    session_id: str,
    starts_at: datetime,
    duration_minutes: int,
    summary: str,
    location_name: str,
    location_address: str,
    tz: ZoneInfo,
    clinic_name: str,
    now: datetime | None = None,
) -> Attachment:
    if starts_at.tzinfo is None:
        raise ValueError("starts_at must be timezone-aware")
    start = starts_at.astimezone(tz)
    end = start + timedelta(minutes=duration_minutes)
    stamp = (now or datetime.now(UTC)).astimezone(UTC)

    cal = Calendar()
    cal.add("prodid", f"-//{clinic_name}//reminders//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", ICS_METHOD)

    ev = Event()
    ev.add("uid", session_uid(session_id))
    ev.add("dtstamp", stamp)
    ev.add("dtstart", start)
    ev.add("dtend", end)
    ev.add("summary", summary)
    where = ", ".join(part for part in (location_name, location_address) if part)
    if where:
        ev.add("location", where)
    ev.add("status", "CONFIRMED")
    ev.add("transp", "OPAQUE")
    cal.add_component(ev)
    # The cached VTIMEZONE goes in as bytes, before the event (RFC 5545 allows any order).
    body = cal.to_ical()
    marker = b"BEGIN:VEVENT\r\n"
    content = body.replace(marker, _vtimezone(tz.key, start.year, end.year) + marker, 1)
    return Attachment(filename="session.ics", content_type=ICS_CONTENT_TYPE, content=content)
