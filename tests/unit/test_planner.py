"""The planner's pure core: policy and sessions in, planned messages out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import TypedDict
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from reminders.defaults import POLICY_FILE
from reminders.planning.planner import (
    PlannedMessage,
    SessionFacts,
    derive_series,
    plan_nudges,
    plan_patient,
    plan_session,
)
from reminders.planning.policy import Policy, load_policy
from reminders.planning.timecalc import quiet_period, recipient_zone

ROOT = Path(__file__).resolve().parents[2]
POLICY = load_policy(POLICY_FILE)
ZONES = ["America/New_York", "America/Los_Angeles", "Europe/London", "Australia/Sydney"]
NY = ZoneInfo("America/New_York")


def infusion(
    sid: str,
    starts_at: datetime,
    status: str = "scheduled",
    *,
    kind: str = "infusion",
    phase: str | None = None,
    series_number: int | None = None,
    location_id: str | None = None,
) -> SessionFacts:
    return SessionFacts(
        id=sid,
        patient_id="p1",
        starts_at=starts_at.astimezone(UTC),
        duration_minutes=60,
        kind=kind,
        status=status,
        phase=phase,
        series_number=series_number,
        location_id=location_id,
    )


def by_rule(planned: Iterable[PlannedMessage]) -> dict[tuple[str, str], PlannedMessage]:
    return {(p.rule, p.channel): p for p in planned}


def test_infusion_timeline_in_new_york() -> None:
    s = infusion("s1", datetime(2026, 12, 1, 9, 0, tzinfo=NY))
    pos = derive_series([s], 6)[s.id]
    plan = by_rule(plan_session(s, pos, POLICY, NY))
    local = {k: v.due_at.astimezone(NY) for k, v in plan.items()}
    assert local[("infusion-prep-email", "email")] == datetime(2026, 11, 28, 9, 0, tzinfo=NY)
    assert local[("infusion-day-before-sms", "sms")] == datetime(2026, 11, 30, 9, 0, tzinfo=NY)
    # -2h = 07:00 is in quiet hours; their end (08:00) is still 1h before: moved there.
    assert local[("infusion-ride-sms", "sms")] == datetime(2026, 12, 1, 8, 0, tzinfo=NY)
    assert local[("infusion-checkin", "sms")] == datetime(2026, 12, 2, 10, 0, tzinfo=NY)
    assert plan[("infusion-checkin", "sms")].not_after == plan[
        ("infusion-checkin", "sms")
    ].due_at + timedelta(hours=24)
    assert plan[("infusion-day-before-sms", "sms")].not_after == s.starts_at
    assert pos.series_number == 1 and pos.phase == "initial"


def test_early_session_moves_ride_reminder_to_the_evening_before() -> None:
    s = infusion("s1", datetime(2026, 12, 1, 8, 30, tzinfo=NY))
    plan = by_rule(plan_session(s, derive_series([s], 6)[s.id], POLICY, NY))
    ride = plan[("infusion-ride-sms", "sms")].due_at.astimezone(NY)
    assert ride == datetime(2026, 11, 30, 20, 45, tzinfo=NY)
    assert "evening before" in plan[("infusion-ride-sms", "sms")].data["note"]


def test_cancelled_sessions_get_nothing_and_completed_get_only_checkins() -> None:
    start = datetime(2026, 12, 1, 9, 0, tzinfo=NY)
    assert (
        plan_session(
            infusion("s1", start, "cancelled"),
            derive_series([], 6).get("x") or derive_series([infusion("s1", start)], 6)["s1"],
            POLICY,
            NY,
        )
        == []
    )
    s = infusion("s1", start, "completed")
    kinds = {p.kind for p in plan_session(s, derive_series([s], 6)["s1"], POLICY, NY)}
    assert kinds == {"checkin"}
    s = infusion("s1", start, "no_show")
    assert plan_session(s, derive_series([s], 6)["s1"], POLICY, NY) == []


def test_reschedule_changes_every_dedupe_key() -> None:
    s = infusion("s1", datetime(2026, 12, 1, 9, 0, tzinfo=NY))
    moved = replace(s, starts_at=s.starts_at + timedelta(hours=2))
    pos = derive_series([s], 6)["s1"]
    keys = {p.dedupe_key for p in plan_session(s, pos, POLICY, NY)}
    new_keys = {p.dedupe_key for p in plan_session(moved, pos, POLICY, NY)}
    assert keys and new_keys and not keys & new_keys


def test_series_derivation_skips_cancelled_and_respects_given_values() -> None:
    base = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    sessions = [infusion(f"s{i}", base + timedelta(days=2 * i)) for i in range(8)]
    sessions[1] = replace(sessions[1], status="cancelled")
    sessions[7] = replace(sessions[7], phase="initial", series_number=42)
    pos = derive_series(sessions, 6)
    assert [pos[f"s{i}"].series_number for i in range(7)] == [1, None, 2, 3, 4, 5, 6]
    assert pos["s6"].phase == "initial"
    assert pos["s7"].series_number == 42 and pos["s7"].phase == "initial"
    consult = replace(sessions[0], id="c1", kind="consultation")
    assert derive_series([consult], 6)["c1"].series_number is None


@given(
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)),
    st.sampled_from(ZONES),
    st.sampled_from(ZONES),
    st.integers(min_value=15, max_value=240),
)
@settings(max_examples=300, deadline=None)
def test_plan_invariants_across_zones(
    local_start: datetime, clinic_zone: str, patient_zone: str, duration: int
) -> None:
    """For any session: reminders before it, check-ins after it, no SMS in the
    recipient's quiet hours, and unique keys (patient and clinic may be in different zones)."""
    clinic_tz = ZoneInfo(clinic_zone)
    start = local_start.replace(second=0, microsecond=0, tzinfo=clinic_tz).astimezone(UTC)
    s = replace(infusion("s1", start), duration_minutes=duration, location_id="loc")
    patient = SimpleNamespace(
        id="p1", timezone=patient_zone, initial_series_size=6, maintenance_interval_days=28
    )
    planned = plan_patient(
        patient=patient,
        sessions=[s],
        location_zones={"loc": clinic_zone},
        policy=POLICY,
        default_tz=NY,
        now=start - timedelta(days=10),
    )
    tz = ZoneInfo(patient_zone)
    assert len({p.dedupe_key for p in planned}) == len(planned) == 4
    for p in planned:
        if p.kind == "reminder":
            assert p.due_at < s.starts_at
            assert p.not_after == s.starts_at
        else:
            assert p.due_at >= s.ends_at
        quiet = POLICY.quiet(p.channel)
        if quiet is not None:
            assert quiet_period(p.due_at, quiet, tz) is None, (p.rule, p.due_at.astimezone(tz))


