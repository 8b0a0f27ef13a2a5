"""One conversation per patient: every message both ways and staff notes in one thread, and
what staff send from the patient's page.

The thread (:func:`read_thread`) holds the outbox rows to the patient (reminders, check-ins,
nudges, automatic replies, staff texts; not alerts to on-call staff), the patient's own
messages and the staff notes, oldest first, newest at the bottom.

A staff text (``POST /staff/patients/{id}/reply``, or a live SMS template rendered for the
patient, ``.../template``) is an outbox row of kind ``staff`` through the pass-through template
``reply_text``: the dispatcher checks consent and opt-out at send time exactly as for a
reminder, and quiet hours unless a staff member ticked "urgent" (``data["override_quiet"]``).
Consent and opt-out are never overridden: with either in the way the send is refused here
and nothing is queued. A text written inside the patient's quiet hours is due when they end.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.responses import Response

from reminders.clinic.records import ACTIVE_SESSION_STATUSES
from reminders.db.models import (
    AuditLog,
    InboundMessage,
    Location,
    Message,
    Patient,
    StaffNote,
    TreatmentSession,
)
from reminders.db.types import utcnow
from reminders.outbox.consent import contact_problem, is_opted_out
from reminders.outbox.status import STAFF_KIND
from reminders.planning.policy import Policy
from reminders.planning.timecalc import quiet_period, recipient_zone
from reminders.settings import Settings
from reminders.templates.render import Rendered, render_for
from reminders.templates.source import TemplateError
from reminders.templates.store import list_templates
from reminders.web.deps import get_db, get_write_db, runtime_of, settings_of
from reminders.web.staff.common import Staff, posted, see_other
from reminders.web.staff.labels import label, readable

router = APIRouter()

THREAD_STEP = 100  # items shown at first, and added by "show earlier"
THREAD_MAX = 2000
MAX_TEXT = 1000  # characters of a staff text (about 7 SMS segments)
MAX_NOTE = 4000
# A staff text not sent within this long after it was due is dropped ("too late to be useful").
STAFF_TEXT_LIFETIME = timedelta(hours=24)
# Templates the system sends on its own, never chosen by staff.
INTERNAL_TEMPLATES = frozenset({"reply_text", "staff_alert"})
# The shipped SMS templates in words (English; translated by the page with t()).
TEMPLATE_WORDS = {
    "day_before": "Day-before reminder",
    "consultation_reminder": "Consultation reminder",
    "ride_home": "Ride-home reminder",
    "checkin": "Check-in question",
    "maintenance_due": "Time to book maintenance",
}
# Why a text cannot go, for the page and for a refused send (fixed sentences: translated).
SMS_PROBLEM_WORDS = {
    "no_phone": "There is no mobile number on file for this patient, so no text can be sent.",
    "phone_unusable": "This patient's phone number cannot receive texts, so no text can be sent.",
    "no_sms_consent": (
        "This patient has not agreed to texts, so no text can be sent. If they agree, "
        "record it below first."
    ),
    "sms_opted_out": (
        "This patient asked for no more texts (STOP), so no text can be sent. If they ask to "
        "get texts again, record it below first."
    ),
}
_KEY = re.compile(r"^[0-9a-f]{32}$")


def template_words(name: str) -> str:
    return TEMPLATE_WORDS.get(name) or readable(name)


def new_key() -> str:
    """A one-time key for a send form: the same form posted twice queues one message."""
    return uuid.uuid4().hex


# -- the thread ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One entry of the thread. ``side``: out (to the patient), in (from them), note."""

    at: datetime
    side: str
    anchor: str
    kind: str = ""  # message kind; "inbound"; "note"
    rule: str = ""
    channel: str = ""
    text: str = ""
    subject: str = ""
    status: str = ""
    reason: str = ""
    by: str = ""
    urgent: bool = False
    template: str = ""
    score: int | None = None

    @property
    def planned(self) -> bool:
        return self.status == "planned"


@dataclass(frozen=True)
class Thread:
    items: list[Item]
    total: int
    step: int

    @property
    def earlier(self) -> int:
        """How many older items are not shown."""
        return max(self.total - len(self.items), 0)


def _message_item(m: Message) -> Item:
    data = m.data or {}
    text = m.body or str(data.get("text") or "")
    return Item(
        at=m.sent_at or m.due_at,
        side="out",
        anchor=f"m{m.id}",
        kind=m.kind,
        rule=m.rule,
        channel=m.channel,
        text=text,
        subject=(m.subject or str(data.get("subject") or "")) if m.channel == "email" else "",
        status=m.status,
        reason=m.reason or "",
        by=str(data.get("by") or ""),
        urgent=data.get("override_quiet") is True,
        template=str(data.get("template") or ""),
    )


