"""A small demo clinic whose sessions sit relative to "now", so messages flow within a minute.

With the default policy, right after ``reminders demo`` starts:

- demo-s1 starts in 1h50m: the ride-home SMS (-2h) is due now;
- demo-s2 starts in a day minus a minute: the day-before SMS (-1d) is due now;
- demo-s3 starts in 3 days minus 5 minutes: the preparation email (-3d) is due now, at any
  hour (email has no quiet hours), and its patient has no SMS consent;
- demo-s4 was completed yesterday (or two days ago before 10:00): the check-in (the day
  after at 10:00) is due; its patient's phone is unparseable, so the check-in says why
  SMS is impossible and falls back to email;
- demo-p5 (another time zone) finished a 6-session initial series three weeks ago with
  nothing booked: the maintenance nudge (interval 28 days - 7 days lead, at 10:00) is due.

SMS due during quiet hours (21:00-08:00 local) wait until morning: that is the policy.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from reminders.clinic.importer import import_data
from reminders.db.engine import session_scope

if TYPE_CHECKING:  # the type only: the runtime is built above the stages, not by them
    from reminders.runtime import Runtime

CHECKIN_AT = time(10, 0)  # the default policy's check-in and nudge time of day
OTHER_ZONE = "America/Los_Angeles"


def _wall(now: datetime, tz: ZoneInfo, *, days: int = 0, minutes: int = 0) -> datetime:
    """``now`` moved by calendar days at the same local wall-clock time, then by elapsed minutes
    (the policy's day arithmetic, so offsets hold across daylight-saving changes)."""
    local = now.astimezone(tz).replace(tzinfo=None) + timedelta(days=days)
    return local.replace(tzinfo=tz).astimezone(UTC) + timedelta(minutes=minutes)


def _at(day: date, at: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).replace(microsecond=0).isoformat()


def demo_clinic(now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """The demo clinic in the JSON import format (docs/design.md section 5), relative to ``now``."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    local_now = now.astimezone(tz)
    # The check-in is due the day after the session at 10:00 and expires 24h later: before
    # 10:00 local, "yesterday 10:00" is the live one, so the session is two days back.
    checkin_days_back = 1 if local_now.time() >= CHECKIN_AT else 2
    checkin_day = local_now.date() - timedelta(days=checkin_days_back)

    other = ZoneInfo(OTHER_ZONE)
    other_now = now.astimezone(other)
    # Nudge due at last completed + 28d - 7d lead, at 10:00 local on that date.
    last_back = 21 if other_now.time() >= CHECKIN_AT else 22
    last_day = other_now.date() - timedelta(days=last_back)
    series_days = [last_day - timedelta(days=3 * (5 - n)) for n in range(6)]

    location = {
        "id": "demo-main",
        "name": "Lakeside Wellness (demo)",
        "address": "1 Main St, Suite 200",
        "phone": "+14105550100",
        "timezone": str(tz.key),
    }
    patients = [
        _patient("demo-p1", "Ana", "Diaz", "410-555-0101", "es"),
        _patient("demo-p2", "Ben", "Carter", "410-555-0102", "en"),
        _patient("demo-p3", "Chloe", "Nguyen", "410-555-0103", "en", sms_consent=False),
        _patient("demo-p4", "Diego", "Ramos", "555-01", "es"),  # unparseable: kept without phone
        _patient("demo-p5", "Erin", "Walsh", "+1 310 555 0105", "en", timezone=OTHER_ZONE),
    ]
    sessions = [
        _session("demo-s1", "demo-p1", now + timedelta(hours=1, minutes=50)),
        _session("demo-s2", "demo-p2", _wall(now, tz, days=1, minutes=-1)),
        _session("demo-s3", "demo-p3", _wall(now, tz, days=3, minutes=-5)),
        _session("demo-s4", "demo-p4", _at(checkin_day, time(11, 0), tz), status="completed"),
    ]
    sessions += [
        _session(
            f"demo-s5-{n}",
            "demo-p5",
            _at(day, time(11, 0), other),
            status="completed",
            phase="initial",
            series_number=n,
        )
        for n, day in enumerate(series_days, start=1)
    ]
    return {"locations": [location], "patients": patients, "sessions": sessions}


def _patient(
    pid: str,
    first: str,
    last: str,
    phone: str,
    language: str,
    *,
    sms_consent: bool = True,
    timezone: str | None = None,
) -> dict[str, Any]:
    return {
        "id": pid,
        "first_name": first,
        "last_name": last,
        "phone": phone,
        "email": f"{first.lower()}.{last.lower()}@example.com",
        "timezone": timezone,
        "language": language,
        "sms_consent": sms_consent,
        "email_consent": True,
        "care_plan": {"initial_series_size": 6, "maintenance_interval_days": 28},
    }


def _session(
    sid: str, pid: str, starts_at: datetime, *, status: str = "scheduled", **extra: Any
) -> dict[str, Any]:
    return {
        "id": sid,
        "patient_id": pid,
        "location_id": "demo-main",
        "starts_at": _iso(starts_at),
        "duration_minutes": 60,
        "kind": "infusion",
        "status": status,
        **extra,
    }


def load_demo(runtime: Runtime, *, now: datetime | None = None) -> str:
    """Import the demo clinic into the configured database; a one-line summary."""
    settings = runtime.settings
    now = now or datetime.now(UTC)
    with session_scope(runtime.session_factory) as db:
        report = import_data(db, settings, demo_clinic(now, settings.zone), source="demo")
    stored = {name: c.inserted + c.updated + c.unchanged for name, c in report.counts.items()}
    return (
        f"demo clinic loaded: {stored['locations']} location, {stored['patients']} patients, "
        f"{stored['sessions']} sessions ({report.dirty_patients} patients to plan); "
        f"dry-run messages go to {settings.dryrun_dir}"
    )
