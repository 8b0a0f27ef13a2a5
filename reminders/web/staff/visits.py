"""Actions on a patient's visit that the front desk takes on the phone: mark it confirmed.

``POST /staff/sessions/{id}/confirm`` (form: ``csrf_token``, ``next``): the session becomes
``confirmed``, ``confirmed_via = "phone"``, with who did it in the audit log; the
unconfirmed-visit inbox item for it, if open, is acknowledged with a note saying so. Used by
the Today page and the patient page.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, HTTPException
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from reminders.clinic.records import ACTIVE_SESSION_STATUSES
from reminders.db.models import AuditLog, StaffTask, TreatmentSession
from reminders.db.types import utcnow
from reminders.web.deps import get_write_db
from reminders.web.staff.common import Staff, posted, safe_next, see_other

router = APIRouter()


def confirm_by_phone(db: Session, session: TreatmentSession, *, actor: str) -> bool:
    """Mark ``session`` confirmed by phone; False when it is not an active visit."""
    if session.status not in ACTIVE_SESSION_STATUSES:
        return False
    now = utcnow()
    was = session.status
    session.status = "confirmed"
    session.confirmed_at = session.confirmed_at or now
    session.confirmed_via = session.confirmed_via if was == "confirmed" else "phone"
    for task in db.scalars(
        select(StaffTask).where(
            StaffTask.session_id == session.id,
            StaffTask.kind == "unconfirmed",
            StaffTask.acknowledged_at.is_(None),
        )
    ):
        task.acknowledged_at = now
        task.acknowledged_by = actor
        task.note = "confirmed by phone"
    db.add(
        AuditLog(
            actor=actor,
            action="session.confirm",
            entity="session",
            entity_id=session.id,
            detail={"via": "phone", "was": was},
        )
    )
    return True


@router.post("/sessions/{session_id}/confirm")
def confirm(
    session_id: str,
    next: str = Form(""),
    staff: Staff = Depends(posted),
    db: Session = Depends(get_write_db),
) -> Response:
    session = db.get(TreatmentSession, session_id)
    if session is None:
        raise HTTPException(status_code=404, detail="There is no such visit.")
    if not confirm_by_phone(db, session, actor=staff.user.email):
        raise HTTPException(
            status_code=409, detail="This visit was cancelled or has already taken place."
        )
    db.commit()
    return see_other(safe_next(next or f"/staff/patients/{session.patient_id}"))
