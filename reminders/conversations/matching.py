"""Who sent an inbound message, and what it may be answering: the patient behind a phone
number or email address (a shared family phone is resolved by the latest message sent),
their outstanding check-in (and recording its answer), their next session, their location.

An emailed reply also carries a verdict on its sender (SPF/DKIM, worked out on receipt by
:mod:`reminders.providers.sendgrid.inbound_auth`), kept at the head of its ``match_note``:
"sender verified (dkim pass; spf none)" or "sender not verified (dkim none; spf fail): not
acted on automatically". An email with no verdict recorded reads as not verified.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

import phonenumbers
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from reminders.clinic.records import ACTIVE_SESSION_STATUSES
from reminders.db.models import (
    CheckinScore,
    InboundMessage,
    Message,
    Patient,
    TreatmentSession,
)
from reminders.outbox.status import SENT_STATUSES, TO_PATIENT_KINDS
from reminders.settings import Settings

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
            Message.kind.in_(TO_PATIENT_KINDS),  # a staff text too: the reply may answer it
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


VERIFIED = "sender verified"
UNVERIFIED = "sender not verified"
NOT_ACTED_ON = "not acted on automatically"
_VERDICT = re.compile(rf"^(?:{VERIFIED} \([^()]*\)|{UNVERIFIED} \([^()]*\): {NOT_ACTED_ON})(?=;|$)")


def verdict_note(authenticated: bool, reason: str) -> str:
    """A sender verdict as ``match_note`` holds it; ``reason`` names results, never addresses."""
    reason = re.sub(r"[^a-z0-9 ;,./-]+", "", reason.lower()).strip()[:200] or "no result"
    if authenticated:
        return f"{VERIFIED} ({reason})"
    return f"{UNVERIFIED} ({reason}): {NOT_ACTED_ON}"


def sender_unverified(note: str | None) -> bool:
    """True for a note that starts with a "not verified" verdict: such a message is filed for a
    person to read and changes nothing by itself (``classify.for_sender``)."""
    return (note or "").startswith(UNVERIFIED + " (")


def match_inbound(db: Session, inbound: InboundMessage) -> tuple[Patient | None, str | None]:
    """:func:`match_sender` for a stored message. For an email the note starts with the verdict
    on its sender recorded on receipt; none recorded (fed in by other means, or the process
    stopped before recording it) is "not verified": failing closed."""
    patient, note = match_sender(db, inbound.channel, inbound.from_address)
    if inbound.channel != "email":
        return patient, note
    found = _VERDICT.match(inbound.match_note or "")
    verdict = found.group(0) if found else verdict_note(False, "no verdict recorded")
    return patient, "; ".join(part for part in (verdict, note) if part)[:500]


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


def record_score(
    db: Session,
    settings: Settings,
    inbound: InboundMessage,
    patient: Patient,
    checkin: Message,
    score: int,
    now: datetime,
) -> str | None:
    """Store the score on the check-in and the trend; returns why it is urgent, if it is."""
    previous = db.scalars(
        select(CheckinScore.score)
        .where(CheckinScore.patient_id == patient.id)
        .order_by(CheckinScore.recorded_at.desc(), CheckinScore.id.desc())
        .limit(1)
    ).first()
    db.add(
        CheckinScore(
            patient_id=patient.id,
            message_id=checkin.id,
            session_id=checkin.session_id,
            inbound_id=inbound.id,
            score=score,
            recorded_at=now,
        )
    )
    inbound.score = score
    inbound.checkin_message_id = checkin.id
    if score <= settings.crisis_score_threshold:
        return f"at or below {settings.crisis_score_threshold}"
    if previous is not None and previous - score >= settings.crisis_score_drop:
        return f"down {previous - score} from {previous}"
    return None


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


def patient_location(db: Session, patient_id: str, now: datetime) -> str | None:
    """The location of the patient's next session, else of their most recent one (whose hours
    say when their messages are read)."""
    upcoming = db.scalar(
        select(TreatmentSession.location_id)
        .where(
            TreatmentSession.patient_id == patient_id,
            TreatmentSession.starts_at > now,
            TreatmentSession.status.in_(ACTIVE_SESSION_STATUSES),
            TreatmentSession.location_id.is_not(None),
        )
        .order_by(TreatmentSession.starts_at, TreatmentSession.id)
        .limit(1)
    )
    if upcoming is not None:
        return upcoming
    return db.scalar(
        select(TreatmentSession.location_id)
        .where(
            TreatmentSession.patient_id == patient_id,
            TreatmentSession.starts_at <= now,
            TreatmentSession.status != "cancelled",
            TreatmentSession.location_id.is_not(None),
        )
        .order_by(TreatmentSession.starts_at.desc(), TreatmentSession.id.desc())
        .limit(1)
    )
