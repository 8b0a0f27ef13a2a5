"""The database side of planning: apply the pure planner to every patient marked
``needs_plan``, idempotently, through :mod:`reminders.outbox.store` and
:mod:`reminders.outbox.bulk`.

Only patients whose data changed are looked at (incremental planning): import and sync
set ``needs_plan`` and bump ``change_seq``, and a pass clears the flag only if
``change_seq`` is still what it read. A changed policy re-plans everyone once.

Patients go in batches (``batch_size``), each batch one transaction: its moves, revivals and
cancellations are one ``executemany`` each, its new rows one statement on PostgreSQL
(``INSERT ... SELECT FROM unnest``) or a DB-API ``executemany`` on SQLite. The planner's time
arithmetic is shared between sessions at the same time in the same zone
(:class:`reminders.planning.planner.PlanMemo`). On PostgreSQL a pass that grew the outbox by
a tenth or more (a first plan) ends with ``ANALYZE messages``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, select, text, update
from sqlalchemy.orm import Session

from reminders.db.engine import among
from reminders.db.models import Location, Message, Patient, TreatmentSession, WorkerState
from reminders.db.types import utcnow
from reminders.logs import event
from reminders.outbox import bulk, store
from reminders.outbox.status import PATIENT_KINDS
from reminders.planning.planner import (
    PlanMemo,
    PlannedMessage,
    SessionFacts,
    has_future_session,
    plan_patient,
)
from reminders.planning.policy import Policy

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


# PostgreSQL: a pass that inserted at least this many rows, and at least this share of the
# outbox's estimated size, refreshes its planner statistics (autovacuum's own analyze threshold
# is 10%, but it only looks once a minute).
ANALYZE_MIN_INSERTS = 1_000
ANALYZE_MIN_GROWTH = 0.10


def _analyze_if_grown(db: Session, inserted: int) -> None:
    """``ANALYZE messages`` after a bulk load, as PostgreSQL advises, instead of waiting for
    autovacuum. A table never analyzed has no row estimate (``reltuples`` -1), and until it has
    one the single-row updates ``WHERE id = ... AND status = ...`` (re-planning, dispatch) may
    walk the ``(status, due_at)`` index instead of the primary key: 1.5 ms a row with 8,000
    planned rows, more with more. Skipped when another ANALYZE or VACUUM holds the table; never
    fails the pass (the table's owner may be another role)."""
    if inserted < ANALYZE_MIN_INSERTS:
        return
    try:
        estimate = db.scalar(
            text("SELECT reltuples FROM pg_class WHERE oid = 'messages'::regclass")
        )
        if estimate is not None and estimate >= 0 and inserted < ANALYZE_MIN_GROWTH * estimate:
            db.rollback()
            return
        db.execute(text("ANALYZE (SKIP_LOCKED) messages"))
        db.commit()
    except Exception as exc:  # noqa: BLE001 - statistics are an optimisation, never a failure
        db.rollback()
        log.debug("ANALYZE messages skipped: %s", type(exc).__name__)


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
    memo = PlanMemo(policy)
    last_id = ""
    while True:
        patients = db.execute(
            select(
                Patient.id,
                Patient.timezone,
                Patient.initial_series_size,
                Patient.maintenance_interval_days,
                Patient.change_seq,
            )
            .where(Patient.needs_plan.is_(True), Patient.id > last_id)
            .order_by(Patient.id)
            .limit(batch_size)
        ).all()
        if not patients:
            break
        last_id = patients[-1].id
        _plan_batch(db, patients, locations, policy, default_tz, now, report, memo=memo)
        # Only if nothing changed the patient meanwhile (change_seq): else plan again next pass.
        db.connection().execute(_PLANNED, [{"b_id": p.id, "b_seq": p.change_seq} for p in patients])
        db.commit()
        report.patients += len(patients)
    db.commit()
    if db.get_bind().dialect.name == "postgresql":
        _analyze_if_grown(db, report.inserted)
    if report.patients:
        event(
            log,
            "plan pass",
            patients=report.patients,
            inserted=report.inserted,
            cancelled=report.cancelled,
            moved=report.updated,
            restored=report.revived,
        )
    return report


def _plan_batch(
    db: Session,
    patients: Sequence[Any],
    locations: dict[str, str | None],
    policy: Policy,
    default_tz: ZoneInfo,
    now: datetime,
    report: PlanReport,
    memo: PlanMemo | None = None,
) -> None:
    ids = [p.id for p in patients]
    sessions_by_patient: dict[str, list[SessionFacts]] = defaultdict(list)
    for row in db.execute(
        select(
            TreatmentSession.id,
            TreatmentSession.patient_id,
            TreatmentSession.starts_at,
            TreatmentSession.duration_minutes,
            TreatmentSession.kind,
            TreatmentSession.status,
            TreatmentSession.phase,
            TreatmentSession.series_number,
            TreatmentSession.location_id,
        ).where(among(db, TreatmentSession.patient_id, ids))
    ):
        sessions_by_patient[row.patient_id].append(SessionFacts(*row))

    existing_by_key: dict[str, Any] = {}
    for existing in db.execute(
        select(
            Message.id,
            Message.dedupe_key,
            Message.status,
            Message.reason,
            Message.kind,
            Message.session_id,
            Message.session_starts_at,
            Message.due_at,
            Message.not_after,
            Message.patient_id,
        )
        # By patient only: a status condition here makes SQLite pick the (status, due_at)
        # index and scan every planned message for each batch.
        .where(among(db, Message.patient_id, ids))
    ):
        if existing.kind in PATIENT_KINDS and (
            existing.status == "planned"
            or (existing.status == "cancelled" and existing.reason in REVIVABLE_REASONS)
        ):
            existing_by_key[existing.dedupe_key] = existing

    inserts: list[PlannedMessage] = []
    revivals: list[bulk.NewTimes] = []
    moves: list[bulk.NewTimes] = []
    wanted: set[str] = set()
    timestamp = utcnow()
    for patient in patients:
        sessions = sessions_by_patient.get(patient.id, [])
        for pm in plan_patient(
            patient=patient,
            sessions=sessions,
            location_zones=locations,
            policy=policy,
            default_tz=default_tz,
            now=now,
            memo=memo,
        ):
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
                    revivals.append(bulk.NewTimes(current.id, pm.due_at, pm.not_after, pm.data))
                    report.revived += 1
            elif current.due_at != pm.due_at or current.not_after != pm.not_after:
                moves.append(bulk.NewTimes(current.id, pm.due_at, pm.not_after, pm.data))
                report.updated += 1

    sessions_by_id = {s.id: s for ss in sessions_by_patient.values() for s in ss}
    future_by_patient = {
        pid: has_future_session(ss, now) for pid, ss in sessions_by_patient.items()
    }
    cancels: list[tuple[int, str]] = []
    for key, row in existing_by_key.items():
        if key in wanted or row.status != "planned":
            continue
        reason = _cancel_reason(row, sessions_by_id, future_by_patient.get(row.patient_id, False))
        cancels.append((row.id, reason))
    report.cancelled += len(cancels)
    # One executemany each for the whole batch (reminders/outbox/bulk.py), every row still
    # conditional on its status.
    bulk.revive_cancelled(db, revivals, at=timestamp)
    bulk.move_planned(db, moves, at=timestamp)
    bulk.cancel_planned(db, cancels, at=timestamp)
    report.inserted += store.insert_planned(db, inserts, timestamp)
