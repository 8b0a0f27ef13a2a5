"""How clinic-data writers tell the planner that something changed (incremental planning)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import update
from sqlalchemy.orm import Session

from reminders.models import Patient


def mark_patients_dirty(db: Session, patient_ids: Iterable[str]) -> None:
    """Queue these patients for re-planning. Call after any change to a patient, one of
    their sessions, or a location they use; the planner re-plans only marked patients."""
    ids = sorted(set(patient_ids))
    for start in range(0, len(ids), 500):
        db.execute(
            update(Patient)
            .where(Patient.id.in_(ids[start : start + 500]))
            .values(needs_plan=True, change_seq=Patient.change_seq + 1)
            .execution_options(synchronize_session=False)
        )
