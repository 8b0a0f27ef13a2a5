"""Time arithmetic for planning and send-time checks: pure, no database and no clock.

Times go in and out as aware datetimes; local wall-clock reasoning happens in the
recipient's ``ZoneInfo`` (:func:`recipient_zone`: the patient's zone, else the session
location's, else the clinic's). Offsets: ``d`` is calendar days at the same local
wall-clock time (``-1d`` before a 09:00 session is 09:00 the day before, across
daylight-saving changes); ``h`` and ``m`` are elapsed time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from reminders.planning.policy import FixedTime, Offset, QuietHours


def recipient_zone(
    *, patient_tz: str | None, location_tz: str | None, default: ZoneInfo
) -> ZoneInfo:
    """Patient's zone, else the session location's, else the clinic's (docs/design.md section 5)."""
    for name in (patient_tz, location_tz):
        if name:
            try:
                return _zone(name)
            except (KeyError, ValueError):
                continue
    return default


_ZONES: dict[str, ZoneInfo] = {}


def _zone(name: str) -> ZoneInfo:
    """A cached ``ZoneInfo``; raises ``ZoneInfoNotFoundError`` (a ``KeyError``) or ``ValueError``."""
    zone = _ZONES.get(name)
    if zone is None:
        zone = _ZONES[name] = ZoneInfo(name)
    return zone


def to_local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """A local wall-clock time as an aware UTC instant.

    A time that does not exist (spring-forward gap) is read with the offset from before
    the gap, so it lands the gap's length later (02:30 -> 03:30); an ambiguous one
    (fall-back) takes its first occurrence (PEP 495, fold=0).
    """
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def shift(anchor: datetime, offset: Offset, tz: ZoneInfo) -> datetime:
    """Apply calendar days in local wall-clock time, then elapsed minutes."""
    result = anchor.astimezone(UTC)
    if offset.days:
        local = anchor.astimezone(tz)
        result = to_local_instant(
            local.date() + timedelta(days=offset.days), local.time().replace(tzinfo=None), tz
        )
    return result + timedelta(minutes=offset.minutes)


def fixed_local(anchor: datetime, fixed: FixedTime, tz: ZoneInfo) -> datetime:
    local_day = anchor.astimezone(tz).date() + timedelta(days=fixed.day)
    return to_local_instant(local_day, fixed.at, tz)


def quiet_period(
    instant: datetime, quiet: QuietHours, tz: ZoneInfo
) -> tuple[datetime, datetime] | None:
    """The (start, end) of the quiet period containing ``instant``, or None when outside."""
    local = instant.astimezone(tz)
    if not quiet.contains(local.time().replace(tzinfo=None)):
        return None
    today = local.date()
    if quiet.start < quiet.end:
        start_day, end_day = today, today
    elif local.time().replace(tzinfo=None) >= quiet.start:
        start_day, end_day = today, today + timedelta(days=1)
    else:
        start_day, end_day = today - timedelta(days=1), today
    return to_local_instant(start_day, quiet.start, tz), to_local_instant(end_day, quiet.end, tz)


@dataclass(frozen=True)
class Placement:
    due_at: datetime
    note: str | None = None


def place_outside_quiet(
    due: datetime,
    *,
    pre_session: bool,
    session_start: datetime | None,
    quiet: QuietHours | None,
    tz: ZoneInfo,
    min_lead: timedelta,
    margin: timedelta,
) -> Placement:
    """Move a due time out of quiet hours (docs/design.md section 6).

    Pre-session messages go to the end of the quiet period when that is still ``min_lead``
    before the session, else to just before the period began (the evening before).
    Everything else goes to the end.
    """
    if quiet is None:
        return Placement(due)
    period = quiet_period(due, quiet, tz)
    if period is None:
        return Placement(due)
    start, end = period
    if not pre_session or session_start is None:
        return Placement(end, f"quiet hours: moved to {end.astimezone(tz):%H:%M} local")
    if end <= session_start - min_lead:
        return Placement(end, f"quiet hours: moved to their end, {end.astimezone(tz):%H:%M} local")
    earlier = start - margin
    return Placement(
        earlier,
        f"quiet hours: end is too close to the session; moved to {earlier.astimezone(tz):%H:%M} local the evening before",
    )
