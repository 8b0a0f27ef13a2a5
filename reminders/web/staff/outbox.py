"""The outbox in the console: the messages coming up (soonest first) or gone (newest first),
filtered by patient (a name, or a phone number in any format), status, channel, what the
message is and the dates it is due; counted and paged, never cut off silently. Each message
has a page with the text that was sent; and the "failed" view lists the patients staff should
phone."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import phonenumbers
from fastapi import APIRouter, Depends, HTTPException, Request
from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from reminders.db.models import Message, Patient
from reminders.db.types import utcnow
from reminders.outbox.status import CHANNELS, MESSAGE_STATUSES
from reminders.web.deps import get_db, settings_of
from reminders.web.staff.common import Staff, render, signed_in
from reminders.web.staff.i18n import console_language, translator
from reminders.web.staff.labels import label

router = APIRouter()
PAGE_SIZE = 50
FAILED_DAYS = 14
WAITING = ("planned", "sending")  # not gone yet, even when due in the past
WHEN = ("upcoming", "past", "all")
_PHONE_CHARS = re.compile(r"^[\d\s()+.\-/]+$")


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


@dataclass
class Filters:
    status: str = ""
    channel: str = ""
    rule: str = ""
    patient: str = ""
    date_from: str = ""
    date_to: str = ""
    when: str = ""

    def query(self, **changes: object) -> str:
        """This page's query string with ``changes``: the filters kept in every link."""
        values: dict[str, Any] = {**asdict(self), **changes}
        return urlencode({k: v for k, v in values.items() if v not in ("", None, 1)})


def phone_query(text: str, region: str) -> tuple[str | None, str | None]:
    """What a search for ``text`` means as a phone number: the whole number (E.164), or the
    digits of part of one ("0123"); (None, None) when it is not a number at all."""
    text = text.strip()
    digits = re.sub(r"\D", "", text)
    if not _PHONE_CHARS.match(text) or len(digits) < 4:
        return None, None
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None, digits
    if phonenumbers.is_possible_number(parsed):
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), digits
    return None, digits


def patient_clause(text: str, region: str) -> ColumnElement[bool]:
    """Messages of the patients a search means: by phone number in any format (or part of
    one), email, name, or the patient's id."""
    text = text.strip()[:200]
    number, digits = phone_query(text, region)
    if number is not None:
        return or_(Patient.phone == number, Message.to_address == number)
    if digits is not None:
        return or_(Patient.phone.contains(digits), Message.to_address.contains(digits))
    like = f"%{text.lower()}%"
    full = func.lower(Patient.first_name + " " + Patient.last_name)
    clauses = [
        Message.patient_id == text,
        func.lower(Patient.first_name).like(like),
        func.lower(Patient.last_name).like(like),
        full.like(like),
    ]
    if "@" in text:
        clauses += [func.lower(Patient.email) == text.lower(), Message.to_address == text.lower()]
    return or_(*clauses)


def _filtered(
    query: Select[Message, Patient], f: Filters, *, zone: ZoneInfo, region: str, now: datetime
) -> Select[Message, Patient]:
    if f.status in MESSAGE_STATUSES:
        query = query.where(Message.status == f.status)
    if f.channel in CHANNELS:
        query = query.where(Message.channel == f.channel)
    if f.rule:
        query = query.where(Message.rule == f.rule)
    if f.patient.strip():
        query = query.where(patient_clause(f.patient, region))
    start, end = _day(f.date_from), _day(f.date_to)
    if start:
        query = query.where(Message.due_at >= datetime.combine(start, time(0), tzinfo=zone))
    if end:
        query = query.where(
            Message.due_at < datetime.combine(end + timedelta(days=1), time(0), tzinfo=zone)
        )
    upcoming = or_(Message.due_at >= now, Message.status.in_(WAITING))
    if f.when == "upcoming":
        query = query.where(upcoming)
    elif f.when == "past":
        query = query.where(and_(Message.due_at < now, Message.status.not_in(WAITING)))
    return query


def what_it_is(rule: str, kind: str, language: str) -> str:
    """What a message is, in words: the policy rule's name, else its kind."""
    t = translator(language)
    if rule.startswith("test:"):
        return t("Test message (template {name})").format(name=rule.removeprefix("test:"))
    if rule.startswith("alert:"):
        return f"{label('kind', 'alert', language)}: {label('task', rule[6:], language)}"
    if rule.startswith("reply:"):
        return t("Automatic reply to the patient")
    return label("rule", rule, language) or label("kind", kind, language)


