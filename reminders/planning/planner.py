"""Sessions in, planned messages out: the planning decisions, as pure functions.

Policy and facts in, :class:`PlannedMessage` out (:func:`plan_session`,
:func:`plan_nudges`, :func:`derive_series`, :func:`plan_patient`); no database and no
clock. :mod:`reminders.planning.plan_pass` applies them to the outbox. The dedupe key
(rule, channel, session, start time) makes planning idempotent: a reschedule plans new
keys and the old ones are cancelled. A :class:`PlanMemo` lets sessions at the same time in the
same zone share their time arithmetic (the same results, faster).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from reminders.clinic.records import ACTIVE_SESSION_STATUSES
from reminders.planning.policy import FixedTime, Offset, Policy, Rule
from reminders.planning.timecalc import (
    fixed_local,
    place_outside_quiet,
    recipient_zone,
    shift,
    to_local_instant,
)


@dataclass(frozen=True, slots=True)
class SessionFacts:
    id: str
    patient_id: str
    starts_at: datetime
    duration_minutes: int
    kind: str
    status: str
    phase: str | None = None
    series_number: int | None = None
    location_id: str | None = None

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.duration_minutes)


@dataclass(frozen=True, slots=True)
class SeriesPosition:
    phase: str
    series_number: int | None
    series_size: int


@dataclass(frozen=True, slots=True)
class PlannedMessage:
    dedupe_key: str
    rule: str
    kind: str
    channel: str
    template: str
    due_at: datetime
    not_after: datetime | None
    patient_id: str
    session_id: str | None
    session_starts_at: datetime | None
    data: dict[str, Any] = field(default_factory=dict)


def session_key(rule: str, channel: str, session_id: str, starts_at: datetime) -> str:
    """The dedupe key: a new start time means new messages (and the old ones are cancelled)."""
    return f"{rule}|{channel}|{session_id}|{_key_stamp(starts_at)}"


@lru_cache(maxsize=65536)
def _key_stamp(starts_at: datetime) -> str:
    return f"{starts_at.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def nudge_key(rule: str, channel: str, patient_id: str, anchor_session_id: str, number: int) -> str:
    return f"{rule}|{channel}|nudge|{patient_id}|{anchor_session_id}|{number}"


def derive_series(
    sessions: Sequence[SessionFacts], initial_series_size: int
) -> dict[str, SeriesPosition]:
    """Phase and series number for each session, where the clinic did not give them.

    Infusions are numbered by start time among the patient's non-cancelled infusions;
    the first ``initial_series_size`` are the initial series, the rest maintenance.
    """
    positions: dict[str, SeriesPosition] = {}
    count = 0
    for s in sorted(sessions, key=lambda s: (s.starts_at, s.id)):
        counted = s.kind == "infusion" and s.status != "cancelled"
        if counted:
            count += 1
        number = s.series_number if s.series_number is not None else (count if counted else None)
        if s.phase in ("initial", "maintenance"):
            phase = s.phase
        else:
            reference = number if number is not None else count + 1
            phase = "initial" if reference <= initial_series_size else "maintenance"
        positions[s.id] = SeriesPosition(phase, number, initial_series_size)
    return positions


def _rule_due(rule: Rule, session: SessionFacts, tz: ZoneInfo) -> datetime:
    when = rule.when
    assert when is not None
    if isinstance(when, FixedTime):
        anchor = session.starts_at if when.day < 0 else session.ends_at
        return fixed_local(anchor, when, tz)
    assert isinstance(when, Offset)
    anchor = session.starts_at if when.before else session.ends_at
    return shift(anchor, when, tz)


# One message a session gets, as far as it depends on the session's time only: rule, kind,
# channel, template, pre-session, due at, not after (None for pre-session messages: the
# session's own start), note. A plain tuple: cheaper to make than an object.
_Timing = tuple[str, str, str, str, bool, datetime, datetime | None, str | None]


class PlanMemo:
    """Reuses the time arithmetic of sessions that start at the same instant, last as long,
    are planned in the same zone and select the same rules (kind, status, phase): clinics book
    on a grid, so a plan pass over many upcoming sessions computes each combination once.

    Only for one policy (another policy bypasses it) and bounded (it starts afresh when full).
    When it stops paying (fewer hits than misses over ``PROBE`` lookups, as for a history of
    past sessions at scattered times) it steps aside for ``REST`` sessions, then tries again.
    Pass one to :func:`plan_patient` or :func:`plan_session`; results are identical without it.
    """

    PROBE = 1024
    REST = 8192
    __slots__ = ("policy", "max_entries", "_timings", "_hits", "_misses", "_resting")

    def __init__(self, policy: Policy, max_entries: int = 8192) -> None:
        self.policy = policy
        self.max_entries = max_entries
        self._timings: dict[tuple[Any, ...], tuple[_Timing, ...]] = {}
        self._hits = self._misses = self._resting = 0

    def timings(self, session: SessionFacts, phase: str, tz: ZoneInfo) -> tuple[_Timing, ...]:
        if self._resting:
            self._resting -= 1
            return _session_timings(session, phase, self.policy, tz)
        key = (
            session.starts_at,
            session.duration_minutes,
            tz,
            session.kind,
            session.status,
            phase,
        )
        found = self._timings.get(key)
        if found is not None:
            self._hits += 1
            return found
        found = _session_timings(session, phase, self.policy, tz)
        if len(self._timings) >= self.max_entries:
            self._timings.clear()
        self._timings[key] = found
        self._misses += 1
        if self._misses + self._hits >= self.PROBE:
            if self._hits < self._misses:
                self._resting = self.REST
            self._hits = self._misses = 0
        return found


def _session_timings(
    session: SessionFacts, phase: str, policy: Policy, tz: ZoneInfo
) -> tuple[_Timing, ...]:
    """The rules, channels and times a (not cancelled) session gets (pure)."""
    timings: list[_Timing] = []
    for rule in policy.rules:
        if not rule.applies_to(kind=session.kind, phase=phase):
            continue
        pre_session = rule.kind == "reminder"
        if pre_session and session.status not in ACTIVE_SESSION_STATUSES:
            continue
        if rule.kind == "checkin" and session.status == "no_show":
            continue
        due = _rule_due(rule, session, tz)
        for channel in rule.channels:
            placement = place_outside_quiet(
                due,
                pre_session=pre_session,
                session_start=session.starts_at,
                quiet=policy.quiet(channel),
                tz=tz,
                min_lead=policy.min_lead,
                margin=policy.quiet_margin,
            )
            not_after = None if pre_session else placement.due_at + policy.expiry_for(rule)
            timings.append(
                (
                    rule.name,
                    rule.kind,
                    channel,
                    rule.template,
                    pre_session,
                    placement.due_at,
                    not_after,
                    placement.note,
                )
            )
    return tuple(timings)


def plan_session(
    session: SessionFacts,
    position: SeriesPosition,
    policy: Policy,
    tz: ZoneInfo,
    memo: PlanMemo | None = None,
) -> list[PlannedMessage]:
    """Every reminder and check-in one session gets under the policy (pure)."""
    if session.status == "cancelled":
        return []
    if memo is not None and memo.policy is policy:
        timings = memo.timings(session, position.phase, tz)
    else:
        timings = _session_timings(session, position.phase, policy, tz)
    planned: list[PlannedMessage] = []
    for rule, kind, channel, template, pre_session, due_at, not_after, note in timings:
        data: dict[str, Any] = {
            "series_number": position.series_number,
            "series_size": position.series_size,
            "phase": position.phase,
        }
        if note:
            data["note"] = note
        planned.append(
            PlannedMessage(
                dedupe_key=session_key(rule, channel, session.id, session.starts_at),
                rule=rule,
                kind=kind,
                channel=channel,
                template=template,
                due_at=due_at,
                not_after=session.starts_at if pre_session else not_after,
                patient_id=session.patient_id,
                session_id=session.id,
                session_starts_at=session.starts_at,
                data=data,
            )
        )
    return planned


def series_complete(sessions: Sequence[SessionFacts], initial_series_size: int) -> bool:
    done = sum(1 for s in sessions if s.kind == "infusion" and s.status == "completed")
    return done >= initial_series_size


def has_future_session(sessions: Iterable[SessionFacts], now: datetime) -> bool:
    return any(s.status in ACTIVE_SESSION_STATUSES and s.starts_at > now for s in sessions)


def plan_nudges(
    *,
    patient_id: str,
    sessions: Sequence[SessionFacts],
    initial_series_size: int,
    maintenance_interval_days: int,
    policy: Policy,
    tz: ZoneInfo,
    now: datetime,
) -> list[PlannedMessage]:
    """Maintenance-due nudges for one patient (pure).

    Due when the initial series is complete and nothing is booked: at the rule's local
    time on ``last completed + interval - lead`` days, then every ``every`` days, ``max``
    times. The cycle is keyed by the last completed session, so a new completed session
    starts a new cycle and booking any session stops it.
    """
    if not policy.nudge_rules or has_future_session(sessions, now):
        return []
    if not series_complete(sessions, initial_series_size):
        return []
    completed = [s for s in sessions if s.status == "completed"]
    last = max(completed, key=lambda s: (s.starts_at, s.id))
    last_day = last.starts_at.astimezone(tz).date()
    planned: list[PlannedMessage] = []
    for rule in policy.nudge_rules:
        first_day = last_day + timedelta(days=maintenance_interval_days - rule.lead)
        for n in range(rule.max):
            due = to_local_instant(first_day + timedelta(days=n * rule.every), rule.at, tz)
            for channel in rule.channels:
                placement = place_outside_quiet(
                    due,
                    pre_session=False,
                    session_start=None,
                    quiet=policy.quiet(channel),
                    tz=tz,
                    min_lead=policy.min_lead,
                    margin=policy.quiet_margin,
                )
                data: dict[str, Any] = {"nudge_number": n + 1, "after_session": last.id}
                if placement.note:
                    data["note"] = placement.note
                planned.append(
                    PlannedMessage(
                        dedupe_key=nudge_key(rule.name, channel, patient_id, last.id, n + 1),
                        rule=rule.name,
                        kind="nudge",
                        channel=channel,
                        template=rule.template,
                        due_at=placement.due_at,
                        not_after=placement.due_at + policy.expiry_for(rule),
                        patient_id=patient_id,
                        session_id=None,
                        session_starts_at=None,
                        data=data,
                    )
                )
    return planned


def plan_patient(
    *,
    patient: Any,
    sessions: Sequence[SessionFacts],
    location_zones: dict[str, str | None],
    policy: Policy,
    default_tz: ZoneInfo,
    now: datetime,
    memo: PlanMemo | None = None,
) -> list[PlannedMessage]:
    """Everything one patient should get, as of ``now`` (pure; ``memo`` only saves time)."""
    positions = derive_series(sessions, patient.initial_series_size)
    planned: list[PlannedMessage] = []
    for s in sessions:
        tz = recipient_zone(
            patient_tz=patient.timezone,
            location_tz=location_zones.get(s.location_id or ""),
            default=default_tz,
        )
        planned.extend(plan_session(s, positions[s.id], policy, tz, memo))
    last_location = max(sessions, key=lambda s: s.starts_at).location_id if sessions else None
    nudge_tz = recipient_zone(
        patient_tz=patient.timezone,
        location_tz=location_zones.get(last_location or ""),
        default=default_tz,
    )
    planned.extend(
        plan_nudges(
            patient_id=patient.id,
            sessions=sessions,
            initial_series_size=patient.initial_series_size,
            maintenance_interval_days=patient.maintenance_interval_days,
            policy=policy,
            tz=nudge_tz,
            now=now,
        )
    )
    return planned
