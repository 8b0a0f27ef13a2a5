"""The planner against real databases: idempotent, incremental, and honest counts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from reminders.clinic.changes import mark_patients_dirty
from reminders.db.models import Message, Patient, TreatmentSession
from reminders.planning.plan_pass import plan_pass
from reminders.runtime import Runtime
from reminders.settings import Settings

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def seed(db: Session, patients: int) -> None:
    for i in range(patients):
        db.add(Patient(id=f"p{i}", first_name="P", phone=f"+1410555{i:04d}", sms_consent=True))
        db.flush()
        db.add(
            TreatmentSession(
                id=f"s{i}", patient_id=f"p{i}", starts_at=NOW + timedelta(days=5, hours=i % 7)
            )
        )
    db.commit()


def test_plan_pass_is_idempotent_and_incremental(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    policy = Runtime(settings).policy
    with session_factory() as db:
        seed(db, 30)
        first = plan_pass(db, policy=policy, default_tz=settings.zone, now=NOW)
        assert (first.patients, first.inserted) == (30, 120)  # 4 messages per infusion
        again = plan_pass(db, policy=policy, default_tz=settings.zone, now=NOW)
        assert (again.patients, again.inserted) == (0, 0)  # nothing marked: nothing looked at
        mark_patients_dirty(db, ["p1", "p2"])
        db.commit()
        forced = plan_pass(db, policy=policy, default_tz=settings.zone, now=NOW)
        assert (forced.patients, forced.inserted, forced.cancelled) == (2, 0, 0)
        assert db.scalar(select(func.count()).select_from(Message)) == 120
        # A reschedule: four new messages, four cancelled.
        db.execute(
            update(TreatmentSession)
            .where(TreatmentSession.id == "s3")
            .values(starts_at=NOW + timedelta(days=6))
        )
        mark_patients_dirty(db, ["p3"])
        db.commit()
        moved = plan_pass(db, policy=policy, default_tz=settings.zone, now=NOW)
        assert (moved.inserted, moved.cancelled) == (4, 4)


@pytest.mark.parametrize(
    "db_url", ["postgresql"], indirect=True
)  # SQLite serialises writers: no such race
def test_a_change_during_planning_is_not_lost(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    """The planner clears needs_plan only if change_seq is what it read."""
    policy = Runtime(settings).policy
    with session_factory() as db:
        seed(db, 1)
        db.execute(update(Patient).values(change_seq=5))
        db.commit()
    with session_factory() as db:
        # Simulate an import that lands between the planner's read and its clear.
        from reminders.planning import plan_pass as planner

        original = planner._plan_batch

        def racing(db: Session, patients: Sequence[Any], *args: Any, **kwargs: Any) -> None:
            original(db, patients, *args, **kwargs)
            with session_factory() as other:
                mark_patients_dirty(other, ["p0"])
                other.commit()

        planner._plan_batch = racing
        try:
            db.commit()
            plan_pass(db, policy=policy, default_tz=settings.zone, now=NOW)
        finally:
            planner._plan_batch = original
    with session_factory() as db:
        assert db.scalar(select(Patient.needs_plan).where(Patient.id == "p0")) is True
