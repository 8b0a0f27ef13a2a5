"""Sessions in, planned messages out.

The decisions are pure functions (:func:`plan_session`, :func:`plan_nudges`,
:func:`derive_series`): policy and facts in, :class:`PlannedMessage` out. The
database side (:func:`plan_pass`) applies them idempotently: the unique
``dedupe_key`` (rule, channel, session, start time) means planning twice inserts
nothing, a reschedule plans new keys and cancels the old ones, and only patients
marked ``needs_plan`` are looked at (incremental planning).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from reminders.clinic.records import ACTIVE_SESSION_STATUSES
from reminders.db.engine import among
from reminders.db.models import Location, Message, Patient, TreatmentSession, WorkerState
from reminders.db.types import sqlite_time, utcnow
from reminders.logs import event
from reminders.outbox.status import PATIENT_KINDS
from reminders.planning.policy import FixedTime, Offset, Policy, Rule
from reminders.planning.timecalc import (
    fixed_local,
    place_outside_quiet,
    recipient_zone,
    shift,
    to_local_instant,
)

log = logging.getLogger(__name__)

# Cancellations the planner itself made; if the plan wants the message again, it comes back.
REVIVABLE_REASONS = (
    "rescheduled",
    "session_cancelled",
    "session_booked",
    "policy_changed",
    "session_completed",
    "session_no_show",
    "nudge_cycle_changed",
    "session_deleted",
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


def derive_series(sessions: Sequence[SessionFacts], initial_series_size: int) -> dict[str, SeriesPosition]:
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


def plan_session(
    session: SessionFacts, position: SeriesPosition, policy: Policy, tz: ZoneInfo
) -> list[PlannedMessage]:
    """Every reminder and check-in one session gets under the policy (pure)."""
    if session.status == "cancelled":
        return []
    planned: list[PlannedMessage] = []
    for rule in policy.rules:
        if not rule.applies_to(kind=session.kind, phase=position.phase):
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
            not_after = session.starts_at if pre_session else placement.due_at + policy.expiry_for(rule)
            data: dict[str, Any] = {
                "series_number": position.series_number,
                "series_size": position.series_size,
                "phase": position.phase,
            }
            if placement.note:
                data["note"] = placement.note
            planned.append(
                PlannedMessage(
                    dedupe_key=session_key(rule.name, channel, session.id, session.starts_at),
                    rule=rule.name,
                    kind=rule.kind,
                    channel=channel,
                    template=rule.template,
                    due_at=placement.due_at,
                    not_after=not_after,
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
) -> list[PlannedMessage]:
    """Everything one patient should get, as of ``now`` (pure)."""
    positions = derive_series(sessions, patient.initial_series_size)
    planned: list[PlannedMessage] = []
    for s in sessions:
        tz = recipient_zone(
            patient_tz=patient.timezone, location_tz=location_zones.get(s.location_id or ""), default=default_tz
        )
        planned.extend(plan_session(s, positions[s.id], policy, tz))
    last_location = max(sessions, key=lambda s: s.starts_at).location_id if sessions else None
    nudge_tz = recipient_zone(
        patient_tz=patient.timezone, location_tz=location_zones.get(last_location or ""), default=default_tz
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


# --- the database side -----------------------------------------------------------------------


@dataclass
class PlanReport:
    patients: int = 0
    inserted: int = 0
    updated: int = 0
    cancelled: int = 0
    revived: int = 0
    skipped_stale: int = 0

    def line(self) -> str:
        return (
            f"planned {self.patients} patients: {self.inserted} new, {self.updated} moved, "
            f"{self.cancelled} cancelled, {self.revived} restored"
        )


POLICY_KEY = "policy_fingerprint"


def _sync_policy_fingerprint(db: Session, policy: Policy) -> None:
    """A changed policy re-plans everyone once."""
    fingerprint = policy.fingerprint()
    state = db.get(WorkerState, POLICY_KEY)
    if state is not None and state.value == fingerprint:
        return
    db.execute(update(Patient).values(needs_plan=True, change_seq=Patient.change_seq + 1))
    if state is None:
        db.add(WorkerState(key=POLICY_KEY, value=fingerprint))
    else:
        state.value = fingerprint
    db.commit()


_patients = cast(Table, Patient.__table__)
_PLANNED = (
    update(_patients)
    .where(_patients.c.id == bindparam("b_id"), _patients.c.change_seq == bindparam("b_seq"))
    .values(needs_plan=False)
)


_PLANNED_COLUMNS = ("dedupe_key", "patient_id", "session_id", "session_starts_at", "rule", "kind", "channel",
                    "template", "due_at", "not_after", "status", "attempts", "data", "created_at", "updated_at")
_SQLITE_INSERT_PLANNED = (
    f"INSERT INTO messages ({', '.join(_PLANNED_COLUMNS)}) VALUES ({', '.join('?' * len(_PLANNED_COLUMNS))}) "
    "ON CONFLICT (dedupe_key) DO NOTHING"
)


def _insert_planned(db: Session, planned: Sequence[PlannedMessage], timestamp: datetime) -> int:
    """The planner's hot path: new outbox rows, existing dedupe keys skipped; returns how many."""
    if not planned:
        return 0
    if db.get_bind().dialect.name != "sqlite":
        return _insert_ignore(db, [{
            "dedupe_key": pm.dedupe_key, "patient_id": pm.patient_id, "session_id": pm.session_id,
            "session_starts_at": pm.session_starts_at, "rule": pm.rule, "kind": pm.kind,
            "channel": pm.channel, "template": pm.template, "due_at": pm.due_at, "not_after": pm.not_after,
            "status": "planned", "attempts": 0, "data": pm.data, "created_at": timestamp, "updated_at": timestamp,
        } for pm in planned])
    # SQLite: a DB-API executemany with values already in their stored form (SQLAlchemy's
    # per-value processing costs more than SQLite's insert); rowcount = rows inserted.
    stamp = sqlite_time(timestamp)
    values = [
        (pm.dedupe_key, pm.patient_id, pm.session_id,
         None if pm.session_starts_at is None else sqlite_time(pm.session_starts_at), pm.rule, pm.kind,
         pm.channel, pm.template, sqlite_time(pm.due_at),
         None if pm.not_after is None else sqlite_time(pm.not_after), "planned", 0, json.dumps(pm.data),
         stamp, stamp)
        for pm in planned
    ]
    cursor = db.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(_SQLITE_INSERT_PLANNED, values)
        return max(int(cursor.rowcount), 0)
    finally:
        cursor.close()


