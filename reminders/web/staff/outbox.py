"""The outbox in the console: upcoming and recent messages with filters, each with its
reason and delivery status; and the "failed" view, the patients staff should phone."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from reminders.db.models import Message, Patient
from reminders.db.types import utcnow
from reminders.outbox.status import MESSAGE_STATUSES
from reminders.web.deps import get_db, settings_of
from reminders.web.staff.common import Staff, render, signed_in

router = APIRouter()
PAGE_SIZE = 200
FAILED_DAYS = 14


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


@router.get("/outbox")
def outbox(
    request: Request,
    status: str = "",
    channel: str = "",
    rule: str = "",
    patient: str = "",
    date_from: str = "",
    date_to: str = "",
    staff: Staff = Depends(signed_in),
    db: Session = Depends(get_db),
) -> Response:
    zone = settings_of(request).zone
    query = select(Message, Patient).outerjoin(Patient, Patient.id == Message.patient_id)
    if status in MESSAGE_STATUSES:
        query = query.where(Message.status == status)
    if channel in ("sms", "email"):
        query = query.where(Message.channel == channel)
    if rule:
        query = query.where(Message.rule == rule)
    if patient:
        query = query.where(Message.patient_id == patient.strip())
    start, end = _day(date_from), _day(date_to)
    if start:
        query = query.where(Message.due_at >= datetime.combine(start, time(0), tzinfo=zone))
    if end:
        query = query.where(
            Message.due_at < datetime.combine(end + timedelta(days=1), time(0), tzinfo=zone)
        )
    rows = db.execute(
        query.order_by(Message.due_at.desc(), Message.id.desc()).limit(PAGE_SIZE)
    ).all()
    rules = sorted(set(db.scalars(select(Message.rule).distinct())))
    return render(
        request,
        "outbox.html",
        {
            "rows": rows,
            "statuses": MESSAGE_STATUSES,
            "rules": rules,
            "limit": PAGE_SIZE,
            "f": {
                "status": status,
                "channel": channel,
                "rule": rule,
                "patient": patient,
                "date_from": date_from,
                "date_to": date_to,
            },
            "now": utcnow(),
        },
        staff=staff,
    )


@router.get("/outbox/failed")
def failed(
    request: Request, staff: Staff = Depends(signed_in), db: Session = Depends(get_db)
) -> Response:
    """Patients with a message that failed in the last two weeks: call them."""
    since = utcnow() - timedelta(days=FAILED_DAYS)
    rows = db.execute(
        select(Message, Patient)
        .join(Patient, Patient.id == Message.patient_id)
        .where(Message.status == "failed", Message.updated_at >= since)
        .order_by(Message.updated_at.desc())
    ).all()
    by_patient: dict[str, dict[str, object]] = {}
    for msg, patient in rows:
        entry = by_patient.setdefault(patient.id, {"patient": patient, "messages": []})
        entry["messages"].append(msg)  # type: ignore[attr-defined]
    return render(
        request,
        "outbox_failed.html",
        {"patients": list(by_patient.values()), "days": FAILED_DAYS},
        staff=staff,
    )