def read_thread(db: Session, patient_id: str, limit: int = THREAD_STEP) -> Thread:
    """The latest ``limit`` items of the patient's conversation, oldest first."""
    limit = max(1, min(limit, THREAD_MAX))
    to_patient = (Message.patient_id == patient_id, Message.kind != "alert")
    messages = db.scalars(
        select(Message)
        .where(*to_patient)
        .order_by(func.coalesce(Message.sent_at, Message.due_at).desc(), Message.id.desc())
        .limit(limit)
    ).all()
    inbound = db.scalars(
        select(InboundMessage)
        .where(InboundMessage.patient_id == patient_id)
        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
        .limit(limit)
    ).all()
    notes = db.scalars(
        select(StaffNote)
        .where(StaffNote.patient_id == patient_id)
        .order_by(StaffNote.created_at.desc(), StaffNote.id.desc())
        .limit(limit)
    ).all()
    items = (
        [_message_item(m) for m in messages]
        + [
            Item(
                at=r.received_at,
                side="in",
                anchor=f"i{r.id}",
                kind="inbound",
                channel=r.channel,
                text=r.body,
                score=r.score,
            )
            for r in inbound
        ]
        + [
            Item(
                at=n.created_at,
                side="note",
                anchor=f"n{n.id}",
                kind="note",
                text=n.body,
                by=n.author,
            )
            for n in notes
        ]
    )
    items.sort(key=lambda i: (i.at, i.anchor))
    total = sum(
        db.scalar(select(func.count()).select_from(model).where(*where)) or 0
        for model, where in (
            (Message, to_patient),
            (InboundMessage, (InboundMessage.patient_id == patient_id,)),
            (StaffNote, (StaffNote.patient_id == patient_id,)),
        )
    )
    return Thread(items=items[-limit:], total=total, step=THREAD_STEP)


def reason_words(reason: str, language: str) -> str:
    """A stored reason in words: a code's words, a provider's own sentence as it is."""
    if not reason:
        return ""
    if reason.startswith("deferred: "):
        return label("reason", reason.removeprefix("deferred: "), language)
    words = label("reason", reason, language)
    if words == readable(reason) and " " in reason.strip():
        return reason  # already words ("carrier: unreachable handset")
    return words


# -- texting: who can get one, and when ------------------------------------------------------


def sms_problem(db: Session, patient: Patient) -> str | None:
    """Why no text can go to this patient now (a reason code), or None."""
    opted = bool(patient.phone) and is_opted_out(db, "sms", patient.phone or "")
    return contact_problem("sms", patient, opted)


def problem_words(problem: str) -> str:
    return SMS_PROBLEM_WORDS.get(problem.split(":")[0], "No text can be sent to this patient.")


@dataclass(frozen=True)
class QuietNow:
    """The patient's quiet hours for texts, when it is quiet hours for them now."""

    start: datetime
    end: datetime
    zone: ZoneInfo


def quiet_now(
    patient: Patient, policy: Policy, default_zone: ZoneInfo, now: datetime
) -> QuietNow | None:
    """The quiet period the patient is in now (their zone, as the dispatcher reckons it)."""
    quiet = policy.quiet("sms")
    if quiet is None:
        return None
    zone = recipient_zone(patient_tz=patient.timezone, location_tz=None, default=default_zone)
    period = quiet_period(now, quiet, zone)
    return QuietNow(period[0], period[1], zone) if period else None


def queue_staff_text(
    db: Session,
    patient: Patient,
    *,
    text: str,
    by: str,
    urgent: bool,
    key: str,
    now: datetime,
    quiet: QuietNow | None,
    template: str | None = None,
) -> Message:
    """Add the outbox row for a staff text (not committed); due now, or when quiet hours end."""
    due = quiet.end if quiet is not None and not urgent else now
    data: dict[str, object] = {"text": text, "by": by}
    if urgent:
        data["override_quiet"] = True
    if template:
        data["template"] = template
    msg = Message(
        dedupe_key=f"staff:{patient.id}:{key}",
        patient_id=patient.id,
        rule=STAFF_KIND,
        kind=STAFF_KIND,
        channel="sms",
        template="reply_text",
        due_at=due,
        not_after=due + STAFF_TEXT_LIFETIME,
        status="planned",
        language=patient.language,
        data=data,
        created_at=now,
        updated_at=now,
    )
    db.add(msg)
    return msg


# -- templates -------------------------------------------------------------------------------


def sms_templates(db: Session, settings: Settings) -> list[str]:
    """The live SMS templates staff may send (names; the page shows them in words)."""
    names = {t.name for t in list_templates(db, settings) if t.channel == "sms"}
    return sorted(names - INTERNAL_TEMPLATES, key=template_words)


def next_visit(db: Session, patient_id: str, now: datetime) -> TreatmentSession | None:
    return db.scalars(
        select(TreatmentSession)
        .where(
            TreatmentSession.patient_id == patient_id,
            TreatmentSession.status.in_(ACTIVE_SESSION_STATUSES),
            TreatmentSession.starts_at > now,
        )
        .order_by(TreatmentSession.starts_at)
        .limit(1)
    ).first()


