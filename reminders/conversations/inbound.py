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
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from reminders.conversations.classify import Classification, classify
from reminders.conversations.crisis import CrisisScreen, screen_for
from reminders.conversations.matching import (
    match_sender,
    next_session,
    normalise_address,
    outstanding_checkin,
)
from reminders.conversations.replies import format_when, language_of, reply_text
from reminders.conversations.tasks import create_alerts, excerpt, open_task, queue_reply
from reminders.db.engine import rowcount
from reminders.db.models import (
    AuditLog,
    CheckinScore,
    InboundMessage,
    Message,
    Patient,
    StaffTask,
)
from reminders.logs import event
from reminders.outbox.consent import set_opt_out
from reminders.settings import Settings

log = logging.getLogger(__name__)


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
            existing = db.scalars(
                select(InboundMessage).where(InboundMessage.provider_message_id == sid)
            ).first()
            if existing is not None:
                return existing.id, existing.processed_at is not None
        row = InboundMessage(
            channel=channel,
            provider_message_id=sid,
            from_address=address,
            body=body,
            received_at=received_at,
        )
        db.add(row)
        try:
            db.commit()
        except IntegrityError:  # the same id stored concurrently
            db.rollback()
            existing = db.scalars(
                select(InboundMessage).where(InboundMessage.provider_message_id == sid)
            ).one()
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
            claimed = rowcount(
                db.execute(
                    update(InboundMessage)
                    .where(InboundMessage.id == inbound_id, InboundMessage.processed_at.is_(None))
                    .values(processed_at=now, error=None)
                )
            )
            if claimed != 1:
                db.rollback()
                return _stored_result(factory, inbound_id, duplicate=True)
            inbound = db.get(InboundMessage, inbound_id)
            assert inbound is not None
            result = _apply(db, settings, inbound, screen, now=now)
            db.commit()
    except Exception as exc:  # noqa: BLE001 - keep the row, tell staff, answer the provider
        event(
            log,
            "inbound processing failed",
            logging.ERROR,
            inbound_id=inbound_id,
            error=type(exc).__name__,
        )
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


def _stored_result(
    factory: sessionmaker[Session], inbound_id: int, *, duplicate: bool
) -> InboundResult:
    with factory() as db:
        row = db.get(InboundMessage, inbound_id)
        if row is None:
            return InboundResult(inbound_id, duplicate=duplicate)
        reply = db.scalars(
            select(Message).where(Message.dedupe_key == f"reply:{inbound_id}")
        ).first()
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
    result = InboundResult(
        inbound.id, classification=cls.kind, patient_id=inbound.patient_id, match_note=note
    )
    language = language_of(
        patient.language if patient else (cls.crisis.language if cls.crisis else None)
    )
    clinic, phone = settings.clinic_name, settings.clinic_phone
    pid = inbound.patient_id

    def reply(kind: str, when: str = "") -> None:
        text = reply_text(kind, language, clinic=clinic, phone=phone, when=when)
        queue_reply(
            db,
            inbound,
            cls=cls.kind,
            text=text,
            language=language,
            patient_id=pid,
            settings=settings,
            now=now,
        )
        result.reply_text = text

    def task(
        kind: str, summary: str, *, urgent: bool = False, session_id: str | None = None
    ) -> StaffTask:
        t = open_task(
            db,
            kind=kind,
            summary=summary,
            inbound=inbound,
            patient_id=pid,
            session_id=session_id,
            urgent=urgent,
            now=now,
        )
        result.task_ids.append(t.id)
        if urgent:
            result.alert_count += create_alerts(db, settings, t, now)
        return t

    who = f"patient {pid}" if pid else "an unknown sender"
    if cls.kind == "crisis":
        assert cls.crisis is not None
        if patient and checkin and cls.score is not None:
            _record_score(db, settings, inbound, patient, checkin, cls.score, now)
        task(
            "crisis",
            f"Crisis language ({cls.crisis.language}: '{cls.crisis.phrase}') from {who}: {excerpt(inbound.body)}",
            urgent=True,
        )
        reply("crisis")
    elif cls.kind in ("opt_out", "opt_in"):
        changed = _set_opt_out(
            db,
            inbound,
            active=cls.kind == "opt_out",
            actor=f"patient:{pid}" if pid else "sender",
            now=now,
        )
        if changed or cls.kind == "opt_in":
            reply(cls.kind)
    elif cls.kind == "help":
        reply("help")
    elif patient is None:
        task(
            "unknown_sender",
            f"Message from an unknown sender ({inbound.match_note}): {excerpt(inbound.body)}",
        )
    elif cls.kind == "confirm":
        _confirm(db, settings, inbound, patient, now, reply, task)
    elif cls.kind == "reschedule":
        session = next_session(db, patient.id, now)
        if session is not None:
            when = format_when(session.starts_at, settings.zone, "en")
            task(
                "reschedule",
                f"Patient {pid} asks to reschedule session {session.id} ({when}); please call.",
                session_id=session.id,
            )
        else:
            task(
                "reschedule",
                f"Patient {pid} asks to reschedule, but has no upcoming session; please call.",
            )
        reply("reschedule")
    elif cls.kind == "checkin":
        assert checkin is not None and cls.score is not None
        urgent_reason = _record_score(db, settings, inbound, patient, checkin, cls.score, now)
        comment = f" with a comment: {excerpt(cls.comment)}" if cls.comment else ""
        if urgent_reason:
            task(
                "low_score",
                f"Check-in score {cls.score}/10 from patient {pid} ({urgent_reason}){comment}",
                urgent=True,
                session_id=checkin.session_id,
            )
            reply("low_score")
        else:
            if cls.comment:
                task(
                    "free_text",
                    f"Check-in score {cls.score}/10 from patient {pid}{comment}",
                    session_id=checkin.session_id,
                )
            reply("checkin_thanks")
    else:
        summary = f"Reply from patient {pid}: {excerpt(inbound.body)}"
        if note:
            summary += f" [{note}]"
        task("free_text", summary)
    return result


def _record_score(
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


def _set_opt_out(
    db: Session, inbound: InboundMessage, *, active: bool, actor: str, now: datetime
) -> bool:
    """Record STOP (active) or START (inactive) for this channel and address; True if it changed."""
    source = f"{inbound.channel}_{'stop' if active else 'start'}"
    if not set_opt_out(
        db,
        channel=inbound.channel,
        address=inbound.from_address,
        source=source,
        active=active,
        at=now,
    ):
        return False
    db.add(
        AuditLog(
            at=now,
            actor=actor,
            action="opt_out" if active else "opt_in",
            entity="opt_out",
            entity_id=f"{inbound.channel}",
            detail={"inbound_id": inbound.id},
        )
    )
    return True


def _confirm(
    db: Session,
    settings: Settings,
    inbound: InboundMessage,
    patient: Patient,
    now: datetime,
    reply: Any,
    task: Any,
) -> None:
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
    db.add(
        AuditLog(
            at=now,
            actor=f"patient:{patient.id}",
            action="session_confirmed",
            entity="session",
            entity_id=session.id,
            detail={"inbound_id": inbound.id, "channel": inbound.channel},
        )
    )
    reply("confirmed", when)


def _record_failure(
    factory: sessionmaker[Session],
    settings: Settings,
    inbound_id: int,
    exc: Exception,
    *,
    now: datetime,
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
                summary=f"Could not process a reply automatically ({type(exc).__name__}); please read it: {excerpt(row.body)}"[
                    :500
                ],
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
        event(
            log,
            "could not record inbound failure",
            logging.ERROR,
            inbound_id=inbound_id,
            error=type(inner).__name__,
        )
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