def _insert_ignore(db: Session, rows: list[dict[str, Any]]) -> int:
    """Insert outbox rows, skipping dedupe keys that exist; returns how many were new."""
    if not rows:
        return 0
    dialect = db.get_bind().dialect.name
    table = cast(Table, Message.__table__)
    conn = db.connection()
    if dialect == "postgresql":
        # Batched multi-row VALUES; RETURNING lists only the rows the conflict did not skip.
        pg = postgresql.insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"])
        return len(conn.execute(pg.returning(table.c.id), rows).all())
    lite = sqlite.insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"])
    return max(int(conn.execute(lite, rows).rowcount), 0)


def _cancel_reason(msg: Any, sessions_by_id: dict[str, SessionFacts], future: bool) -> str:
    if msg.kind == "nudge":
        return "session_booked" if future else "nudge_cycle_changed"
    session = sessions_by_id.get(msg.session_id or "")
    if session is None:
        return "session_deleted"
    if session.status == "cancelled":
        return "session_cancelled"
    if msg.session_starts_at is not None and msg.session_starts_at != session.starts_at:
        return "rescheduled"
    if session.status in ("completed", "no_show"):
        return f"session_{session.status}"
    return "policy_changed"


def plan_pass(
    db: Session, *, policy: Policy, default_tz: ZoneInfo, now: datetime, batch_size: int = 500
) -> PlanReport:
    """Plan every patient marked ``needs_plan``.

    Idempotent and safe to run in several workers at once: inserts skip existing keys
    (``ON CONFLICT DO NOTHING``), and every update is conditional on the row still being
    ``planned``, so two planners reach the same result instead of fighting.
    """
    report = PlanReport()
    _sync_policy_fingerprint(db, policy)
    locations = {loc_id: tz for loc_id, tz in db.execute(select(Location.id, Location.timezone))}
    last_id = ""
    while True:
        patients = db.execute(
            select(Patient.id, Patient.timezone, Patient.initial_series_size,
                   Patient.maintenance_interval_days, Patient.change_seq)
            .where(Patient.needs_plan.is_(True), Patient.id > last_id)
            .order_by(Patient.id)
            .limit(batch_size)
        ).all()
        if not patients:
            break
        last_id = patients[-1].id
        _plan_batch(db, patients, locations, policy, default_tz, now, report)
        # Only if nothing changed the patient meanwhile (change_seq): else plan again next pass.
        db.connection().execute(_PLANNED, [{"b_id": p.id, "b_seq": p.change_seq} for p in patients])
        db.commit()
        report.patients += len(patients)
    db.commit()
    if report.patients:
        event(log, "plan pass", patients=report.patients, inserted=report.inserted,
              cancelled=report.cancelled, moved=report.updated, restored=report.revived)
    return report


