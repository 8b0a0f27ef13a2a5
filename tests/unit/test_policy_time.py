"""Time arithmetic across zones and daylight-saving changes (property-based)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reminders.defaults import POLICY_FILE
from reminders.errors import PolicyError
from reminders.planning.policy import FixedTime, Offset, QuietHours, load_policy, parse_policy
from reminders.planning.timecalc import (
    fixed_local,
    place_outside_quiet,
    quiet_period,
    shift,
    to_local_instant,
)

ZONES = ["America/New_York", "America/Los_Angeles", "Europe/London", "Australia/Sydney"]
ROOT = Path(__file__).resolve().parents[2]

instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)).map(
    lambda d: d.replace(second=0, microsecond=0, tzinfo=UTC)
)
zones = st.sampled_from(ZONES).map(ZoneInfo)


def exists_locally(local_naive: datetime, tz: ZoneInfo) -> bool:
    aware = local_naive.replace(tzinfo=tz)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == local_naive


@given(instants, zones, st.integers(min_value=1, max_value=14))
def test_day_offsets_keep_the_local_wall_clock(start: datetime, tz: ZoneInfo, days: int) -> None:
    due = shift(start, Offset(days=-days), tz)
    local_start = start.astimezone(tz)
    local_due = due.astimezone(tz)
    assert local_due.date() == local_start.date() - timedelta(days=days)
    target = local_start.replace(tzinfo=None) - timedelta(days=days)
    if exists_locally(target, tz):
        assert local_due.time() == local_start.time()
    else:  # the wall time falls in a spring-forward gap: pushed forward by the gap
        assert local_due.replace(tzinfo=None) > target


@given(instants, zones, st.integers(min_value=1, max_value=48 * 60))
def test_hour_and_minute_offsets_are_elapsed_time(
    start: datetime, tz: ZoneInfo, minutes: int
) -> None:
    assert shift(start, Offset(minutes=-minutes), tz) == start - timedelta(minutes=minutes)


def test_day_before_across_dst_in_new_york() -> None:
    tz = ZoneInfo("America/New_York")
    # Spring forward is 2026-03-08 at 02:00: a 09:00 EDT session's -1d is 09:00 EST, 23 h earlier.
    session = datetime(2026, 3, 8, 9, 0, tzinfo=tz)
    due = shift(session, Offset.parse("-1d"), tz)
    assert due.astimezone(tz).hour == 9
    assert session - due == timedelta(hours=23)
    # Fall back (2026-11-01 at 02:00): 25 hours.
    session = datetime(2026, 11, 1, 9, 0, tzinfo=tz)
    assert session - shift(session, Offset.parse("-1d"), tz) == timedelta(hours=25)


def test_fixed_local_time_the_next_day() -> None:
    tz = ZoneInfo("Australia/Sydney")
    end = datetime(2026, 4, 4, 23, 30, tzinfo=tz)  # DST ends in Sydney on 2026-04-05
    due = fixed_local(end, FixedTime(day=1, at=time(10, 0)), tz)
    assert due.astimezone(tz).replace(tzinfo=None) == datetime(2026, 4, 5, 10, 0)


def test_nonexistent_local_time_moves_forward() -> None:
    tz = ZoneInfo("America/New_York")
    due = to_local_instant(date(2026, 3, 8), time(2, 30), tz)
    assert due.astimezone(tz).replace(tzinfo=None) == datetime(2026, 3, 8, 3, 30)


def test_offset_parsing() -> None:
    assert Offset.parse("-1d") == Offset(days=-1)
    assert Offset.parse("-2h") == Offset(minutes=-120)
    assert Offset.parse("+1d2h30m") == Offset(days=1, minutes=150)
    for bad in ("", "tomorrow", "1x", "-"):
        with pytest.raises(ValueError):
            Offset.parse(bad)


QUIET = QuietHours(start=time(21), end=time(8))


@given(instants, zones)
def test_quiet_period_contains_the_instant(instant: datetime, tz: ZoneInfo) -> None:
    period = quiet_period(instant, QUIET, tz)
    local = instant.astimezone(tz).time()
    if period is None:
        assert time(8) <= local < time(21)
    else:
        start, end = period
        assert start <= instant < end
        assert start.astimezone(tz).time() == time(21)


@given(instants, zones, st.integers(min_value=0, max_value=72 * 60))
@settings(max_examples=300)
def test_pre_session_placement_never_in_quiet_hours_nor_after_start(
    session_start: datetime, tz: ZoneInfo, lead_minutes: int
) -> None:
    due = session_start - timedelta(minutes=lead_minutes)
    placed = place_outside_quiet(
        due,
        pre_session=True,
        session_start=session_start,
        quiet=QUIET,
        tz=tz,
        min_lead=timedelta(hours=1),
        margin=timedelta(minutes=15),
    )
    assert quiet_period(placed.due_at, QUIET, tz) is None
    assert placed.due_at < session_start or placed.due_at == due
    if placed.due_at != due:
        moved_to_end = placed.due_at > due
        if moved_to_end:
            assert placed.due_at <= session_start - timedelta(hours=1)
        else:  # the evening before: just before quiet hours began
            assert placed.due_at.astimezone(tz).time() == time(20, 45)


@given(instants, zones)
def test_checkins_move_to_the_end_of_quiet_hours(due: datetime, tz: ZoneInfo) -> None:
    placed = place_outside_quiet(
        due,
        pre_session=False,
        session_start=None,
        quiet=QUIET,
        tz=tz,
        min_lead=timedelta(hours=1),
        margin=timedelta(minutes=15),
    )
    assert placed.due_at >= due
    assert quiet_period(placed.due_at, QUIET, tz) is None
    if placed.due_at != due:
        assert placed.due_at.astimezone(tz).time() == time(8)


def test_shipped_policy_loads() -> None:
    policy = load_policy(POLICY_FILE)
    names = [r.name for r in policy.rules]
    assert "infusion-day-before-sms" in names and policy.quiet("email") is None


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            {"name": "r1", "kind": "reminder", "when": "-1x", "channels": ["sms"], "template": "t"},
            "rule 'r1' field 'when'",
        ),
        (
            {"name": "r2", "kind": "reminder", "when": "+1d", "channels": ["sms"], "template": "t"},
            "rule 'r2'",
        ),
        (
            {"name": "r3", "kind": "reminder", "when": "-1d", "channels": ["fax"], "template": "t"},
            "rule 'r3' field 'channels.0'",
        ),
        (
            {"name": "r4", "kind": "checkin", "channels": ["sms"], "template": "t"},
            "'when' is required",
        ),
        (
            {"kind": "reminder", "when": "-1d", "channels": ["sms"], "template": "t"},
            "rule #1 field 'name'",
        ),
    ],
)
def test_policy_errors_name_the_rule_and_field(rule: dict[str, object], expected: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy({"rules": [rule]})
    assert expected in str(err.value)


def test_unreadable_policy_file(tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("rules: [unclosed")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(bad)
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")
