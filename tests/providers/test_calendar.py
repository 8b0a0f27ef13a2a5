"""The .ics attachment: local wall-clock time with a matching VTIMEZONE, across DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar, Timezone

from reminders.dispatch.ics import session_ics

NEW_YORK = ZoneInfo("America/New_York")


def parse(starts_at: datetime, tz: ZoneInfo = NEW_YORK, minutes: int = 60) -> Calendar:
    attachment = session_ics(
        session_id="s1",
        starts_at=starts_at,
        duration_minutes=minutes,
        summary="Appointment",
        location_name="Downtown",
        location_address="1 Main St",
        tz=tz,
        clinic_name="Lakeside",
    )
    assert attachment.filename.endswith(".ics")
    assert attachment.content_type.startswith("text/calendar")
    return Calendar.from_ical(attachment.content)


@pytest.mark.parametrize(
    ("utc_start", "local"),
    [
        (datetime(2026, 11, 1, 14, tzinfo=UTC), "20261101T090000"),  # the day DST ends: EST
        (datetime(2026, 10, 31, 13, tzinfo=UTC), "20261031T090000"),  # the day before: EDT
        (datetime(2026, 3, 8, 13, tzinfo=UTC), "20260308T090000"),  # the day DST starts: EDT
    ],
)
def test_event_is_in_local_time_with_its_zone(utc_start: datetime, local: str) -> None:
    cal = parse(utc_start)
    raw = cal.to_ical().decode()
    assert f"DTSTART;TZID=America/New_York:{local}" in raw
    assert "METHOD:PUBLISH" in raw
    [zone] = cal.walk("VTIMEZONE")
    assert zone["TZID"] == "America/New_York"
    [event] = cal.walk("VEVENT")
    start = event.decoded("DTSTART")
    assert start == utc_start and start.utcoffset() == utc_start.astimezone(NEW_YORK).utcoffset()
    assert event.decoded("DTEND") - start == timedelta(minutes=60)
    assert str(event["UID"]) == "session-s1@reminders"
    assert "1 Main St" in str(event["LOCATION"])


def test_vtimezone_offsets_match_zoneinfo() -> None:
    """The embedded rules give the same offsets as the tz database, so clients agree with us."""
    cal = parse(datetime(2026, 7, 1, 13, tzinfo=UTC), tz=ZoneInfo("Europe/Madrid"))
    [zone] = cal.walk("VTIMEZONE")
    assert isinstance(zone, Timezone)
    tzinfo = zone.to_tz()
    for month in range(1, 13):
        moment = datetime(2026, month, 15, 12)
        assert tzinfo.utcoffset(moment) == ZoneInfo("Europe/Madrid").utcoffset(moment)


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError):
        parse(datetime(2026, 7, 1, 13))
