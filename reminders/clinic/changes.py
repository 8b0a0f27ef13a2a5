"""How clinic-data writers tell the planner that something changed (incremental planning)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import update
from sqlalchemy.orm import Session

from reminders.db.engine import among
from reminders.db.models import Patient


def mark_patients_dirty(db: Session, patient_ids: Iterable[str]) -> None:
    """Queue these patients for re-planning. Call after any change to a patient, one of
    their sessions, or a location they use; the planner re-plans only marked patients."""
    ids = sorted(set(patient_ids))
    for start in range(0, len(ids), 5000):
        db.execute(
            update(Patient)
            .where(among(db, Patient.id, ids[start : start + 5000]))
            .values(needs_plan=True, change_seq=Patient.change_seq + 1)
            .execution_options(synchronize_session=False)
        )
