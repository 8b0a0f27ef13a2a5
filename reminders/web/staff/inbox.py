"""The inbox: staff tasks and replies. Urgent tasks (crisis, low scores, unconfirmed
preparation) stay pinned on top until someone acknowledges them with a note; the selected
item's messages (every one filed on it) and the patient's conversation are shown beside the
list. Acknowledging stops the item's pages; it is refused when a message joined the item after
the page was loaded (the person has not read it yet)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from starlette.responses import Response

from reminders.db.models import AuditLog, InboundMessage, Message, Patient, StaffTask
from reminders.db.types import utcnow
from reminders.logs import event
from reminders.web.deps import get_db, get_write_db
from reminders.web.staff.common import Staff, posted, render, see_other, signed_in

log = logging.getLogger(__name__)
router = APIRouter()

KIND_LABELS = {
    "crisis": "Crisis",
    "review": "Urgent review",
    "low_score": "Low check-in score",
    "reschedule": "Wants to reschedule",
    "unconfirmed": "Unconfirmed session",
    "free_text": "Reply",
    "unknown_sender": "Unknown sender",
    "delivery_failed": "Delivery failed",
    "prep_late": "Preparation cut-off missed",
}


@dataclass(frozen=True)
class ThreadItem:
    at: datetime
    direction: str  # "in" | "out"
    channel: str
    text: str
    status: str


def conversation(db: Session, patient_id: str, limit: int = 100) -> list[ThreadItem]:
    """A patient's messages both ways, oldest first (the latest ``limit``)."""
    outgoing = db.scalars(
        select(Message)
        .where(
            Message.patient_id == patient_id, Message.status.in_(("sent", "delivered", "failed"))
        )
        .order_by(Message.updated_at.desc())
        .limit(limit)
    ).all()
    incoming = db.scalars(
        select(InboundMessage)
        .where(InboundMessage.patient_id == patient_id)
        .order_by(InboundMessage.received_at.desc())
        .limit(limit)
    ).all()
    items = [
        ThreadItem(
            m.sent_at or m.updated_at, "out", m.channel, m.body or f"({m.template})", m.status
        )
        for m in outgoing
    ] + [
        ThreadItem(i.received_at, "in", i.channel, i.body, i.classification or "") for i in incoming
    ]
    return sorted(items, key=lambda item: item.at)[-limit:]


@router.get("/inbox")
def inbox(
    request: Request,
    task: int | None = None,
    staff: Staff = Depends(signed_in),
    db: Session = Depends(get_db),
) -> Response:
    open_tasks = db.execute(
        select(StaffTask, Patient)
        .outerjoin(Patient, Patient.id == StaffTask.patient_id)
        .where(StaffTask.acknowledged_at.is_(None))
        .order_by(StaffTask.urgent.desc(), StaffTask.created_at.desc())
        .limit(200)
    ).all()
    done_tasks = db.execute(
        select(StaffTask, Patient)
        .outerjoin(Patient, Patient.id == StaffTask.patient_id)
        .where(StaffTask.acknowledged_at.is_not(None))
        .order_by(StaffTask.acknowledged_at.desc())
        .limit(30)
    ).all()
    replies = db.execute(
        select(InboundMessage, Patient)
        .outerjoin(Patient, Patient.id == InboundMessage.patient_id)
        .order_by(InboundMessage.received_at.desc())
        .limit(50)
    ).all()
    selected = db.get(StaffTask, task) if task is not None else None
    if selected is None and open_tasks:
        selected = open_tasks[0][0]
    inbound = (
        db.get(InboundMessage, selected.inbound_id) if selected and selected.inbound_id else None
    )
    filed = (
        list(
            db.scalars(
                select(InboundMessage)
                .where(InboundMessage.task_id == selected.id)
                .order_by(InboundMessage.received_at, InboundMessage.id)
            )
        )
        if selected
        else []
    )
    patient = db.get(Patient, selected.patient_id) if selected and selected.patient_id else None
    thread = conversation(db, patient.id) if patient else []
    return render(
        request,
        "inbox.html",
        {
            "open_tasks": open_tasks,
            "done_tasks": done_tasks,
            "replies": replies,
            "selected": selected,
            "inbound": inbound,
            "filed": filed,
            "patient": patient,
            "thread": thread,
            "labels": KIND_LABELS,
        },
        staff=staff,
    )


@router.post("/inbox/{task_id}/ack")
def acknowledge(
    task_id: int,
    note: str = Form(""),
    seen: int | None = Form(None),
    staff: Staff = Depends(posted),
    db: Session = Depends(get_write_db),  # a short write: no rendering here
) -> Response:
    task = db.get(StaffTask, task_id)
    if task is None:
        raise HTTPException(status_code=404, detail="no such task")
    note = note.strip()[:2000]
    if task.urgent and not note:
        raise HTTPException(status_code=400, detail="an urgent item needs a note: what was done?")
    now = utcnow()
    # Only the first acknowledgement counts: two people clicking at once do not overwrite each other.
    # ``seen``: how many messages the page showed; one that joined since keeps the item open.
    claim = update(StaffTask).where(StaffTask.id == task_id, StaffTask.acknowledged_at.is_(None))
    if seen is not None:
        claim = claim.where(StaffTask.message_count <= seen)
    result = db.execute(
        claim.values(
            acknowledged_at=now, acknowledged_by=staff.user.email, note=note or None
        ).execution_options(synchronize_session=False)
    )
    changed = getattr(result, "rowcount", 0)
    if not changed and _has_unseen(db, task_id, seen):
        db.rollback()
        raise HTTPException(
            status_code=409,
            detail="a new message arrived on this item: reload the page and read it first",
        )
    if changed:
        db.add(
            AuditLog(
                actor=staff.user.email,
                action="task.acknowledge",
                entity="staff_task",
                entity_id=str(task_id),
                detail={"kind": task.kind, "urgent": task.urgent, "patient_id": task.patient_id},
            )
        )
    db.commit()
    event(log, "task acknowledged", task=task_id, user=staff.user.id, first=bool(changed))
    return see_other(f"/staff/inbox?task={task_id}")


def _has_unseen(db: Session, task_id: int, seen: int | None) -> bool:
    if seen is None:
        return False
    db.expire_all()
    task = db.get(StaffTask, task_id)
    return task is not None and task.acknowledged_at is None and task.message_count > seen
