"""Patients: search, and one patient's timeline (sessions, messages, replies, check-in
scores as a small chart), consent and opt-out state, and series progress."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import APIRouter, Depends, HTTPException, Request
from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from reminders.db.models import (
    CheckinScore,
    InboundMessage,
    Message,
    OptOut,
    Patient,
    StaffTask,
    TreatmentSession,
)
from reminders.db.types import utcnow
from reminders.web.deps import get_db
from reminders.web.staff.common import Staff, render, signed_in

router = APIRouter()


@dataclass(frozen=True)
class Event:
    at: datetime
    kind: str  # session | message | reply | score
    title: str
    detail: str = ""
    status: str = ""


@dataclass(frozen=True)
class Progress:
    completed: int
    size: int
    next_session: datetime | None
    maintenance_due: datetime | None

    @property
    def in_initial_series(self) -> bool:
        return self.completed < self.size


def series_progress(patient: Patient, sessions: list[TreatmentSession], now: datetime) -> Progress:
    infusions = [s for s in sessions if s.kind == "infusion"]
    completed = [s for s in infusions if s.status == "completed"]
    upcoming = sorted(
        s.starts_at
        for s in sessions
        if s.status in ("scheduled", "confirmed") and s.starts_at > now
    )
    due = None
    if len(completed) >= patient.initial_series_size:
        last = max(s.starts_at for s in completed)
        due = last + timedelta(days=patient.maintenance_interval_days)
    return Progress(
        len(completed), patient.initial_series_size, upcoming[0] if upcoming else None, due
    )


def score_chart(
    scores: list[CheckinScore], width: int = 360, height: int = 110
) -> dict[str, object]:
    """Points for an inline SVG line chart of 0-10 scores (oldest left)."""
    pad = 12
    n = len(scores)
    step = (width - 2 * pad) / max(n - 1, 1)
    points = [
        {
            "x": round(pad + i * step, 1),
            "y": round(height - pad - s.score * (height - 2 * pad) / 10, 1),
            "score": s.score,
            "at": s.recorded_at,
        }
        for i, s in enumerate(scores)
    ]
    return {
        "width": width,
        "height": height,
        "points": points,
        "line": " ".join(f"{p['x']},{p['y']}" for p in points),
        "grid": [
            {"y": round(height - pad - v * (height - 2 * pad) / 10, 1), "v": v} for v in (0, 5, 10)
        ],
    }


@router.get("/patients")
def patient_list(
    request: Request,
    q: str = "",
    staff: Staff = Depends(signed_in),
    db: Session = Depends(get_db),
) -> Response:
    query = select(Patient).order_by(Patient.last_name, Patient.first_name).limit(100)
    if q.strip():
        like = f"%{q.strip()}%"
        query = query.where(
            or_(
                Patient.id == q.strip(),
                Patient.first_name.ilike(like),
                Patient.last_name.ilike(like),
            )
        )
    return render(
        request, "patients.html", {"patients": db.scalars(query).all(), "q": q}, staff=staff
    )


@router.get("/patients/{patient_id}")
def patient_page(
    request: Request,
    patient_id: str,
    staff: Staff = Depends(signed_in),
    db: Session = Depends(get_db),
) -> Response:
    patient = db.get(Patient, patient_id)
    if patient is None:
        raise HTTPException(status_code=404, detail="no such patient")
    now = utcnow()
    sessions = list(
        db.scalars(
            select(TreatmentSession)
            .where(TreatmentSession.patient_id == patient_id)
            .order_by(TreatmentSession.starts_at)
        )
    )
    messages = db.scalars(
        select(Message)
        .where(Message.patient_id == patient_id)
        .order_by(Message.due_at.desc())
        .limit(300)
    ).all()
    replies = db.scalars(
        select(InboundMessage)
        .where(InboundMessage.patient_id == patient_id)
        .order_by(InboundMessage.received_at.desc())
        .limit(200)
    ).all()
    scores = list(
        db.scalars(
            select(CheckinScore)
            .where(CheckinScore.patient_id == patient_id)
            .order_by(CheckinScore.recorded_at.desc())
            .limit(30)
        )
    )[::-1]
    addresses = [a for a in (patient.phone, (patient.email or "").lower()) if a]
    opt_outs = (
        db.scalars(select(OptOut).where(OptOut.address.in_(addresses))).all() if addresses else []
    )
    open_tasks = db.scalars(
        select(StaffTask).where(
            StaffTask.patient_id == patient_id, StaffTask.acknowledged_at.is_(None)
        )
    ).all()
    events = (
        [
            Event(
                s.starts_at,
                "session",
                f"{s.kind} session",
                s.series_number and f"#{s.series_number}" or "",
                s.status,
            )
            for s in sessions
        ]
        + [
            Event(
                m.sent_at or m.due_at,
                "message",
                f"{m.rule} ({m.channel})",
                m.reason or "",
                m.status,
            )
            for m in messages
        ]
        + [Event(r.received_at, "reply", r.body, "", r.classification or "") for r in replies]
        + [Event(s.recorded_at, "score", f"check-in score {s.score}/10") for s in scores]
    )
    events.sort(key=lambda e: e.at, reverse=True)
    return render(
        request,
        "patient.html",
        {
            "patient": patient,
            "sessions": sessions,
            "events": events,
            "chart": score_chart(scores),
            "progress": series_progress(patient, sessions, now),
            "opt_outs": opt_outs,
            "open_tasks": open_tasks,
        },
        staff=staff,
    )
