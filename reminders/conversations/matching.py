"""Who sent an inbound message, and what it may be answering: the patient behind a phone
number or email address (a shared family phone is resolved by the latest message sent),
their outstanding check-in, their next session.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import phonenumbers
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from reminders.clinic.records import ACTIVE_SESSION_STATUSES
from reminders.db.models import (
    InboundMessage,
    Message,
    Patient,
    TreatmentSession,
)
from reminders.outbox.status import SENT_STATUSES

log = logging.getLogger(__name__)

CHECKIN_WINDOW = timedelta(hours=48)  # a check-in waits this long for its answer


def normalise_address(channel: str, raw: str, region: str) -> str:
    """E.164 for a phone number that parses, a lower-cased email; otherwise the text as given."""
    raw = raw.strip()
    if channel == "email":
        return raw.lower()
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return raw
    if not phonenumbers.is_possible_number(number):
        return raw
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def match_sender(db: Session, channel: str, address: str) -> tuple[Patient | None, str | None]:
    """The patient who sent this, and a note when the choice was not obvious.

    Several patients can share one number (a family phone): the reply is taken to be about the
    most recent message we sent to one of them on this channel.
    """
    column = Patient.phone if channel == "sms" else func.lower(Patient.email)
    candidates = list(db.scalars(select(Patient).where(column == address).order_by(Patient.id)))
    if not candidates:
        return None, "unknown sender"
    if len(candidates) == 1:
        return candidates[0], None
    ids = [p.id for p in candidates]
    latest = db.execute(
        select(Message.id, Message.patient_id, Message.kind, Message.sent_at)
        .where(
            Message.patient_id.in_(ids),
            Message.channel == channel,
            Message.kind.in_(("reminder", "checkin", "nudge")),
            Message.sent_at.is_not(None),
        )
        .order_by(Message.sent_at.desc(), Message.id.desc())
        .limit(1)
    ).first()
    shared = f"shared {'number' if channel == 'sms' else 'address'}: {len(ids)} patients ({', '.join(ids)})"
    if latest is None:
        return None, f"{shared}; no message sent to them to tell who replied"
    chosen = next(p for p in candidates if p.id == latest.patient_id)
    sent = latest.sent_at.isoformat() if latest.sent_at else "?"
    return chosen, (
        f"{shared}; matched to {chosen.id}, recipient of the most recent message "
        f"#{latest.id} ({latest.kind}, sent {sent})"
    )


def outstanding_checkin(db: Session, patient_id: str, now: datetime) -> Message | None:
    """The most recent check-in sent to the patient in the last 48 h that has no score yet."""
    answered = exists().where(
        InboundMessage.checkin_message_id == Message.id, InboundMessage.score.is_not(None)
    )
    return db.scalars(
        select(Message)
        .where(
            Message.patient_id == patient_id,
            Message.kind == "checkin",
            Message.status.in_(SENT_STATUSES),
            Message.sent_at.is_not(None),
            Message.sent_at >= now - CHECKIN_WINDOW,
            Message.sent_at <= now,
            ~answered,
        )
        .order_by(Message.sent_at.desc(), Message.id.desc())
        .limit(1)
    ).first()


def next_session(db: Session, patient_id: str, now: datetime) -> TreatmentSession | None:
    return db.scalars(
        select(TreatmentSession)
        .where(
            TreatmentSession.patient_id == patient_id,
            TreatmentSession.starts_at > now,
            TreatmentSession.status.in_(ACTIVE_SESSION_STATUSES),
        )
        .order_by(TreatmentSession.starts_at, TreatmentSession.id)
        .limit(1)
    ).first()
