"""Handling of one inbound message: store it, then apply its effects in one transaction.

``receive()`` is what the webhooks and ``reminders inbound`` call:

1. :func:`store_inbound` commits the row on its own (nothing is lost if processing fails);
   a repeated provider id (Twilio retries with the same MessageSid) finds the stored row.
2. :func:`process_inbound` claims the row with an UPDATE that must change exactly one row
   (``processed_at IS NULL``), so concurrent deliveries are processed once, and applies every
   effect (opt-out, confirmation, score, staff task, alert and reply outbox rows) in the same
   transaction. A failure rolls all of that back, keeps the stored row with ``error`` set and
   opens a staff task (urgent, with alerts, when the text reads as a crisis).

Replies and staff alerts are outbox rows (``messages``: kind ``reply`` / ``alert``, status
``planned``, due now); the dispatcher sends them without consent, opt-out or quiet-hours checks.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import phonenumbers
from sqlalchemy import CursorResult, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from reminders.clinic.records import ACTIVE_SESSION_STATUSES
from reminders.conversations.classify import Classification, classify
from reminders.conversations.crisis import CrisisScreen, screen_for
from reminders.conversations.replies import format_when, language_of, reply_text
from reminders.db.models import (
    AuditLog,
    CheckinScore,
    InboundMessage,
    Message,
    Patient,
    StaffTask,
    TreatmentSession,
)
from reminders.logs import event
from reminders.outbox.consent import set_opt_out
from reminders.outbox.status import SENT_STATUSES
from reminders.settings import Settings

log = logging.getLogger(__name__)

CHECKIN_WINDOW = timedelta(hours=48)  # a check-in waits this long for its answer
EXCERPT = 200


@dataclass
class InboundResult:
    inbound_id: int | None
    duplicate: bool = False
    classification: str | None = None
    patient_id: str | None = None
    match_note: str | None = None
    reply_text: str | None = None
    task_ids: list[int] = field(default_factory=list)
    alert_count: int = 0
    error: str | None = None


def rowcount(result: Any) -> int:
    """Rows an UPDATE changed (the claim must change exactly one)."""
    return int(cast(CursorResult[Any], result).rowcount)


# --- addresses and matching --------------------------------------------------------------------


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


# --- outbox rows and staff tasks --------------------------------------------------------------


def _oncall_phone(raw: str, region: str) -> str:
    return normalise_address("sms", raw, region)


def create_alerts(db: Session, settings: Settings, task: StaffTask, now: datetime) -> int:
    """Alert every on-call phone (SMS) and email for ``task``; returns the number of messages.

    The alert names no symptom and quotes nothing (it goes to personal phones): the staff
    inbox link carries the details.
    """
    number = task.alert_count + 1
    link = f"{settings.public_url.rstrip('/')}/staff/tasks/{task.id}"
    what = {"crisis": "crisis language in a reply", "low_score": "low or falling check-in score"}.get(
        task.kind, task.kind.replace("_", " ")
    )
    again = f" (alert {number}, not yet acknowledged)" if number > 1 else ""
    # The staff_alert template adds "URGENT", the patient id and the link around the summary.
    data: dict[str, Any] = {
        "summary": f"{what}{again}",
        "kind": task.kind,
        "patient_id": task.patient_id or "unknown",
        "link": link,
        "task_id": task.id,
        "alert_number": number,
    }
    recipients = [("sms", i, _oncall_phone(p, settings.default_region)) for i, p in enumerate(settings.oncall_phone_list)]
    recipients += [("email", i, e.lower()) for i, e in enumerate(settings.oncall_email_list)]
    for channel, index, address in recipients:
        db.add(
            Message(
                dedupe_key=f"alert:{task.id}:{number}:{channel}:{index}",
                patient_id=task.patient_id,
                session_id=task.session_id,
                rule=f"alert:{task.kind}",
                kind="alert",
                channel=channel,
                template="staff_alert",
                due_at=now,
                status="planned",
                to_address=address,
                language="en",
                data=dict(data),
            )
        )
    task.alert_count = number
    task.last_alert_at = now
    if not recipients:
        event(log, "urgent task has no on-call recipients configured", logging.WARNING, task_id=task.id)
    return len(recipients)


def _open_task(
    db: Session,
    *,
    kind: str,
    summary: str,
    inbound: InboundMessage | None,
    patient_id: str | None,
    session_id: str | None = None,
    urgent: bool = False,
    now: datetime,
) -> StaffTask:
    task = StaffTask(
        kind=kind,
        urgent=urgent,
        patient_id=patient_id,
        session_id=session_id,
        inbound_id=inbound.id if inbound else None,
        summary=summary[:500],
        dedupe_key=f"inbound:{inbound.id}:{kind}" if inbound else None,
        created_at=now,
    )
    db.add(task)
    db.flush()
    return task


def _excerpt(body: str) -> str:
    text = " ".join(body.split())
    return f'"{text[:EXCERPT]}{"..." if len(text) > EXCERPT else ""}"'


def _reply(
    db: Session,
    inbound: InboundMessage,
    *,
    cls: str,
    text: str,
    language: str,
    patient_id: str | None,
    settings: Settings,
    now: datetime,
) -> None:
    data: dict[str, Any] = {"text": text, "inbound_id": inbound.id}
    if inbound.channel == "email":
        data["subject"] = settings.clinic_name
    db.add(
        Message(
            dedupe_key=f"reply:{inbound.id}",
            patient_id=patient_id,
            rule=f"reply:{cls}",
            kind="reply",
            channel=inbound.channel,
            template="reply_text",
            due_at=now,
            status="planned",
            to_address=inbound.from_address,
            language=language,
            data=data,
        )
    )


# --- store and process ---------------------------------------------------------------------------


def store_inbound(
    factory: sessionmaker[Session],
    *,
    channel: str,
    from_address: str,
    body: str,
    provider_message_id: str | None,
    received_at: datetime,
    region: str,
) -> tuple[int, bool]:
    """Commit the inbound row; returns (id, already processed). Idempotent per provider id."""
    body = body.replace("\x00", "")  # PostgreSQL text cannot hold NUL
    address = normalise_address(channel, from_address.replace("\x00", ""), region)[:320]
    sid = provider_message_id.replace("\x00", "")[:255] if provider_message_id else None
    with factory() as db:
        if sid is not None:
            existing = db.scalars(select(InboundMessage).where(InboundMessage.provider_message_id == sid)).first()
            if existing is not None:
                return existing.id, existing.processed_at is not None
        row = InboundMessage(
            channel=channel, provider_message_id=sid, from_address=address, body=body, received_at=received_at
        )
        db.add(row)
        try:
            db.commit()
        except IntegrityError:  # the same id stored concurrently
            db.rollback()
            existing = db.scalars(select(InboundMessage).where(InboundMessage.provider_message_id == sid)).one()
            return existing.id, existing.processed_at is not None
        return row.id, False


def command_of(inbound: InboundMessage) -> str:
    """What keywords are read from: the whole SMS, the first non-empty line of an email."""
    if inbound.channel != "email":
        return inbound.body
    return next((line for line in inbound.body.splitlines() if line.strip()), "")


def process_inbound(
    factory: sessionmaker[Session], settings: Settings, inbound_id: int, *, now: datetime
) -> InboundResult:
    try:
        screen = screen_for(settings)
        with factory() as db:
            claimed = rowcount(db.execute(
                update(InboundMessage)
                .where(InboundMessage.id == inbound_id, InboundMessage.processed_at.is_(None))
                .values(processed_at=now, error=None)
            ))
            if claimed != 1:
                db.rollback()
                return _stored_result(factory, inbound_id, duplicate=True)
            inbound = db.get(InboundMessage, inbound_id)
            assert inbound is not None
            result = _apply(db, settings, inbound, screen, now=now)
            db.commit()
    except Exception as exc:  # noqa: BLE001 - keep the row, tell staff, answer the provider
        event(log, "inbound processing failed", logging.ERROR, inbound_id=inbound_id, error=type(exc).__name__)
        log.debug("inbound processing failure detail", exc_info=True)
        return _record_failure(factory, settings, inbound_id, exc, now=now)
    event(
        log,
        "inbound processed",
        inbound_id=inbound_id,
        classification=result.classification,
        patient_id=result.patient_id,
        tasks=len(result.task_ids),
        alerts=result.alert_count,
    )
    return result


def _stored_result(factory: sessionmaker[Session], inbound_id: int, *, duplicate: bool) -> InboundResult:
    with factory() as db:
        row = db.get(InboundMessage, inbound_id)
        if row is None:
            return InboundResult(inbound_id, duplicate=duplicate)
        reply = db.scalars(select(Message).where(Message.dedupe_key == f"reply:{inbound_id}")).first()
        tasks = list(db.scalars(select(StaffTask.id).where(StaffTask.inbound_id == inbound_id)))
        return InboundResult(
            inbound_id,
            duplicate=duplicate,
            classification=row.classification,
            patient_id=row.patient_id,
            match_note=row.match_note,
            reply_text=(reply.data or {}).get("text") if reply else None,
            task_ids=tasks,
            error=row.error,
        )


def _apply(
    db: Session, settings: Settings, inbound: InboundMessage, screen: CrisisScreen, *, now: datetime
) -> InboundResult:
    patient, note = match_sender(db, inbound.channel, inbound.from_address)
    inbound.patient_id = patient.id if patient else None
    inbound.match_note = note
    checkin = outstanding_checkin(db, patient.id, now) if patient else None
    cls: Classification = classify(
        inbound.body,
        screen=screen,
        confirm_keyword=settings.confirm_keyword,
        reschedule_keyword=settings.reschedule_keyword,
        checkin_outstanding=checkin is not None,
        command=command_of(inbound),
    )
    inbound.classification = cls.kind
    result = InboundResult(inbound.id, classification=cls.kind, patient_id=inbound.patient_id, match_note=note)
    language = language_of(patient.language if patient else (cls.crisis.language if cls.crisis else None))
    clinic, phone = settings.clinic_name, settings.clinic_phone
    pid = inbound.patient_id

    def reply(kind: str, when: str = "") -> None:
        text = reply_text(kind, language, clinic=clinic, phone=phone, when=when)
        _reply(db, inbound, cls=cls.kind, text=text, language=language, patient_id=pid, settings=settings, now=now)
        result.reply_text = text

    def task(kind: str, summary: str, *, urgent: bool = False, session_id: str | None = None) -> StaffTask:
        t = _open_task(db, kind=kind, summary=summary, inbound=inbound, patient_id=pid,
                       session_id=session_id, urgent=urgent, now=now)
        result.task_ids.append(t.id)
        if urgent:
            result.alert_count += create_alerts(db, settings, t, now)
        return t

    who = f"patient {pid}" if pid else "an unknown sender"
    if cls.kind == "crisis":
        assert cls.crisis is not None
        if patient and checkin and cls.score is not None:
            _record_score(db, settings, inbound, patient, checkin, cls.score, now)
        task("crisis", f"Crisis language ({cls.crisis.language}: '{cls.crisis.phrase}') from {who}: {_excerpt(inbound.body)}", urgent=True)
        reply("crisis")
    elif cls.kind in ("opt_out", "opt_in"):
        changed = _set_opt_out(db, inbound, active=cls.kind == "opt_out", actor=f"patient:{pid}" if pid else "sender", now=now)
        if changed or cls.kind == "opt_in":
            reply(cls.kind)
    elif cls.kind == "help":
        reply("help")
    elif patient is None:
        task("unknown_sender", f"Message from an unknown sender ({inbound.match_note}): {_excerpt(inbound.body)}")
    elif cls.kind == "confirm":
        _confirm(db, settings, inbound, patient, now, reply, task)
    elif cls.kind == "reschedule":
        session = next_session(db, patient.id, now)
        if session is not None:
            when = format_when(session.starts_at, settings.zone, "en")
            task("reschedule", f"Patient {pid} asks to reschedule session {session.id} ({when}); please call.", session_id=session.id)
        else:
            task("reschedule", f"Patient {pid} asks to reschedule, but has no upcoming session; please call.")
        reply("reschedule")
    elif cls.kind == "checkin":
        assert checkin is not None and cls.score is not None
        urgent_reason = _record_score(db, settings, inbound, patient, checkin, cls.score, now)
        comment = f" with a comment: {_excerpt(cls.comment)}" if cls.comment else ""
        if urgent_reason:
            task("low_score", f"Check-in score {cls.score}/10 from patient {pid} ({urgent_reason}){comment}",
                 urgent=True, session_id=checkin.session_id)
            reply("low_score")
        else:
            if cls.comment:
                task("free_text", f"Check-in score {cls.score}/10 from patient {pid}{comment}", session_id=checkin.session_id)
            reply("checkin_thanks")
    else:
        summary = f"Reply from patient {pid}: {_excerpt(inbound.body)}"
        if note:
            summary += f" [{note}]"
        task("free_text", summary)
    return result


def _record_score(
    db: Session, settings: Settings, inbound: InboundMessage, patient: Patient, checkin: Message, score: int, now: datetime
) -> str | None:
    """Store the score on the check-in and the trend; returns why it is urgent, if it is."""
    previous = db.scalars(
        select(CheckinScore.score)
        .where(CheckinScore.patient_id == patient.id)
        .order_by(CheckinScore.recorded_at.desc(), CheckinScore.id.desc())
        .limit(1)
    ).first()
    db.add(CheckinScore(patient_id=patient.id, message_id=checkin.id, session_id=checkin.session_id,
                        inbound_id=inbound.id, score=score, recorded_at=now))
    inbound.score = score
    inbound.checkin_message_id = checkin.id
    if score <= settings.crisis_score_threshold:
        return f"at or below {settings.crisis_score_threshold}"
    if previous is not None and previous - score >= settings.crisis_score_drop:
        return f"down {previous - score} from {previous}"
    return None


def _set_opt_out(db: Session, inbound: InboundMessage, *, active: bool, actor: str, now: datetime) -> bool:
    """Record STOP (active) or START (inactive) for this channel and address; True if it changed."""
    source = f"{inbound.channel}_{'stop' if active else 'start'}"
    if not set_opt_out(db, channel=inbound.channel, address=inbound.from_address, source=source, active=active,
                       at=now):
        return False
    db.add(AuditLog(at=now, actor=actor, action="opt_out" if active else "opt_in", entity="opt_out",
                    entity_id=f"{inbound.channel}", detail={"inbound_id": inbound.id}))
    return True


def _confirm(db: Session, settings: Settings, inbound: InboundMessage, patient: Patient, now: datetime,
             reply: Any, task: Any) -> None:
    session = next_session(db, patient.id, now)
    if session is None:
        task("free_text", f"Patient {patient.id} replied to confirm but has no upcoming session.")
        reply("no_session")
        return
    zone = settings.zone
    if patient.timezone:
        from zoneinfo import ZoneInfo

        with contextlib.suppress(KeyError, ValueError):
            zone = ZoneInfo(patient.timezone)
    when = format_when(session.starts_at, zone, patient.language)
    if session.status == "confirmed":
        reply("already_confirmed", when)
        return
    session.status = "confirmed"
    session.confirmed_at = now
    # The planner re-renders the day-of messages ("your visit is confirmed").
    patient.needs_plan = True
    patient.change_seq = (patient.change_seq or 0) + 1
    db.add(AuditLog(at=now, actor=f"patient:{patient.id}", action="session_confirmed", entity="session",
                    entity_id=session.id, detail={"inbound_id": inbound.id, "channel": inbound.channel}))
    reply("confirmed", when)


def _record_failure(
    factory: sessionmaker[Session], settings: Settings, inbound_id: int, exc: Exception, *, now: datetime
) -> InboundResult:
    """Keep the row with its error, and put it in front of staff (urgent if it reads as a crisis)."""
    error = f"{type(exc).__name__}: {exc}"[:500]
    result = InboundResult(inbound_id, error=error)
    try:
        with factory() as db:
            row = db.get(InboundMessage, inbound_id)
            if row is None:
                return result
            row.error = error
            row.processed_at = None
            crisis = False
            try:
                crisis = screen_for(settings).screen(row.body) is not None
            except Exception:  # noqa: BLE001 - unreadable phrase list: treat as possibly urgent
                crisis = True
            task = StaffTask(
                kind="crisis" if crisis else "free_text",
                urgent=crisis,
                inbound_id=row.id,
                summary=f"Could not process a reply automatically ({type(exc).__name__}); please read it: {_excerpt(row.body)}"[:500],
                dedupe_key=f"inbound:{row.id}:failed",
                created_at=now,
            )
            db.add(task)
            db.flush()
            if crisis:
                result.alert_count = create_alerts(db, settings, task, now)
            db.commit()
            result.task_ids.append(task.id)
    except Exception as inner:  # noqa: BLE001
        event(log, "could not record inbound failure", logging.ERROR, inbound_id=inbound_id, error=type(inner).__name__)
    return result


def receive(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    channel: str,
    from_address: str,
    body: str,
    provider_message_id: str | None,
    now: datetime | None = None,
) -> InboundResult:
    """Store, then process, one inbound message (the webhooks and ``reminders inbound``)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    inbound_id, processed = store_inbound(
        factory,
        channel=channel,
        from_address=from_address,
        body=body,
        provider_message_id=provider_message_id,
        received_at=now,
        region=settings.default_region,
    )
    if processed:
        return _stored_result(factory, inbound_id, duplicate=True)
    return process_inbound(factory, settings, inbound_id, now=now)