def test_recipient_zone_prefers_patient_then_location() -> None:
    assert (
        recipient_zone(patient_tz="Europe/London", location_tz="America/New_York", default=NY).key
        == "Europe/London"
    )
    assert (
        recipient_zone(patient_tz=None, location_tz="Australia/Sydney", default=NY).key
        == "Australia/Sydney"
    )
    assert recipient_zone(patient_tz=None, location_tz=None, default=NY) is NY


def completed_series(n: int, last: datetime) -> list[SessionFacts]:
    return [
        infusion(f"s{i}", last - timedelta(days=3 * (n - 1 - i)), "completed") for i in range(n)
    ]


def test_nudges_after_the_initial_series() -> None:
    last = datetime(2026, 11, 2, 9, 0, tzinfo=NY)
    sessions = completed_series(6, last)
    nudges = plan_nudges(
        patient_id="p1",
        sessions=sessions,
        initial_series_size=6,
        maintenance_interval_days=28,
        policy=POLICY,
        tz=NY,
        now=last + timedelta(days=1),
    )
    local = [n.due_at.astimezone(NY) for n in nudges]
    # last + 28 days - 7 days lead = 2026-11-23, then every 7 days, 3 times, at 10:00 local.
    assert local == [
        datetime(2026, 11, 23, 10, tzinfo=NY),
        datetime(2026, 11, 30, 10, tzinfo=NY),
        datetime(2026, 12, 7, 10, tzinfo=NY),
    ]
    assert all(n.kind == "nudge" and n.session_id is None for n in nudges)


class NudgeArgs(TypedDict):
    """The keyword arguments of ``plan_nudges`` other than ``sessions``."""

    patient_id: str
    initial_series_size: int
    maintenance_interval_days: int
    policy: Policy
    tz: ZoneInfo
    now: datetime


def test_no_nudges_when_booked_or_series_incomplete() -> None:
    last = datetime(2026, 11, 2, 9, 0, tzinfo=NY)
    sessions = completed_series(6, last)
    booked = [*sessions, infusion("s9", last + timedelta(days=20))]
    common: NudgeArgs = {
        "patient_id": "p1",
        "initial_series_size": 6,
        "maintenance_interval_days": 28,
        "policy": POLICY,
        "tz": NY,
        "now": last + timedelta(days=1),
    }
    assert plan_nudges(sessions=booked, **common) == []
    assert plan_nudges(sessions=completed_series(5, last), **common) == []
    # A new completed session starts a new cycle with new keys.
    later = [*sessions, infusion("s9", last + timedelta(days=30), "completed")]
    first = {n.dedupe_key for n in plan_nudges(sessions=sessions, **common)}
    later_args: NudgeArgs = {**common, "now": last + timedelta(days=31)}
    second = {n.dedupe_key for n in plan_nudges(sessions=later, **later_args)}
    assert first and second and not first & second


def test_nudge_time_is_local_to_the_patient() -> None:
    tz = ZoneInfo("Australia/Sydney")
    last = datetime(2026, 9, 20, 9, 0, tzinfo=tz)
    nudges = plan_nudges(
        patient_id="p1",
        sessions=completed_series(6, last),
        initial_series_size=6,
        maintenance_interval_days=28,
        policy=POLICY,
        tz=tz,
        now=last,
    )
    assert {n.due_at.astimezone(tz).time() for n in nudges} == {time(10, 0)}
