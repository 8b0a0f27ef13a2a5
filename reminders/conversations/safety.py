"""Safety checks the worker runs on every pass (small, idempotent, callable from tests).

``run_safety_checks(db, settings, now)`` re-alerts urgent staff tasks nobody acknowledged and
flags infusions starting soon that the patient has not confirmed. It commits its own work
(pass a plain Session, not one inside ``with db.begin()``) and returns how many things it did.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from reminders.conversations.replies import format_when
from reminders.conversations.tasks import create_alerts
from reminders.db.engine import rowcount
from reminders.db.models import StaffTask, TreatmentSession
from reminders.logs import event
from reminders.settings import Settings

log = logging.getLogger(__name__)

INFUSION_KINDS = ("infusion",)


def realert_unacknowledged(db: Session, settings: Settings, now: datetime) -> int:
    """Alert on-call staff again for urgent tasks unacknowledged for ``realert_minutes``."""
    cutoff = now - timedelta(minutes=settings.realert_minutes)
    due = list(
        db.scalars(
            select(StaffTask)
            .where(
                StaffTask.urgent.is_(True),
                StaffTask.acknowledged_at.is_(None),
                (StaffTask.last_alert_at.is_(None)) | (StaffTask.last_alert_at <= cutoff),
            )
            .order_by(StaffTask.id)
        )
    )
    done = 0
    for task in due:
        # Claim this round: only one worker moves alert_count from n to n+1.
        claimed = rowcount(
            db.execute(
                update(StaffTask)
                .where(
                    StaffTask.id == task.id,
                    StaffTask.alert_count == task.alert_count,
                    StaffTask.acknowledged_at.is_(None),
                )
                .values(last_alert_at=now)
                .execution_options(synchronize_session=False)
            )
        )
        if claimed != 1:
            continue
        create_alerts(db, settings, task, now)
        done += 1
        event(log, "urgent task re-alerted", task_id=task.id, alert_number=task.alert_count)
    db.commit()
    return done


def flag_unconfirmed(db: Session, settings: Settings, now: datetime) -> int:
    """One inbox item per infusion starting within ``unconfirmed_hours`` and still unconfirmed."""
    horizon = now + timedelta(hours=settings.unconfirmed_hours)
    sessions = list(
        db.scalars(
            select(TreatmentSession)
            .where(
                TreatmentSession.status == "scheduled",
                TreatmentSession.kind.in_(INFUSION_KINDS),
                TreatmentSession.starts_at > now,
                TreatmentSession.starts_at <= horizon,
            )
            .order_by(TreatmentSession.starts_at)
        )
    )
    if not sessions:
        return 0
    keys = {s.id: f"unconfirmed:{s.id}:{s.starts_at.isoformat()}" for s in sessions}
    existing = set(
        db.scalars(select(StaffTask.dedupe_key).where(StaffTask.dedupe_key.in_(keys.values())))
    )
    done = 0
    for session in sessions:
        key = keys[session.id]
        if key in existing:
            continue
        when = format_when(session.starts_at, settings.zone, "en")
        task = StaffTask(
            kind="unconfirmed",
            urgent=False,
            patient_id=session.patient_id,
            session_id=session.id,
            summary=(
                f"Infusion {session.id} for patient {session.patient_id} on {when} is not confirmed: "
                "please call about fasting, medications and the ride home."
            ),
            dedupe_key=key,
            created_at=now,
        )
        try:
            with db.begin_nested():  # another worker may have just flagged it
                db.add(task)
        except IntegrityError:
            continue
        if settings.unconfirmed_alert:
            create_alerts(db, settings, task, now)
        done += 1
        event(
            log,
            "unconfirmed infusion flagged",
            session_id=session.id,
            patient_id=session.patient_id,
        )
    db.commit()
    return done


def run_safety_checks(db: Session, settings: Settings, now: datetime) -> int:
    return realert_unacknowledged(db, settings, now) + flag_unconfirmed(db, settings, now)