def _words(request: Request, staff: Staff) -> tuple[str, Callable[[str], str]]:
    language = console_language(request, staff.user.language)
    return language, translator(language)


@router.get("/outbox")
def outbox(
    request: Request,
    status: str = "",
    channel: str = "",
    rule: str = "",
    patient: str = "",
    date_from: str = "",
    date_to: str = "",
    when: str = "",
    page: int = 1,
    staff: Staff = Depends(signed_in),
    db: Session = Depends(get_db),
) -> Response:
    settings = settings_of(request)
    language, t = _words(request, staff)
    if when not in WHEN:
        # A date range looks at any time; otherwise what is coming up.
        when = "all" if (date_from or date_to) else "upcoming"
    f = Filters(status, channel, rule, patient, date_from, date_to, when)
    now = utcnow()
    base = select(Message, Patient).outerjoin(Patient, Patient.id == Message.patient_id)
    query = _filtered(base, f, zone=settings.zone, region=settings.default_region, now=now)
    total = db.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    order = (
        (Message.due_at.asc(), Message.id.asc())
        if when == "upcoming"
        else (Message.due_at.desc(), Message.id.desc())
    )
    found = db.execute(query.order_by(*order).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    rows = [
        {"m": m, "p": p, "what": what_it_is(m.rule, m.kind, language), "due": m.due_at > now}
        for m, p in found
    ]
    rules = sorted(set(db.scalars(select(Message.rule).distinct())))
    failed = 0
    if when == "upcoming":
        failed = (
            db.scalar(
                select(func.count(func.distinct(Message.patient_id))).where(
                    Message.status == "failed",
                    Message.updated_at >= now - timedelta(days=FAILED_DAYS),
                )
            )
            or 0
        )
    return render(
        request,
        "outbox.html",
        {
            "rows": rows,
            "statuses": MESSAGE_STATUSES,
            "channels": CHANNELS,
            "rules": [(r, what_it_is(r, "", language)) for r in rules],
            "f": f,
            "total": total,
            "page": page,
            "pages": pages,
            "first": (page - 1) * PAGE_SIZE + 1,
            "last": (page - 1) * PAGE_SIZE + len(rows),
            "failed_patients": failed,
            "failed_days": FAILED_DAYS,
            "count_words": count_words(total, t),
        },
        staff=staff,
    )


def count_words(n: int, t: Callable[[str], str]) -> str:
    return t("1 message") if n == 1 else t("{n} messages").format(n=f"{n:,}")


@router.get("/outbox/failed")
def failed(
    request: Request, staff: Staff = Depends(signed_in), db: Session = Depends(get_db)
) -> Response:
    """Patients with a message that failed in the last two weeks: call them."""
    language, _ = _words(request, staff)
    since = utcnow() - timedelta(days=FAILED_DAYS)
    rows = db.execute(
        select(Message, Patient)
        .join(Patient, Patient.id == Message.patient_id)
        .where(Message.status == "failed", Message.updated_at >= since)
        .order_by(Message.updated_at.desc())
    ).all()
    by_patient: dict[str, dict[str, Any]] = {}
    for msg, patient in rows:
        entry = by_patient.setdefault(patient.id, {"patient": patient, "messages": []})
        entry["messages"].append({"m": msg, "what": what_it_is(msg.rule, msg.kind, language)})
    return render(
        request,
        "outbox_failed.html",
        {"patients": list(by_patient.values()), "days": FAILED_DAYS},
        staff=staff,
    )


@router.get("/outbox/{message_id}")
def message_page(
    request: Request,
    message_id: int,
    staff: Staff = Depends(signed_in),
    db: Session = Depends(get_db),
) -> Response:
    """One message: what, to whom, when, what happened, and the text that was sent."""
    language, t = _words(request, staff)
    found = db.execute(
        select(Message, Patient)
        .outerjoin(Patient, Patient.id == Message.patient_id)
        .where(Message.id == message_id)
    ).first()
    if found is None:
        raise HTTPException(status_code=404, detail=t("There is no such message."))
    msg, patient = found
    return render(
        request,
        "outbox_message.html",
        {"m": msg, "p": patient, "what": what_it_is(msg.rule, msg.kind, language)},
        staff=staff,
    )