def render_template_for(
    db: Session, settings: Settings, policy: Policy, patient: Patient, name: str, now: datetime
) -> Rendered:
    """The live SMS template ``name`` as this patient would read it now, about their next
    visit. Raises TemplateError."""
    visit = next_visit(db, patient.id, now)
    place = db.get(Location, visit.location_id) if visit and visit.location_id else None
    return render_for(
        db, settings, name=name, channel="sms", patient=patient, session=visit,
        location=place, now=now, policy=policy,
    )  # fmt: skip


# -- the forms -------------------------------------------------------------------------------


def _send(
    request: Request,
    db: Session,
    patient_id: str,
    *,
    staff: Staff,
    text: str,
    urgent: bool,
    key: str,
    template: str | None = None,
) -> Response:
    """Refuse (400, in words) or queue the text and audit it; back to the thread."""
    now = utcnow()
    patient = db.get(Patient, patient_id)
    if patient is None:
        raise HTTPException(status_code=404, detail="There is no such patient.")
    problem = sms_problem(db, patient)
    if problem is not None:
        raise HTTPException(status_code=400, detail=problem_words(problem))
    runtime = runtime_of(request)
    quiet = quiet_now(patient, runtime.policy, runtime.settings.zone, now)
    key = key if _KEY.match(key) else new_key()
    try:
        with db.begin_nested():
            msg = queue_staff_text(
                db, patient, text=text, by=staff.user.email, urgent=urgent, key=key, now=now,
                quiet=quiet, template=template,
            )  # fmt: skip
    except IntegrityError:
        db.rollback()  # the same form posted twice: it is queued already
        return see_other(f"/staff/patients/{patient_id}#thread")
    detail: dict[str, object] = {
        "message_id": msg.id,
        "channel": "sms",
        "urgent": urgent,
        "waits_for_quiet_hours": quiet is not None and not urgent,
    }
    if template:
        detail["template"] = template
    db.add(
        AuditLog(
            actor=staff.user.email, action="patient.message", entity="patient",
            entity_id=patient.id, detail=detail,
        )
    )  # fmt: skip
    db.commit()
    return see_other(f"/staff/patients/{patient_id}?queued={msg.id}#m{msg.id}")


@router.post("/patients/{patient_id}/reply")
def reply(
    request: Request,
    patient_id: str,
    text: str = Form(""),
    urgent: str = Form(""),
    key: str = Form(""),
    staff: Staff = Depends(posted),
    db: Session = Depends(get_write_db),
) -> Response:
    body = text.strip()
    if not body:
        raise HTTPException(status_code=400, detail="Write the text to send first.")
    if len(body) > MAX_TEXT:
        raise HTTPException(
            status_code=400, detail="That text is too long: keep it under 1000 characters."
        )
    return _send(request, db, patient_id, staff=staff, text=body, urgent=bool(urgent), key=key)


@router.post("/patients/{patient_id}/template")
def send_template(
    request: Request,
    patient_id: str,
    template: str = Form(""),
    urgent: str = Form(""),
    key: str = Form(""),
    staff: Staff = Depends(posted),
    reading: Session = Depends(get_db),
    db: Session = Depends(get_write_db),
) -> Response:
    """The live template rendered for the patient now (as previewed), sent as a staff text.
    Rendering comes first, on the read session, before the write transaction begins."""
    settings, now = settings_of(request), utcnow()
    patient = reading.get(Patient, patient_id)
    if patient is None:
        raise HTTPException(status_code=404, detail="There is no such patient.")
    if template not in sms_templates(reading, settings):
        raise HTTPException(status_code=400, detail="Choose one of the text templates.")
    try:
        rendered = render_template_for(
            reading, settings, runtime_of(request).policy, patient, template, now
        )
    except TemplateError:
        raise HTTPException(
            status_code=400, detail="This template has an error: an admin must fix it first."
        ) from None
    if not rendered.text.strip():
        raise HTTPException(status_code=400, detail="This template gives an empty text.")
    reading.close()
    return _send(
        request, db, patient_id, staff=staff, text=rendered.text, urgent=bool(urgent),
        key=key, template=template,
    )  # fmt: skip


@router.post("/patients/{patient_id}/note")
def add_note(
    patient_id: str,
    body: str = Form(""),
    staff: Staff = Depends(posted),
    db: Session = Depends(get_write_db),
) -> Response:
    text = body.strip()
    if not text:
        raise HTTPException(status_code=400, detail="Write the note first.")
    if len(text) > MAX_NOTE:
        raise HTTPException(
            status_code=400, detail="That note is too long: keep it under 4000 characters."
        )
    if db.get(Patient, patient_id) is None:
        raise HTTPException(status_code=404, detail="There is no such patient.")
    note = StaffNote(patient_id=patient_id, author=staff.user.email, body=text, created_at=utcnow())
    db.add(note)
    db.flush()
    db.add(
        AuditLog(
            actor=staff.user.email, action="patient.note", entity="patient",
            entity_id=patient_id, detail={"note_id": note.id},
        )
    )  # fmt: skip
    db.commit()
    return see_other(f"/staff/patients/{patient_id}#n{note.id}")