def _plan_batch(
    db: Session,
    patients: Sequence[Any],
    locations: dict[str, str | None],
    policy: Policy,
    default_tz: ZoneInfo,
    now: datetime,
    report: PlanReport,
) -> None:
    ids = [p.id for p in patients]
    sessions_by_patient: dict[str, list[SessionFacts]] = defaultdict(list)
    for row in db.execute(
        select(
            TreatmentSession.id, TreatmentSession.patient_id, TreatmentSession.starts_at,
            TreatmentSession.duration_minutes, TreatmentSession.kind, TreatmentSession.status,
            TreatmentSession.phase, TreatmentSession.series_number, TreatmentSession.location_id,
        ).where(among(db, TreatmentSession.patient_id, ids))
    ):
        sessions_by_patient[row.patient_id].append(SessionFacts(*row))

    existing_by_key: dict[str, Any] = {}
    for existing in db.execute(
        select(Message.id, Message.dedupe_key, Message.status, Message.reason, Message.kind,
               Message.session_id, Message.session_starts_at, Message.due_at, Message.not_after,
               Message.patient_id)
        # By patient only: a status condition here makes SQLite pick the (status, due_at)
        # index and scan every planned message for each batch.
        .where(among(db, Message.patient_id, ids))
    ):
        if existing.kind in PATIENT_KINDS and (
            existing.status == "planned" or (existing.status == "cancelled" and existing.reason in REVIVABLE_REASONS)
        ):
            existing_by_key[existing.dedupe_key] = existing

    inserts: list[PlannedMessage] = []
    wanted: set[str] = set()
    timestamp = utcnow()
    for patient in patients:
        sessions = sessions_by_patient.get(patient.id, [])
        for pm in plan_patient(patient=patient, sessions=sessions, location_zones=locations,
                               policy=policy, default_tz=default_tz, now=now):
            wanted.add(pm.dedupe_key)
            current = existing_by_key.get(pm.dedupe_key)
            stale = pm.not_after is not None and pm.not_after <= now
            if current is None:
                if stale:
                    report.skipped_stale += 1
                    continue
                inserts.append(pm)
            elif current.status == "cancelled":
                if not stale:
                    db.execute(update(Message).where(Message.id == current.id, Message.status == "cancelled")
                               .values(status="planned", reason=None, due_at=pm.due_at,
                                       not_after=pm.not_after, data=pm.data, updated_at=timestamp)
                               .execution_options(synchronize_session=False))
                    report.revived += 1
            elif current.due_at != pm.due_at or current.not_after != pm.not_after:
                db.execute(update(Message).where(Message.id == current.id, Message.status == "planned",
                                                 Message.lease_owner.is_(None))
                           .values(due_at=pm.due_at, not_after=pm.not_after, data=pm.data,
                                   updated_at=timestamp)
                           .execution_options(synchronize_session=False))
                report.updated += 1

    sessions_by_id = {s.id: s for ss in sessions_by_patient.values() for s in ss}
    future_by_patient = {pid: has_future_session(ss, now) for pid, ss in sessions_by_patient.items()}
    for key, row in existing_by_key.items():
        if key in wanted or row.status != "planned":
            continue
        reason = _cancel_reason(row, sessions_by_id, future_by_patient.get(row.patient_id, False))
        db.execute(update(Message).where(Message.id == row.id, Message.status == "planned")
                   .values(status="cancelled", reason=reason, updated_at=timestamp,
                           lease_owner=None, lease_until=None)
                   .execution_options(synchronize_session=False))
        report.cancelled += 1
    for start in range(0, len(inserts), 1000):
        report.inserted += _insert_planned(db, inserts[start : start + 1000], timestamp)
