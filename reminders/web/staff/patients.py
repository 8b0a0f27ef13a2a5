"""Patients: find one (name, phone in any format, email, id), and one patient's page: series
progress, check-in scores, visits, the conversation (:mod:`reminders.web.staff.conversation`),
and what the patient told staff (consent, language, an opt-out or opt-in by phone), each
change audited with who and why, never with the phone number or address itself.

A consent or language change marks the patient for re-planning (``needs_plan``); the
dispatcher checks consent again at send time, so the next text after "no consent" never goes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from reminders.clinic.records import ACTIVE_SESSION_STATUSES, normalise_phone
from reminders.db.models import (
    AuditLog,
    CheckinScore,
    Message,
    OptOut,
    Patient,
    StaffTask,
    TreatmentSession,
)
from reminders.db.types import utcnow
from reminders.outbox.consent import normalise_address, set_opt_out
from reminders.planning.timecalc import recipient_zone
from reminders.templates.formats import display_phone
from reminders.templates.sms import sms_info
from reminders.templates.source import TemplateError
from reminders.web.deps import get_db, get_write_db, runtime_of, settings_of
from reminders.web.staff import conversation as talk
from reminders.web.staff.common import Staff, posted, render, see_other, signed_in
from reminders.web.staff.i18n import console_language, translator

router = APIRouter()
PAGE_SIZE = 50
LANGUAGES = {"en": "English", "es": "Spanish"}  # what a patient's messages can be written in
MAX_WHY = 500
WHERE_THE_PATIENT_IS = "({time} where the patient is)"
OPT_OUT_SOURCE = "staff_phone"
_PHONE_LIKE = re.compile(r"^[\d\s().+\-/]+$")
# Who stopped or restarted messages (``opt_outs.source``), in words (translated by the page).
OPT_OUT_SOURCES = (
    ("sms_stop", "the patient texted STOP"),
    ("sms_start", "the patient texted START"),
    ("email_stop", "the patient asked by email"),
    ("staff_phone", "staff, from a phone call"),
    ("unsubscribe", "the patient used the unsubscribe link"),
    ("sendgrid", "the email service reported it"),
    ("twilio", "the phone carrier reported it"),
    ("provider", "the phone carrier reported it"),
)


def opt_out_words(source: str) -> str:
    return next((words for code, words in OPT_OUT_SOURCES if source.startswith(code)), "other")


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
        s.starts_at for s in sessions if s.status in ACTIVE_SESSION_STATUSES and s.starts_at > now
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
    step = (width - 2 * pad) / max(len(scores) - 1, 1)
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


# -- finding a patient -------------------------------------------------------------------------


def _contains(text: str) -> str:
    """A LIKE pattern for ``text`` anywhere, its wildcards taken literally (escape ``\\``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_filter(q: str, region: str) -> ColumnElement[bool] | None:
    """Patients matching ``q``: the id; a phone number in any format, or its last 4+ digits;
    an email (any case, or a part of one with "@" or "."); else every word in the first or last name."""
    q = " ".join(q.split())
    if not q:
        return None
    found: list[ColumnElement[bool]] = [Patient.id == q]
    digits = re.sub(r"\D", "", q)
    if _PHONE_LIKE.match(q) and len(digits) >= 4:
        e164, _problem = normalise_phone(q, region)
        if e164:
            found.append(Patient.phone == e164)
        found.append(Patient.phone.like(f"%{digits}"))  # "(410) 555-0101", "0101"
        return or_(*found)
    if "@" in q or ("." in q and " " not in q):  # "ana@example.com", "example.com"
        found.append(func.lower(Patient.email).like(_contains(q.lower()), escape="\\"))
    words = [
        or_(
            Patient.first_name.ilike(_contains(w), escape="\\"),
            Patient.last_name.ilike(_contains(w), escape="\\"),
        )
        for w in q.split()
    ]
    found.append(and_(*words))
    return or_(*found)


def _page_links(page: int, pages: int) -> list[int | None]:
    """Page numbers to link: the first, the last and two around the current (None: a gap)."""
    wanted = sorted({1, pages, *range(max(page - 2, 1), min(page + 2, pages) + 1)})
    links: list[int | None] = []
    for n in wanted:
        if links and n - (links[-1] or 0) > 1:
            links.append(None)
        links.append(n)
    return links


@router.get("/patients")
def patient_list(
    request: Request,
    q: str = "",
    page: str = "1",
    staff: Staff = Depends(signed_in),
    db: Session = Depends(get_db),
) -> Response:
    settings, now = settings_of(request), utcnow()
    q = q.strip()[:200]
    where = search_filter(q, settings.default_region)
    count = select(func.count()).select_from(Patient)
    total = db.scalar(count.where(where) if where is not None else count) or 0
    pages = max(math.ceil(total / PAGE_SIZE), 1)
    number = min(max(int(page) if page.isdigit() else 1, 1), pages)
    query = select(Patient).order_by(Patient.last_name, Patient.first_name, Patient.id)
    if where is not None:
        query = query.where(where)
    patients = db.scalars(query.offset((number - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    next_visits = dict(
        db.execute(
            select(TreatmentSession.patient_id, func.min(TreatmentSession.starts_at))
            .where(
                TreatmentSession.patient_id.in_([p.id for p in patients]),
                TreatmentSession.status.in_(ACTIVE_SESSION_STATUSES),
                TreatmentSession.starts_at > now,
            )
            .group_by(TreatmentSession.patient_id)
        ).all()
    )
    context = {
        "patients": patients,
        "q": q,
        "total": total,
        "page": number,
        "pages": pages,
        "links": _page_links(number, pages),
        "first": (number - 1) * PAGE_SIZE + 1 if total else 0,
        "last": min(number * PAGE_SIZE, total),
        "next_visits": next_visits,
        "phone": lambda p: display_phone(p, settings.default_region),
    }
    return render(request, "patients.html", context, staff=staff)


# -- one patient -------------------------------------------------------------------------------


def clock(at: datetime, zone: ZoneInfo, language: str, now: datetime) -> str:
    """ "8:00 AM" today, "Tue 03 Mar 8:00 AM" another day (24-hour in Spanish)."""
    local = at.astimezone(zone)
    time_text = local.strftime("%H:%M") if language == "es" else local.strftime("%I:%M %p")
    time_text = time_text.lstrip("0")
    if local.date() == now.astimezone(zone).date():
        return time_text
    return f"{local:%a %d %b} {time_text}"


def _notice(
    db: Session,
    patient_id: str,
    queued: str,
    done: str,
    when: Callable[[datetime], str],
    now: datetime,
) -> dict[str, str] | None:
    """What the last action did, for the line at the top (from the redirect's query)."""
    if queued.isdigit():
        msg = db.get(Message, int(queued))
        if msg is not None and msg.patient_id == patient_id:
            if msg.status == "planned" and msg.due_at > now + timedelta(seconds=30):
                return {"text": "Scheduled to send. It will go at {time}, after quiet hours.",
                        "time": when(msg.due_at)}  # fmt: skip
            return {"text": "Scheduled to send: it goes out with the next pass, within a minute."}
    texts = {
        "contact": "Saved. The patient's messages will follow the change.",
        "unchanged": "Nothing to save: that is what was already recorded.",
        "optout": "Recorded.",
    }
    return {"text": texts[done]} if done in texts else None


@router.get("/patients/{patient_id}")
def patient_page(
    request: Request,
    patient_id: str,
    show: str = "",
    template: str = "",
    queued: str = "",
    done: str = "",
    staff: Staff = Depends(signed_in),
    db: Session = Depends(get_db),
) -> Response:
    patient = db.get(Patient, patient_id)
    if patient is None:
        raise HTTPException(status_code=404, detail="There is no such patient.")
    runtime, now = runtime_of(request), utcnow()
    settings = runtime.settings
    language = console_language(request, staff.user.language)
    sessions = list(
        db.scalars(
            select(TreatmentSession)
            .where(TreatmentSession.patient_id == patient_id)
            .order_by(TreatmentSession.starts_at)
        )
    )
    scores = list(
        db.scalars(
            select(CheckinScore)
            .where(CheckinScore.patient_id == patient_id)
            .order_by(CheckinScore.recorded_at.desc())
            .limit(30)
        )
    )[::-1]
    addresses = {
        ("sms", normalise_address("sms", patient.phone or "")),
        ("email", normalise_address("email", patient.email or "")),
    }
    opt_outs = {
        o.channel: o
        for o in db.scalars(select(OptOut).where(OptOut.address.in_([a for _, a in addresses])))
        if (o.channel, o.address) in addresses
    }
    open_tasks = db.scalars(
        select(StaffTask).where(
            StaffTask.patient_id == patient_id, StaffTask.acknowledged_at.is_(None)
        )
    ).all()
    limit = int(show) if show.isdigit() else talk.THREAD_STEP
    preview, preview_error = None, ""
    names = talk.sms_templates(db, settings)
    if template in names:
        try:
            preview = talk.render_template_for(db, settings, runtime.policy, patient, template, now)
        except TemplateError:
            preview_error = "This template has an error: an admin must fix it first."

    zone = recipient_zone(patient_tz=patient.timezone, location_tz=None, default=settings.zone)

    def when(at: datetime) -> str:
        """A time in the clinic's zone, and in the patient's when that differs."""
        text = clock(at, settings.zone, language, now)
        if at.astimezone(zone).utcoffset() != at.astimezone(settings.zone).utcoffset():
            there = clock(at, zone, language, now)
            text += " " + translator(language)(WHERE_THE_PATIENT_IS).format(time=there)
        return text

    quiet = talk.quiet_now(patient, runtime.policy, settings.zone, now)
    problem = talk.sms_problem(db, patient)
    context = {
        "patient": patient,
        "phone": display_phone(patient.phone, settings.default_region),
        "progress": series_progress(patient, sessions, now),
        "chart": score_chart(scores),
        "upcoming": [
            s for s in sessions if s.status in ACTIVE_SESSION_STATUSES and s.starts_at > now
        ],
        "past": [s for s in sessions if s.starts_at <= now][-3:][::-1],
        "opt_outs": opt_outs,
        "open_tasks": open_tasks,
        "thread": talk.read_thread(db, patient_id, limit),
        "reason_words": lambda code: talk.reason_words(code, language),
        "template_words": talk.template_words,
        "templates": names,
        "template": template if template in names else "",
        "preview": preview,
        "preview_sms": sms_info(preview.text) if preview else None,
        "preview_error": preview_error,
        "sms_problem": talk.problem_words(problem) if problem else "",
        "quiet": quiet,
        "quiet_ends": when(quiet.end) if quiet else "",
        "key": talk.new_key(),
        "notice": _notice(db, patient_id, queued, done, when, now),
        "languages": LANGUAGES,
        "now": now,
        "max_text": talk.MAX_TEXT,
        "opt_out_words": opt_out_words,
    }
    return render(request, "patient.html", context, staff=staff)


# -- what the patient told us ------------------------------------------------------------------


def _audit(
    db: Session,
    staff: Staff,
    patient: Patient,
    action: str,
    field: str,
    old: Any,
    new: Any,
    why: str,
) -> None:
    db.add(
        AuditLog(
            actor=staff.user.email, action=action, entity="patient", entity_id=patient.id,
            detail={"field": field, "from": old, "to": new, "why": why},
        )
    )  # fmt: skip


def _why(why: str, *, required: bool) -> str:
    text = " ".join(why.split())[:MAX_WHY]
    if required and not text:
        raise HTTPException(
            status_code=400,
            detail="Say why: who told you, and when (it is kept in the audit log).",
        )
    return text


@router.post("/patients/{patient_id}/contact")
def record_contact(
    patient_id: str,
    sms_consent: str = Form(""),
    email_consent: str = Form(""),
    language: str = Form(""),
    why: str = Form(""),
    staff: Staff = Depends(posted),
    db: Session = Depends(get_write_db),
) -> Response:
    """Consent to texts and emails and the language of messages, as the patient said."""
    patient = db.get(Patient, patient_id)
    if patient is None:
        raise HTTPException(status_code=404, detail="There is no such patient.")
    language = language or patient.language
    if language not in LANGUAGES and language != patient.language:
        raise HTTPException(status_code=400, detail="Messages can be in English or Spanish.")
    wanted = {"sms_consent": bool(sms_consent), "email_consent": bool(email_consent)}
    changes: list[tuple[str, object, object]] = [
        (f, getattr(patient, f), v) for f, v in wanted.items() if getattr(patient, f) != v
    ]
    if language != patient.language:
        changes.append(("language", patient.language, language))
    if not changes:
        return see_other(f"/staff/patients/{patient_id}?done=unchanged#records")
    reason = _why(why, required=any(f != "language" for f, _, _ in changes))
    for field, old, new in changes:
        setattr(patient, field, new)
        action = "patient.language" if field == "language" else "patient.consent"
        _audit(db, staff, patient, action, field, old, new, reason)
    patient.needs_plan = True
    patient.change_seq = (patient.change_seq or 0) + 1
    db.commit()
    return see_other(f"/staff/patients/{patient_id}?done=contact#records")


@router.post("/patients/{patient_id}/opt-out")
def record_opt_out(
    patient_id: str,
    channel: str = Form(""),
    action: str = Form(""),
    why: str = Form(""),
    staff: Staff = Depends(posted),
    db: Session = Depends(get_write_db),
) -> Response:
    """An opt-out ("stop") or opt-in ("start again") the patient asked for on the phone."""
    if channel not in ("sms", "email") or action not in ("out", "in"):
        raise HTTPException(status_code=400, detail="Choose texts or emails, and stop or start.")
    reason = _why(why, required=True)
    patient = db.get(Patient, patient_id)
    if patient is None:
        raise HTTPException(status_code=404, detail="There is no such patient.")
    address = patient.phone if channel == "sms" else patient.email
    if not address:
        raise HTTPException(
            status_code=400,
            detail="There is no phone number on file."
            if channel == "sms"
            else "There is no email address on file.",
        )
    active = action == "out"
    if not set_opt_out(db, channel=channel, address=address, source=OPT_OUT_SOURCE, active=active):
        db.rollback()
        return see_other(f"/staff/patients/{patient_id}?done=unchanged#records")
    _audit(
        db, staff, patient, "patient.opt_out" if active else "patient.opt_in",
        f"{channel}_opt_out", not active, active, reason,
    )  # fmt: skip
    db.commit()
    return see_other(f"/staff/patients/{patient_id}?done=optout#records")
